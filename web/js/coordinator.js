// The coordinator's client WebSocket (docs/coordinator.md): one JSON object per message,
// requests tagged by "verb", answers by "msg" (CONNECT_TO_SESSION by "verb").

/** How long opening the socket (until WELCOME) may take. */
const CONNECT_TIMEOUT_MS = 8_000;
/** How long an answer may take (the coordinator gives a node 10 s to start a session). */
const ANSWER_TIMEOUT_MS = 30_000;

/**
 * @typedef {{rc_name: string, info?: {description?: unknown}}} RcInfo
 * @typedef {{server_name: string, ip: string, port: string, rc_info: RcInfo}} ServerEntry
 * @typedef {{ip: string, port: string, code: string, hostKey?: string}} SessionPlace where a session is
 *   (`hostKey`: only for the session's creator, who joins with it as the call's agent)
 */

/**
 * A failure the coordinator reported, by its code: `SERVERS_BUSY`, `SESSION_NOT_EXIST`, an
 * `ERROR`'s code (`LOCKED_OUT`, `RATE_LIMITED`, ...), or `network` / `timeout` when it could not
 * be reached.
 */
export class CoordinatorError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number | null} [retryAfter] seconds to wait before trying again, if said
   */
  constructor(code, message, retryAfter = null) {
    super(message);
    this.name = 'CoordinatorError';
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** The coordinator endpoint of the server this page came from. */
export function defaultCoordinatorUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/coordinator`;
}

/**
 * One connection to the coordinator. Requests go one at a time (the coordinator answers a
 * client's requests in order), so each answer belongs to the request waiting for it;
 * `SESSION_CONNECTION_ESTABLISHED` notices are kept by code for {@link Coordinator#established}.
 */
export class Coordinator {
  /** @param {string} [url] */
  constructor(url = defaultCoordinatorUrl()) {
    this.url = url;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {string | null} this client's id (WELCOME) */
    this.userId = null;
    /** @type {((msg: any) => void) | null} the waiting request's handler */
    this.pending = null;
    /** @type {Promise<unknown>} the chain that keeps requests one at a time */
    this.queue = Promise.resolve();
    /** @type {Map<string, string>} WebRTC_connection_data by session code */
    this.places = new Map();
    /** @type {Map<string, (data: string) => void>} waiters for those, by code */
    this.placeWaiters = new Map();
    /** @type {((msg: any) => void) | null} notices about a planned session's end */
    this.onNotice = null;
  }

  /** Open the socket; resolves at WELCOME. @returns {Promise<void>} */
  connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        reject(new CoordinatorError('network', String(e)));
        return;
      }
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.close();
        reject(new CoordinatorError('timeout', 'the coordinator did not answer'));
      }, CONNECT_TIMEOUT_MS);
      ws.addEventListener('message', (event) => {
        const msg = parse(event.data);
        if (!msg) return;
        if (msg.msg === 'WELCOME') {
          clearTimeout(timer);
          this.userId = String(msg.user_id ?? '');
          resolve();
        } else {
          this.onMessage(msg);
        }
      });
      ws.addEventListener('close', (event) => {
        clearTimeout(timer);
        reject(new CoordinatorError('network', `cannot reach the coordinator (${event.code})`));
        this.pending?.({ msg: 'CLOSED', code: event.code });
      });
    });
  }

  /** Whether the socket is open. */
  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** @param {any} msg */
  onMessage(msg) {
    if (msg.msg === 'SESSION_CONNECTION_ESTABLISHED') {
      const code = String(msg.code ?? '');
      const data = String(msg.WebRTC_connection_data ?? '');
      this.places.set(code, data);
      this.placeWaiters.get(code)?.(data);
      return;
    }
    if (msg.msg === 'SESSION_ENDED') return; // about a session we were sent to earlier
    if (msg.msg === 'SESSION_ENDING') {
      this.onNotice?.(msg);
      return;
    }
    if (msg.msg === 'SESSION_EXTENDED') {
      // Also the answer to our own EXTEND_SESSION.
      this.onNotice?.(msg);
    }
    this.pending?.(msg);
  }

  /**
   * Send a request and wait for its answer: the first message `accept` recognises, or a
   * failure (busy, no such session, an ERROR, the socket closing, no answer in time).
   * @template T
   * @param {object} request
   * @param {(msg: any) => T | undefined} accept the answer's value, or undefined if not it
   * @returns {Promise<T>}
   */
  request(request, accept) {
    const run = () =>
      new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          this.pending = null;
        };
        const timer = setTimeout(() => {
          done();
          reject(new CoordinatorError('timeout', 'the coordinator did not answer in time'));
        }, ANSWER_TIMEOUT_MS);
        this.pending = (msg) => {
          const value = accept(msg);
          if (value !== undefined) {
            done();
            resolve(value);
          } else if (msg.msg === 'ERROR') {
            done();
            reject(new CoordinatorError(String(msg.code), String(msg.message ?? ''), retryAfter(msg)));
          } else if (msg.msg === 'SERVERS_BUSY' || msg.msg === 'SESSION_NOT_EXIST') {
            done();
            reject(new CoordinatorError(msg.msg, ''));
          } else if (msg.msg === 'CLOSED') {
            done();
            reject(new CoordinatorError('network', 'the connection to the coordinator closed'));
          }
        };
        if (!this.open) {
          this.pending({ msg: 'CLOSED' });
          return;
        }
        /** @type {WebSocket} */ (this.ws).send(JSON.stringify(request));
      });
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return /** @type {Promise<T>} */ (result);
  }

  /**
   * Entries `from` to `to` (inclusive) of the catalogue; empty past its end.
   * @param {number} from
   * @param {number} to
   * @returns {Promise<ServerEntry[]>}
   */
  getServers(from, to) {
    return this.request({ verb: 'GET_SERVERS', range: `${from}-${to}` }, (msg) => {
      if (msg.msg === 'SERVERS_FOUND') return Array.isArray(msg.servers) ? msg.servers : [];
      if (msg.msg === 'SERVERS_NOT_FOUND') return [];
      return undefined;
    });
  }

  /**
   * Start a session of an app now.
   * @param {string} rcName
   * @returns {Promise<SessionPlace>}
   */
  createSession(rcName) {
    return this.request({ verb: 'CREATE_SESSION', rc_name: rcName }, sessionPlace);
  }

  /**
   * Find the session with this code.
   * @param {string} code
   * @returns {Promise<SessionPlace>}
   */
  connectWithCode(code) {
    return this.request({ verb: 'CONNECT_SESSION_WITH_CODE', code }, sessionPlace);
  }

  /**
   * Run a planned session longer (in the last minutes of its slot): the new end, as the
   * coordinator writes it (`day/month/year HH:MM`, UTC).
   * @param {string} code
   * @param {number} [minutes] default: the coordinator's `extension_minutes`
   * @returns {Promise<string>}
   */
  extendSession(code, minutes) {
    const request = minutes === undefined ? { verb: 'EXTEND_SESSION', code } : { verb: 'EXTEND_SESSION', code, minutes };
    return this.request(request, (msg) => (msg.msg === 'SESSION_EXTENDED' && msg.code === code ? String(msg.until ?? '') : undefined));
  }

  /**
   * The session's `WebRTC_connection_data` (its page), once its node has our place ready;
   * null if that is not said within `timeoutMs`.
   * @param {string} code
   * @param {number} timeoutMs
   * @returns {Promise<string | null>}
   */
  established(code, timeoutMs) {
    const known = this.places.get(code);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.placeWaiters.delete(code);
        resolve(null);
      }, timeoutMs);
      this.placeWaiters.set(code, (data) => {
        clearTimeout(timer);
        this.placeWaiters.delete(code);
        resolve(data);
      });
    });
  }

  close() {
    try {
      this.ws?.close(1000, 'bye');
    } catch {
      // Already closed.
    }
  }
}

/** @param {unknown} data */
function parse(data) {
  if (typeof data !== 'string') return null;
  try {
    const msg = JSON.parse(data);
    return msg && typeof msg === 'object' ? msg : null;
  } catch {
    return null;
  }
}

/** @param {any} msg @returns {SessionPlace | undefined} */
function sessionPlace(msg) {
  if (msg.verb !== 'CONNECT_TO_SESSION') return undefined;
  /** @type {SessionPlace} */
  const place = { ip: String(msg.ip ?? ''), port: String(msg.port ?? ''), code: String(msg.code ?? '') };
  if (typeof msg.host_key === 'string' && msg.host_key) place.hostKey = msg.host_key;
  return place;
}

/** @param {any} msg */
function retryAfter(msg) {
  const seconds = Number(msg.retry_after_seconds);
  return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
}
