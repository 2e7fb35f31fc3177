// The signalling WebSocket and the protocol v1 messages (crates/protocol/src/lib.rs is the
// source of truth; docs/protocol.md has an example of each).

/** @typedef {'publisher' | 'subscriber'} PcKind */
/** @typedef {'microphone' | 'camera' | 'screen' | 'screen_audio'} TrackSource */
/** @typedef {'audio' | 'video'} MediaKind */
/** @typedef {{rid: string, width?: number, height?: number}} LayerInfo */
/** @typedef {{mid: string, source: TrackSource, layers?: LayerInfo[], muted: boolean}} PublishTrack */
/** @typedef {{track_id: string, participant_id: string, kind: MediaKind, source: TrackSource, muted: boolean, simulcast: boolean}} TrackInfo */
/** @typedef {{participant_id: string, name: string, tracks: TrackInfo[], ingest?: boolean}} ParticipantInfo ingest: a publish-only WHIP participant (the session's app) */
/** @typedef {{mid: string, track_id: string, participant_id: string, kind: MediaKind, source: TrackSource}} SubscribedTrack */
/** @typedef {{urls: string[], username?: string, credential?: string}} IceServer */
/** @typedef {{max_message_bytes: number, max_chat_chars: number, max_participants: number, max_file_bytes?: number}} Limits */
/** @typedef {{id: string, name: string, size: number, mime: string, sha256: string, url: string, screenshot?: boolean}} SharedFile */
/** @typedef {{lat: number, lon: number, accuracy_m: number, map_url: string, address?: string, preview?: {file: SharedFile, x: number, y: number}}} SharedLocation */

/**
 * @typedef {{type: 'joined', v: number, participant_id: string, code: string, participants: ParticipantInfo[], ice_servers: IceServer[], limits: Limits, role?: Role, recording: RecordingState, features?: Partial<Features>}} JoinedMsg
 * @typedef {{camera: boolean, microphone: boolean, screen: boolean, chat: boolean, files: boolean, record: boolean}} Features
 * @typedef {'agent' | 'customer' | 'participant'} Role
 * @typedef {'on' | 'off'} RecordingState
 * @typedef {{type: 'offer', pc: 'subscriber', sdp: string, tracks: SubscribedTrack[]}} ServerOfferMsg
 * @typedef {{type: 'answer', pc: 'publisher', sdp: string, tracks: TrackInfo[]}} ServerAnswerMsg
 * @typedef {{type: 'chat', from: string, name: string, text: string, private: boolean, ts: number}} ChatMsg
 * @typedef {{type: 'error', code: string, message: string}} ErrorMsg
 * @typedef {JoinedMsg | ServerOfferMsg | ServerAnswerMsg | ChatMsg | ErrorMsg
 *   | {type: 'participant_joined', participant: ParticipantInfo}
 *   | {type: 'participant_left', participant_id: string}
 *   | {type: 'track_published', track: TrackInfo}
 *   | {type: 'track_unpublished', track_id: string, participant_id: string}
 *   | {type: 'track_muted', track_id: string, participant_id: string, muted: boolean}
 *   | {type: 'candidate', pc: PcKind, candidate: string}
 *   | {type: 'pong', id?: number}
 *   | {type: 'left'}
 *   | {type: 'server_shutdown', reason: string}
 *   | {type: 'control', holder: string | null}
 *   | {type: 'app_stopped', reason: string}
 *   | {type: 'recording', state: RecordingState}
 *   | {type: 'file_upload', id: string, name: string, size: number, url: string}
 *   | {type: 'file', from: string, name: string, file: SharedFile, private: boolean, ts: number}
 *   | {type: 'location', from: string, name: string, location: SharedLocation, private: boolean, ts: number}
 *   | {type: 'location_request', from: string, name: string}
 *   | {type: 'pointer', from: string, source: string, action: 'move' | 'click' | 'leave', x: number, y: number}
 *   | {type: 'location_declined', from: string, name: string, reason: 'declined' | 'denied' | 'unavailable'}} ServerMsg
 */

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** How often a keep-alive `ping` is sent. */
const PING_INTERVAL_MS = 20_000;
/** How long opening the socket or joining may take. */
const CONNECT_TIMEOUT_MS = 10_000;

/** An `error` from the server (or `network` / `timeout` when it could not be reached). */
export class ServerError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'ServerError';
    this.code = code;
  }
}

