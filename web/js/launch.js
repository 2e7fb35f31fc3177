// Starting a session and joining one by its code, from the home page: through the coordinator
// when this server has one (docs/coordinator.md), else through the REST API of this server.
// Both end with the address of the session's room page.

import { createRoom, lookupRoom } from './api.js';
import { rememberHostKey } from './host-key.js';
import { loadCatalogue } from './catalogue.js';
import { Coordinator, CoordinatorError } from './coordinator.js';

/** @typedef {import('./coordinator.js').SessionPlace} SessionPlace */
/** @typedef {import('./catalogue.js').App} App */

/** How long to wait for the node of another server to say our place is ready. */
const ESTABLISHED_WAIT_MS = 5_000;
/** A session being started answers SESSION_STARTING: ask again this many times. */
const STARTING_RETRIES = 5;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Launcher {
  constructor() {
    /** @type {Promise<Coordinator | null> | null} */
    this.connecting = null;
  }

  /**
   * The coordinator connection (opened on first use, again after it closed), or null when
   * this server has no coordinator.
   * @returns {Promise<Coordinator | null>}
   */
  async coordinator() {
    const have = this.connecting ? await this.connecting : null;
    if (have && have.open) return have;
    if (this.connecting && !have) return null;
    this.connecting = (async () => {
      const coordinator = new Coordinator();
      try {
        await coordinator.connect();
        return coordinator;
      } catch (error) {
        console.info('orbita: no coordinator here; rooms are made on this server', error);
        return null;
      }
    })();
    return this.connecting;
  }

  /**
   * The apps on offer; null when there is no coordinator (only plain rooms).
   * @returns {Promise<App[] | null>}
   */
  async catalogue() {
    const coordinator = await this.coordinator();
    return coordinator ? loadCatalogue(coordinator) : null;
  }

  /**
   * Start a session of `rcName` (through the coordinator), or with none a plain room on this
   * server; resolves with the room page's address.
   * @param {string | null} rcName
   */
  async start(rcName) {
    const coordinator = rcName ? await this.coordinator() : null;
    if (!coordinator || !rcName) {
      const room = await createRoom();
      rememberHostKey(room.code, room.host_key);
      return roomPath(room.code);
    }
    const place = await coordinator.createSession(rcName);
    const url = placeUrl(place, await placeData(coordinator, place));
    if (!place.hostKey) return url;
    if (isHere(place, location)) {
      rememberHostKey(place.code, place.hostKey);
      return url;
    }
    // Another server's page (another origin, another sessionStorage): the key goes in the
    // fragment, which never reaches a server; the page keeps it and takes it out of the bar.
    return `${url}#key=${encodeURIComponent(place.hostKey)}`;
  }

  /**
   * The page of the session with this code as the coordinator knows it (a planned session
   * in its slot is started): null when there is no coordinator; throws `SESSION_NOT_EXIST`
   * and the other failures.
   * @param {string} code
   * @returns {Promise<string | null>}
   */
  async find(code) {
    const coordinator = await this.coordinator();
    if (!coordinator) return null;
    const place = await retryWhileStarting(() => coordinator.connectWithCode(code));
    return placeUrl(place, await placeData(coordinator, place));
  }

  /** Close the coordinator connection, if open. */
  close() {
    this.connecting?.then((c) => c?.close());
  }

  /**
   * The room page of the session with this code: the coordinator finds it on any of its
   * servers; a room made with this server's REST API (which the coordinator does not know)
   * is found here.
   * @param {string} code
   */
  async join(code) {
    const coordinator = await this.coordinator();
    if (coordinator) {
      try {
        const place = await retryWhileStarting(() => coordinator.connectWithCode(code));
        return placeUrl(place, await placeData(coordinator, place));
      } catch (error) {
        if (!(error instanceof CoordinatorError && error.code === 'SESSION_NOT_EXIST')) throw error;
      }
    }
    await lookupRoom(code); // ApiError('unknown_code') when this server has no such room either
    return roomPath(code);
  }
}

/**
 * Ask again while the coordinator says the session is still being started.
 * @template T
 * @param {() => Promise<T>} ask
 * @returns {Promise<T>}
 */
async function retryWhileStarting(ask) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ask();
    } catch (error) {
      if (!(error instanceof CoordinatorError && error.code === 'SESSION_STARTING') || attempt >= STARTING_RETRIES) throw error;
      await sleep((error.retryAfter ?? 1) * 1000);
    }
  }
}

/** @param {string} code */
function roomPath(code) {
  return `/r/${encodeURIComponent(code)}`;
}

/**
 * The session page the node announced, when the session is on another server (on this one
 * its path is enough).
 * @param {Coordinator} coordinator
 * @param {SessionPlace} place
 */
function placeData(coordinator, place) {
  return isHere(place, location) ? Promise.resolve(null) : coordinator.established(place.code, ESTABLISHED_WAIT_MS);
}

/**
 * Where to go for a session: on this server its relative room path; elsewhere the page the
 * node gave (`WebRTC_connection_data`, the room page or just the server's origin), else one
 * made from the session's ip and port.
 * @param {SessionPlace} place
 * @param {string | null} data
 * @param {{protocol: string, hostname: string, port: string}} [here]
 */
export function placeUrl(place, data, here = location) {
  const path = roomPath(place.code);
  if (isHere(place, here)) return path;
  if (data) {
    try {
      const url = new URL(data);
      if (url.protocol === 'http:' || url.protocol === 'https:') {
        if (url.pathname === '/' || url.pathname === '') url.pathname = path;
        return url.href;
      }
    } catch {
      // Not a URL: build one.
    }
  }
  const ip = unbracket(place.ip);
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `${here.protocol}//${host}:${place.port}${path}`;
}

/**
 * Whether the session's ip and port are this page's server.
 * @param {SessionPlace} place
 * @param {{protocol: string, hostname: string, port: string}} here
 */
function isHere(place, here) {
  const port = here.port || (here.protocol === 'https:' ? '443' : '80');
  return unbracket(place.ip).toLowerCase() === unbracket(here.hostname).toLowerCase() && place.port === port;
}

/** @param {string} host */
function unbracket(host) {
  return host.replace(/^\[(.*)\]$/, '$1');
}