/** The signalling URL of the server this page came from. */
export function defaultSignalingUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws`;
}

/**
 * One signalling WebSocket. Every server message is dispatched as a `message` event and as an
 * event named after its `type` (both with the message as `detail`); `close` says when the
 * socket is gone, with `{code, reason, expected}` (expected: we closed it or the server said
 * `left`).
 */
export class Signaling extends EventTarget {
  /** @param {string} url */
  constructor(url) {
    super();
    this.url = url;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.closing = false;
    this.pingId = 0;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
  }

  /** Open the socket. @returns {Promise<void>} */
  connect() {
    return new Promise((resolve, reject) => {
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        reject(new ServerError('network', String(e)));
        return;
      }
      this.ws = ws;
      let opened = false;
      const timer = setTimeout(() => {
        if (!opened) {
          ws.close();
          reject(new ServerError('timeout', 'the server did not answer'));
        }
      }, CONNECT_TIMEOUT_MS);
      ws.addEventListener('open', () => {
        opened = true;
        clearTimeout(timer);
        this.pingTimer = setInterval(() => this.send({ type: 'ping', id: ++this.pingId }), PING_INTERVAL_MS);
        resolve();
      });
      ws.addEventListener('message', (event) => this.onMessage(event));
      ws.addEventListener('close', (event) => {
        clearTimeout(timer);
        clearInterval(this.pingTimer);
        if (!opened) {
          reject(new ServerError('network', `cannot reach the server (${event.code})`));
          return;
        }
        const expected = this.closing;
        this.dispatchEvent(new CustomEvent('close', { detail: { code: event.code, reason: event.reason, expected } }));
      });
    });
  }

  /** @param {MessageEvent} event */
  onMessage(event) {
    if (typeof event.data !== 'string') return;
    /** @type {ServerMsg} */
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      console.warn('orbita: server sent something that is not JSON', event.data);
      return;
    }
    if (msg.type === 'left' || msg.type === 'server_shutdown') this.closing = msg.type === 'left';
    this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  /** Whether the socket is open. */
  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Send one client message (dropped when the socket is not open).
   * @param {object} msg
   */
  send(msg) {
    if (!this.open) return false;
    /** @type {WebSocket} */ (this.ws).send(JSON.stringify(msg));
    return true;
  }

  /**
   * Join a room; resolves with `joined`, rejects with the server's `error` (unknown_code,
   * room_full, invalid_value, ...).
   * @param {string} code
   * @param {string} name
   * @param {string | null} [key] the room's host key: join as the call's agent
   * @param {string | null} [consent] the id of the consent text the guest accepted
   * @returns {Promise<JoinedMsg>}
   */
  join(code, name, key = null, consent = null) {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.removeEventListener('message', onMessage);
        this.removeEventListener('close', onClose);
      };
      /** @param {Event} event */
      const onMessage = (event) => {
        const msg = /** @type {ServerMsg} */ (/** @type {CustomEvent} */ (event).detail);
        if (msg.type === 'joined') {
          done();
          resolve(msg);
        } else if (msg.type === 'error') {
          done();
          reject(new ServerError(msg.code, msg.message));
        }
      };
      const onClose = () => {
        done();
        reject(new ServerError('network', 'the connection closed while joining'));
      };
      const timer = setTimeout(() => {
        done();
        reject(new ServerError('timeout', 'the server did not answer the join'));
      }, CONNECT_TIMEOUT_MS);
      this.addEventListener('message', onMessage);
      this.addEventListener('close', onClose);
      /** @type {Record<string, unknown>} */
      const join = { type: 'join', v: PROTOCOL_VERSION, code, name };
      if (key) join.key = key;
      else if (consent) join.consent = consent;
      this.send(join);
    });
  }

  /**
   * Close the socket on purpose (no `close` event with expected=false follows).
   * @param {boolean} [sayLeave] send `leave` first
   */
  close(sayLeave = true) {
    this.closing = true;
    clearInterval(this.pingTimer);
    if (!this.ws) return;
    if (sayLeave) this.send({ type: 'leave' });
    try {
      this.ws.close(1000, 'bye');
    } catch {
      // Already closed.
    }
  }

  /** Drop the socket as a network failure would (tests use this to exercise reconnects). */
  dropForTest() {
    if (this.ws) this.ws.close(4000, 'dropped by test hook');
  }
}
