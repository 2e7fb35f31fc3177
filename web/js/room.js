// A call: the signalling connection, the two peer connections, who is in the room and what
// they publish, chat, the active speaker, control of the session's app, and reconnecting
// after a network drop.

import { QualityReporter } from './call-quality.js';
import { Publisher } from './publisher.js';
import { Subscriber } from './subscriber.js';
import { ServerError, Signaling, defaultSignalingUrl } from './signaling.js';
import { cameraLayers } from './quality.js';
import { captureScreen } from './media.js';
import { hostKey } from './host-key.js';
import { FileTransfers } from './file-transfer.js';

/** @typedef {import('./signaling.js').TrackInfo} TrackInfo */
/** @typedef {import('./signaling.js').ServerMsg} ServerMsg */
/** @typedef {import('./signaling.js').Limits} Limits */
/** @typedef {import('./media.js').LocalMedia} LocalMedia */
/** @typedef {import('./quality.js').Quality} Quality */

/**
 * @typedef {object} Participant
 * @property {string} id
 * @property {string} name
 * @property {Map<string, TrackInfo>} tracks by track id
 * @property {number} level latest audio level, 0..1
 * @property {boolean} speaking
 * @property {boolean} ingest a publish-only participant (WHIP): the session's app
 * @property {string} role agent, customer or participant
 */

/** @typedef {{from: string, name: string, text: string, ts: number, own: boolean, private: boolean, file?: import('./signaling.js').SharedFile, location?: import('./signaling.js').SharedLocation, declined?: string}} ChatEntry */
/** @typedef {'idle' | 'joining' | 'connected' | 'reconnecting' | 'left' | 'failed'} Status */

/** Join errors that retrying cannot fix. */
const FATAL_JOIN_ERRORS = new Set(['unknown_code', 'room_full', 'unsupported_version', 'invalid_value', 'consent_required']);

/** @type {import('./signaling.js').Features} everything on: what `joined` without `features` means */
const ALL_FEATURES = Object.freeze({ camera: true, microphone: true, screen: true, chat: true, files: true, record: true });
/** ICE `disconnected` often heals by itself: wait this long before restarting. */
const DISCONNECT_GRACE_MS = 2_000;
/** A `not_allowed` this soon after our last input is that input crossing a control change. */
const INPUT_RACE_MS = 2_000;
/** How long an ICE restart may take before we rejoin from scratch. */
const RESTART_DEADLINE_MS = 6_000;
/** Audio level above which a participant counts as speaking. */
const SPEAKING_LEVEL = 0.03;
/** A speaker stays "speaking" this long after the level drops. */
const SPEAKING_HOLD_MS = 700;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The browser's position (it asks the person first), or why not.
 * @returns {Promise<GeolocationPosition | {refused: 'denied' | 'unavailable'}>}
 */
function currentPosition() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve({ refused: 'unavailable' });
    navigator.geolocation.getCurrentPosition(
      (position) => resolve(position),
      (error) => resolve({ refused: error.code === error.PERMISSION_DENIED ? 'denied' : 'unavailable' }),
      { enableHighAccuracy: true, timeout: 20_000, maximumAge: 30_000 },
    );
  });
}

/**
 * Events (all `CustomEvent`):
 * - `status` {status, error?}: joining, connected, reconnecting, left, failed
 * - `update`: the roster, tracks, received media or own media changed
 * - `chat` {entry}
 * - `notice` {key, args?, detail?, level}: something to tell the person (server errors...)
 * - `speakers`: speaking flags or the active speaker changed
 * - `appstopped` {reason}: the session's app stopped
 */
export class RoomSession extends EventTarget {
  /**
   * @param {{code: string, name: string, local: LocalMedia, micMuted?: boolean, cameraOff?: boolean, consent?: string | null, url?: string}} options
   */
  constructor({ code, name, local, micMuted = false, cameraOff = false, consent = null, url = defaultSignalingUrl() }) {
    super();
    this.code = code;
    /** the consent text the guest accepted (its id), sent with every join */
    this.consent = consent;
    /** @type {import('./signaling.js').Features} what we may do in this call (`joined`) */
    this.features = { ...ALL_FEATURES };
    this.name = name;
    this.local = local;
    this.url = url;
    this.micMuted = micMuted || !local.mic;
    this.cameraOff = cameraOff || !local.camera;
    /** @type {Quality} */
    this.quality = local.quality;
    /** @type {Status} */
    this.status = 'idle';
    /** @type {Status[]} every status this session went through (the tests read it) */
    this.statusLog = [];
    /** @type {string | null} */
    this.selfId = null;
    /** @type {import('./signaling.js').Role} ours: the agent may start and stop recording */
    this.role = 'participant';
    /** whether the call is being recorded (everyone is shown) */
    this.recording = false;
    /** @type {Limits} */
    this.limits = { max_message_bytes: 65536, max_chat_chars: 4000, max_participants: 100 };
    /** @type {Map<string, Participant>} everyone else */
    this.participants = new Map();
    /** @type {Map<string, MediaStreamTrack>} received tracks by track id */
    this.remoteTracks = new Map();
    /** @type {ChatEntry[]} */
    this.messages = [];
    /** @type {{video: MediaStreamTrack, audio: MediaStreamTrack | null} | null} */
    this.screen = null;
    /** @type {Signaling | null} */
    this.signaling = null;
    /** @type {Publisher | null} */
    this.publisher = null;
    /**
     * The last connection quality reports per participant and source (`quality`).
     * @type {Map<string, {browser?: {report: import('./call-quality.js').QualityReport, at: number}, server?: {report: import('./call-quality.js').QualityReport, at: number}}>}
     */
    this.peerQuality = new Map();
    /** @type {QualityReporter | null} */
    this.qualityReporter = null;
    /** @type {{callId: string, token: string, participant: string, filesKey: string | null} | null} the call, our survey token and the key to its files */
    this.callInfo = null;
    /** Files we send to the chat. */
    this.files = new FileTransfers({
      send: (msg) => (this.features.files && this.signaling?.send(msg)) || false,
      maxBytes: () => (this.features.files ? (this.limits.max_file_bytes ?? 0) : 0),
    });
    /** @type {Subscriber | null} */
    this.subscriber = null;
    /** @type {string | null} */
    this.activeSpeaker = null;
    this.selfLevel = 0;
    this.selfSpeaking = false;
    /** @type {Map<string, number>} when each participant last spoke */
    this.lastSpoke = new Map();
    this.rejoining = false;
    this.rejoins = 0;
    this.iceRestarts = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.troubleTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.restartDeadline = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.speakerTimer = undefined;
    this.polling = false;
    /** Generation of the current connection; events of older ones are ignored. */
    this.generation = 0;
    /** Whether this is an app session (the server said who holds control). */
    this.appSession = false;
    /** @type {string | null} the participant holding control of the app */
    this.controlHolder = null;
    /** @type {string | null} why the app stopped, once it did */
    this.appStopped = null;
    /** App input messages sent (the tests read it). */
    this.inputsSent = 0;
    /** What a TURN relay answered when it refused us (`401 Unauthorized`), if one did. @type {string | null} */
    this.relayRefused = null;
    /** When input was last sent (a `not_allowed` just after losing control is expected). */
    this.lastInputAt = -Infinity;
  }

  // ----- lifecycle ------------------------------------------------------------------

  /** Join the room; throws a ServerError (unknown_code, room_full, network, ...). */
  async join() {
    this.setStatus('joining');
    try {
      await this.connect();
    } catch (error) {
      this.teardown(false);
      this.setStatus('failed', error);
      throw error;
    }
    this.setStatus('connected');
    this.speakerTimer = setInterval(() => this.pollSpeakers(), 250);
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
  }

  /** The browser lost its network: say so at once, rather than when ICE notices. */
  onOffline = () => {
    if (this.status === 'connected') this.setStatus('reconnecting');
  };

  /** The network is back (maybe another one): restart ICE so media takes the new path. */
  onOnline = () => {
    if (this.rejoining || this.status === 'left' || this.status === 'failed') return;
    if (!this.signaling || !this.signaling.open) {
      this.rejoin('network');
      return;
    }
    this.restartIce();
  };

  /** Open signalling, join, and set up both peer connections and what we publish. */
  async connect() {
    const generation = ++this.generation;
    const signaling = new Signaling(this.url);
    await signaling.connect();
    this.signaling = signaling;
    let joined;
    try {
      joined = await signaling.join(this.code, this.name, hostKey(this.code), this.consent);
    } catch (error) {
      signaling.close(false);
      this.signaling = null;
      throw error;
    }
    this.selfId = joined.participant_id;
    this.limits = joined.limits;
    this.role = joined.role ?? 'participant';
    this.recording = joined.recording === 'on';
    this.features = { ...ALL_FEATURES, ...(joined.features ?? {}) };
    // What the administrators switched off for us is not sent (the server would refuse it).
    if (!this.features.camera) {
      this.cameraOff = true;
      this.local.stopCamera();
    }
    if (!this.features.microphone) this.micMuted = true;
    if (!this.features.screen) this.stopScreenTracks();
    this.controlHolder = null; // an app session says who holds it right after joining
    this.participants = new Map();
    for (const p of joined.participants) this.addParticipant(p);
    // The publisher bundles everything (we make its offers); the subscriber takes the
    // server's offers as they come (one whose m-lines are all stopped has no BUNDLE group).
    /** @type {RTCConfiguration} */
    const config = { iceServers: joined.ice_servers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
    /** @type {RTCConfiguration} */
    const subscriberConfig = { iceServers: joined.ice_servers, bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };

    signaling.addEventListener('message', (event) => {
      if (generation === this.generation) this.onMessage(/** @type {CustomEvent} */ (event).detail);
    });
    signaling.addEventListener('close', (event) => {
      const detail = /** @type {CustomEvent} */ (event).detail;
      if (generation === this.generation && !detail.expected) this.rejoin('signaling');
    });

    const subscriber = new Subscriber(signaling, subscriberConfig);
    this.subscriber = subscriber;
    subscriber.addEventListener('track', (event) => {
      const remote = /** @type {CustomEvent} */ (event).detail;
      this.remoteTracks.set(remote.info.track_id, remote.track);
      this.update();
    });
    subscriber.addEventListener('trackended', (event) => {
      const remote = /** @type {CustomEvent} */ (event).detail;
      this.remoteTracks.delete(remote.info.track_id);
      this.update();
    });
    subscriber.addEventListener('failure', () => this.rejoin('subscriber'));
    subscriber.pc.addEventListener('connectionstatechange', () => this.checkMedia());
    subscriber.pc.addEventListener('icecandidateerror', (event) => this.onIceCandidateError(event));

    const publisher = new Publisher(signaling, config);
    this.publisher = publisher;
    this.qualityReporter ??= new QualityReporter(
      () => ({ publisher: this.publisher?.pc ?? null, subscriber: this.subscriber?.pc ?? null }),
      (report) => this.signaling?.send({ type: 'stats', ...report }),
    );
    publisher.pc.addEventListener('connectionstatechange', () => this.checkMedia());
    publisher.pc.addEventListener('icecandidateerror', (event) => this.onIceCandidateError(event));

    if (this.quality !== 'auto') signaling.send({ type: 'set_quality', max: this.quality });
    await this.publishAll();
    this.sendDevices();
    this.update();
  }

  /** Publish what we have: microphone (maybe muted), camera (unless off), a screen share. */
  async publishAll() {
    const publisher = /** @type {Publisher} */ (this.publisher);
    const { mic, camera } = this.local;
    if (mic && this.features.microphone) await publisher.publish('microphone', { track: mic, muted: this.micMuted, negotiate: false });
    if (camera && !this.cameraOff && this.features.camera) {
      await publisher.publish('camera', { track: camera, layers: this.layersFor(camera), negotiate: false });
    }
    if (this.screen) {
      await publisher.publish('screen', { track: this.screen.video, maxBitrate: 2_500_000, negotiate: false });
      if (this.screen.audio) await publisher.publish('screen_audio', { track: this.screen.audio, negotiate: false });
    }
    if (publisher.publishing) await publisher.negotiate();
  }

  /** The names of our camera and microphone, for the call's record (once granted, browsers give them). */
  sendDevices() {
    const label = (/** @type {MediaStreamTrack | null | undefined} */ track) =>
      // eslint-disable-next-line no-control-regex
      Array.from((track?.label ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')).slice(0, 200).join('').trim();
    /** @type {Record<string, string>} */
    const msg = { type: 'devices' };
    const camera = label(this.cameraOff ? null : this.local.camera);
    const microphone = label(this.local.mic);
    if (camera) msg.camera = camera;
    if (microphone) msg.microphone = microphone;
    if (camera || microphone) this.signaling?.send(msg);
  }

  /** @param {MediaStreamTrack} camera */
  layersFor(camera) {
    const s = camera.getSettings();
    return cameraLayers(s.width ?? 1280, s.height ?? 720, this.quality);
  }

  /** Leave the room and release the camera and microphone. */
  leave() {
    if (this.status === 'left') return;
    this.generation++;
    this.teardown(true);
    this.stopScreenTracks();
    this.local.stopAll();
    clearInterval(this.speakerTimer);
    this.qualityReporter?.stop();
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    this.setStatus('left');
  }

  /**
   * Close the connections and forget the room's state (not our own media).
   * @param {boolean} sayLeave
   */
  teardown(sayLeave) {
    clearTimeout(this.troubleTimer);
    clearTimeout(this.restartDeadline);
    this.troubleTimer = undefined;
    this.restartDeadline = undefined;
    this.publisher?.close();
    this.subscriber?.close();
    this.signaling?.close(sayLeave);
    this.publisher = null;
    this.subscriber = null;
    this.signaling = null;
    this.participants = new Map();
    this.remoteTracks = new Map();
    this.activeSpeaker = null;
  }

  /**
   * Start again from a new signalling connection with the same code and name (the server
   * dropped us from the room when the old one closed). Retries until it works or cannot.
   * @param {string} reason
   */
  async rejoin(reason) {
    if (this.rejoining || this.status === 'left' || this.status === 'idle') return;
    this.rejoining = true;
    console.info(`orbita: rejoining (${reason})`);
    this.generation++;
    this.setStatus('reconnecting');
    // Keep showing who was there (without their media) until the new join says who is.
    const known = this.participants;
    this.teardown(true);
    this.participants = known;
    this.update();
    let delay = 500;
    while (this.status === 'reconnecting') {
      try {
        await this.connect();
        this.rejoins += 1;
        this.setStatus('connected');
        break;
      } catch (error) {
        this.teardown(false);
        this.participants = known;
        const code = error instanceof ServerError ? error.code : 'other';
        if (FATAL_JOIN_ERRORS.has(code)) {
          this.setStatus('failed', error);
          break;
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 8_000);
      }
    }
    this.rejoining = false;
    this.update();
  }

  /**
   * A TURN relay that refuses us (401: its secret is not the server's; 4xx: it will not relay
   * for us) is said once: without the relay, people behind strict firewalls cannot connect.
   * @param {Event} event
   */
  onIceCandidateError(event) {
    const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
    if (!/^turns?:/i.test(e.url ?? '') || e.errorCode < 400 || e.errorCode >= 500) return;
    console.info('orbita: TURN relay refused', e.url, e.errorCode, e.errorText);
    if (this.relayRefused !== null) return;
    this.relayRefused = `${e.errorCode} ${e.errorText}`.trim();
    this.notice('notice.relay_refused', {}, 'error', `${e.url}: ${this.relayRefused}`);
  }

  /** Look at both peer connections: start an ICE restart when one dropped. */
  checkMedia() {
    if (this.status !== 'connected' && this.status !== 'reconnecting') return;
    if (this.rejoining) return;
    const states = this.pcStates();
    const failed = states.includes('failed');
    const disconnected = states.includes('disconnected');
    if (failed || disconnected) {
      if (this.troubleTimer === undefined && this.restartDeadline === undefined) {
        this.troubleTimer = setTimeout(() => {
          this.troubleTimer = undefined;
          const now = this.pcStates();
          if (now.includes('failed') || now.includes('disconnected')) this.restartIce();
        }, failed ? 0 : DISCONNECT_GRACE_MS);
      }
    } else if (states.every((s) => s === 'connected')) {
      clearTimeout(this.troubleTimer);
      this.troubleTimer = undefined;
      if (this.restartDeadline !== undefined) {
        clearTimeout(this.restartDeadline);
        this.restartDeadline = undefined;
        this.setStatus('connected');
      }
    }
  }

  /** Connection states of the peer connections in use. */
  pcStates() {
    /** @type {RTCPeerConnectionState[]} */
    const states = [];
    if (this.publisher?.negotiated) states.push(this.publisher.pc.connectionState);
    if (this.subscriber?.negotiated) states.push(this.subscriber.pc.connectionState);
    return states;
  }

  /** Restart ICE on the publisher connection (the subscriber's recovers with the client's
   * checks, the server being ICE-lite); rejoin if media has not come back in a few seconds. */
  restartIce() {
    if (this.status !== 'connected' && this.status !== 'reconnecting') return;
    this.setStatus('reconnecting');
    this.iceRestarts += 1;
    clearTimeout(this.restartDeadline);
    this.restartDeadline = setTimeout(() => {
      this.restartDeadline = undefined;
      this.rejoin('ice');
    }, RESTART_DEADLINE_MS);
    const publisher = this.publisher;
    if (publisher && publisher.negotiated) {
      publisher.negotiate({ iceRestart: true }).then(
        () => this.checkMedia(),
        (error) => console.info('orbita: ICE restart failed', error),
      );
    } else {
      this.checkMedia();
    }
  }

  // ----- server messages ------------------------------------------------------------

  /** @param {ServerMsg} msg */
  onMessage(msg) {
    switch (msg.type) {
      case 'participant_joined':
        this.addParticipant(msg.participant);
        if (!msg.participant.ingest) this.notice('notice.joined', { name: msg.participant.name }, 'info');
        this.update();
        break;
      case 'participant_left': {
        const p = this.participants.get(msg.participant_id);
        this.participants.delete(msg.participant_id);
        if (p && !p.ingest) this.notice('notice.left', { name: p.name }, 'info');
        this.update();
        break;
      }
      case 'control':
        this.onControl(msg.holder);
        break;
      case 'call_info':
        // The call's id and our survey token (the survey after the call).
        this.callInfo = { callId: msg.call_id, token: msg.token, participant: this.selfId ?? '', filesKey: msg.files_key ?? null };
        break;
      case 'file_upload':
        this.files.granted(msg);
        break;
      case 'file':
        this.addEntry({ from: msg.from, name: msg.name, text: '', ts: msg.ts, own: msg.from === this.selfId, private: msg.private, file: msg.file });
        break;
      case 'location':
        this.addEntry({ from: msg.from, name: msg.name, text: '', ts: msg.ts, own: msg.from === this.selfId, private: msg.private, location: msg.location });
        break;
      case 'pointer':
        // Someone's pointer on our video (the call view shows it on our picture).
        this.dispatchEvent(new CustomEvent('pointer', { detail: msg }));
        break;
      case 'location_request':
        // The agent asks for our location: the person decides (`answerLocationRequest`).
        this.dispatchEvent(new CustomEvent('locationrequest', { detail: { from: msg.from, name: msg.name } }));
        break;
      case 'location_declined':
        this.addEntry({ from: msg.from, name: msg.name, text: '', ts: Date.now(), own: false, private: true, declined: msg.reason });
        break;
      case 'quality': {
        // Someone's connection quality (the agent's live view), or our own as the server sees it.
        const known = this.peerQuality.get(msg.participant) ?? {};
        known[msg.source] = { report: msg.report, at: Date.now() };
        this.peerQuality.set(msg.participant, known);
        this.update();
        break;
      }
      case 'recording':
        this.recording = msg.state === 'on';
        this.notice(this.recording ? 'notice.recording_on' : 'notice.recording_off', {}, 'info');
        this.update();
        break;
      case 'app_stopped':
        this.appStopped = msg.reason;
        this.dispatchEvent(new CustomEvent('appstopped', { detail: { reason: msg.reason } }));
        this.update();
        break;
      case 'track_published':
        this.participants.get(msg.track.participant_id)?.tracks.set(msg.track.track_id, { ...msg.track });
        this.update();
        break;
      case 'track_unpublished':
        this.participants.get(msg.participant_id)?.tracks.delete(msg.track_id);
        this.update();
        break;
      case 'track_muted': {
        const track = this.participants.get(msg.participant_id)?.tracks.get(msg.track_id);
        if (track) track.muted = msg.muted;
        this.update();
        break;
      }
      case 'chat':
        this.addEntry({ from: msg.from, name: msg.name, text: msg.text, ts: msg.ts, own: msg.from === this.selfId, private: msg.private });
        break;
      case 'error':
        if (this.files.refused(msg)) {
          // A file we asked to send was refused: its line in the chat says why.
        } else if (msg.code === 'unavailable') {
          // The media connection was lost, or the room ended (after its app stopped, that
          // says enough): start over.
          if (this.appStopped === null) this.notice(`error.${msg.code}`, {}, 'error', msg.message);
          this.rejoin('server');
        } else if (msg.code === 'not_allowed' && !this.hasControl && performance.now() - this.lastInputAt < INPUT_RACE_MS) {
          // Input that crossed the news that control moved on: nothing to tell.
          console.info('orbita: input refused after control moved', msg.message);
        } else {
          this.notice(`error.${msg.code}`, {}, 'error', msg.message);
        }
        break;
      case 'server_shutdown':
        this.notice('notice.server_shutdown', {}, 'error', msg.reason);
        break;
      default:
        break;
    }
  }

  /** @param {import('./signaling.js').ParticipantInfo} info */
  addParticipant(info) {
    this.participants.set(info.participant_id, {
      id: info.participant_id,
      name: info.name,
      tracks: new Map(info.tracks.map((t) => [t.track_id, { ...t }])),
      level: 0,
      speaking: false,
      ingest: Boolean(info.ingest),
      role: info.role ?? 'participant',
    });
  }

  // ----- control of the session's app -------------------------------------------------

  /**
   * The server says who holds control now: tell the person when it came to them or left them.
   * @param {string | null} holder
   */
  onControl(holder) {
    const before = this.controlHolder;
    this.appSession = true;
    this.controlHolder = holder;
    if (holder !== null) this.appStopped = null; // the app is (back) up: restarted after a stop
    if (holder !== before && this.selfId) {
      if (holder === this.selfId) this.notice('control.you_got', {}, 'info');
      else if (before === this.selfId && holder) this.notice('control.went_to', { name: this.nameOf(holder) }, 'info');
    }
    this.update();
  }

  /** Whether we hold control of the app. */
  get hasControl() {
    return this.controlHolder !== null && this.controlHolder === this.selfId && this.appStopped === null;
  }

  /**
   * The display name of a participant (ourselves included).
   * @param {string} id
   */
  nameOf(id) {
    return id === this.selfId ? this.name : (this.participants.get(id)?.name ?? '');
  }

  /** How many people are in the room, us included (the app is not a person). */
  peopleCount() {
    let count = 1;
    for (const p of this.participants.values()) if (!p.ingest) count += 1;
    return count;
  }

  /**
   * Send an input event to the app; only while we hold control (nothing is sent otherwise).
   * @param {object} event `{type: 'pointer' | 'key' | 'touch', ...}`
   * @returns {boolean} whether it was sent
   */
  sendInput(event) {
    if (!this.hasControl || !this.signaling) return false;
    if (!this.signaling.send({ type: 'input', event })) return false;
    this.inputsSent += 1;
    this.lastInputAt = performance.now();
    return true;
  }

  /**
   * Hand control of the app to another person (we must hold it).
   * @param {string} to participant id
   */
  giveControl(to) {
    const target = this.participants.get(to);
    if (!this.hasControl || !target || target.ingest) return;
    if (!this.signaling || !this.signaling.send({ type: 'give_control', to })) {
      this.notice('control.not_given', { name: target.name }, 'error');
    }
  }

  // ----- own media --------------------------------------------------------------------

  /** @param {boolean} muted */
  async setMicMuted(muted) {
    if (!muted && !this.features.microphone) return;
    if (!muted && !this.local.mic) {
      await this.local.start({ audio: true, video: false });
      if (!this.local.mic) {
        this.notice(`device.mic.${this.local.micProblem ?? 'other'}`, {}, 'error');
        return;
      }
      this.micMuted = false;
      await this.publisher?.publish('microphone', { track: this.local.mic, muted: false });
      this.update();
      return;
    }
    this.micMuted = muted;
    await this.publisher?.setMuted('microphone', muted);
    this.update();
  }

  /** @param {boolean} on */
  async setCameraOn(on) {
    if (!on) {
      this.cameraOff = true;
      await this.publisher?.setMuted('camera', true);
      this.local.stopCamera();
      this.update();
      return;
    }
    if (!this.features.camera) return;
    await this.local.start({ audio: false, video: true });
    if (!this.local.camera) {
      this.notice(`device.camera.${this.local.cameraProblem ?? 'other'}`, {}, 'error');
      return;
    }
    this.cameraOff = false;
    await this.syncCamera();
    this.sendDevices();
    this.update();
  }

  /** Send the current camera track with layers for the current quality. */
  async syncCamera() {
    const camera = this.local.camera;
    if (!this.publisher || !camera || this.cameraOff) return;
    await this.publisher.publish('camera', { track: camera, layers: this.layersFor(camera) });
  }

  /**
   * Use another camera (PCs) or the other facing mode (phones).
   * @param {string | undefined} deviceId
   * @param {'user' | 'environment'} [facingMode]
   */
  async switchCamera(deviceId, facingMode) {
    try {
      await this.local.switchCamera(deviceId, facingMode);
    } catch {
      this.notice(`device.camera.${this.local.cameraProblem ?? 'other'}`, {}, 'error');
      return;
    }
    if (this.cameraOff) {
      this.local.stopCamera();
      return;
    }
    await this.syncCamera();
    this.update();
  }

  /**
   * The maximum quality: what the camera captures and we send, and what we receive.
   * @param {Quality} quality
   */
  async setQuality(quality) {
    this.quality = quality;
    this.signaling?.send({ type: 'set_quality', max: quality });
    await this.local.applyQuality(quality);
    await this.syncCamera();
    this.update();
  }

  /** Share the screen as its own track (and its audio, where the browser gives it). */
  async startScreenShare() {
    if (this.screen || !this.features.screen) return;
    let captured;
    try {
      captured = await captureScreen();
    } catch (error) {
      // Cancelling the browser's picker is not an error worth a message.
      if (!(error instanceof DOMException && error.name === 'NotAllowedError')) {
        this.notice('notice.screen_failed', {}, 'error', String(error));
      }
      return;
    }
    this.screen = captured;
    captured.video.addEventListener('ended', () => this.stopScreenShare());
    const publisher = this.publisher;
    if (publisher) {
      await publisher.publish('screen', { track: captured.video, maxBitrate: 2_500_000, negotiate: false });
      if (captured.audio) await publisher.publish('screen_audio', { track: captured.audio, negotiate: false });
      await publisher.negotiate();
    }
    this.update();
  }

  async stopScreenShare() {
    if (!this.screen) return;
    this.stopScreenTracks();
    const publisher = this.publisher;
    if (publisher) {
      await publisher.unpublish('screen', { negotiate: false });
      await publisher.unpublish('screen_audio', { negotiate: false });
      await publisher.negotiate();
    }
    this.update();
  }

  stopScreenTracks() {
    if (!this.screen) return;
    this.screen.video.stop();
    this.screen.audio?.stop();
    this.screen = null;
  }

  /**
   * Start or stop recording the call (the agent only; the server tells everyone).
   * @param {boolean} on
   */
  setRecording(on) {
    if (!this.features.record) return;
    this.signaling?.send({ type: 'record', on });
  }

  /**
   * Send a chat message to everyone.
   * @param {string} text
   * @returns {boolean} whether it was sent
   */
  sendChat(text) {
    const trimmed = text.trim();
    if (!trimmed || !this.features.chat) return false;
    if (Array.from(trimmed).length > this.limits.max_chat_chars) {
      this.notice('chat.too_long', { max: this.limits.max_chat_chars }, 'error');
      return false;
    }
    if (!this.signaling || !this.signaling.send({ type: 'chat', text: trimmed })) {
      this.notice('chat.not_sent', {}, 'error');
      return false;
    }
    return true;
  }

  /**
   * A line of the chat (kept: the last 500).
   * @param {ChatEntry} entry
   */
  addEntry(entry) {
    this.messages.push(entry);
    if (this.messages.length > 500) this.messages.shift();
    this.dispatchEvent(new CustomEvent('chat', { detail: { entry } }));
  }

  /**
   * Share our location in the chat (with `to` only, when given: the one who asked). The
   * browser asks the person's permission first.
   * @param {string} [to]
   * @returns {Promise<boolean>} whether the browser gave it
   */
  async shareLocation(to) {
    const position = await currentPosition();
    if ('refused' in position) {
      if (to) this.signaling?.send({ type: 'location_declined', to, reason: position.refused });
      this.notice(`location.${position.refused}`, {}, 'error');
      return false;
    }
    const { latitude, longitude, accuracy } = position.coords;
    this.signaling?.send({ type: 'location', lat: latitude, lon: longitude, accuracy_m: Math.min(accuracy, 1_000_000), ...(to ? { to } : {}) });
    return true;
  }

  /**
   * The person's answer to the agent's request for their location.
   * @param {string} from who asked
   * @param {boolean} share
   */
  answerLocationRequest(from, share) {
    if (share) return this.shareLocation(from);
    this.signaling?.send({ type: 'location_declined', to: from, reason: 'declined' });
    return Promise.resolve(false);
  }

  /** The agent asks every customer of the call for their location. */
  requestLocations() {
    const customers = [...this.participants.values()].filter((p) => p.role === 'customer');
    for (const p of customers) this.signaling?.send({ type: 'location_request', to: p.id });
    return customers.length;
  }

  /**
   * Send a file to the chat (everyone): its upload, with progress, on `this.files`.
   * @param {File} file
   */
  sendFile(file) {
    return this.files.send(file);
  }

  /**
   * Where a file of the chat downloads (with the call's key).
   * @param {import('./signaling.js').SharedFile} file
   */
  fileUrl(file) {
    return `${file.url}?key=${encodeURIComponent(this.callInfo?.filesKey ?? '')}`;
  }

  // ----- active speaker -------------------------------------------------------------

  /** Update who is speaking (every 250 ms); at most one reading runs at a time. */
  async pollSpeakers() {
    if (this.polling) return;
    this.polling = true;
    try {
      const levels = (await this.subscriber?.audioLevels()) ?? new Map();
      this.selfLevel = this.micMuted ? 0 : ((await this.publisher?.micLevel()) ?? 0);
      this.applyLevels(levels);
    } finally {
      this.polling = false;
    }
  }

  /**
   * @param {Map<string, number>} levels by participant id
   */
  applyLevels(levels) {
    const now = performance.now();
    let changed = false;
    for (const p of this.participants.values()) {
      const level = levels.get(p.id) ?? 0;
      p.level = level;
      if (level > SPEAKING_LEVEL) this.lastSpoke.set(p.id, now);
      const speaking = now - (this.lastSpoke.get(p.id) ?? -Infinity) < SPEAKING_HOLD_MS;
      if (speaking !== p.speaking) changed = true;
      p.speaking = speaking;
    }
    if (this.selfLevel > SPEAKING_LEVEL) this.lastSpoke.set('self', now);
    const selfSpeaking = now - (this.lastSpoke.get('self') ?? -Infinity) < SPEAKING_HOLD_MS;
    if (selfSpeaking !== this.selfSpeaking) changed = true;
    this.selfSpeaking = selfSpeaking;

    // The active speaker is the loudest of those speaking; it stays until someone else speaks.
    let loudest = null;
    let best = 0;
    for (const p of this.participants.values()) {
      if (p.speaking && p.level >= best) {
        best = p.level;
        loudest = p.id;
      }
    }
    if (loudest && loudest !== this.activeSpeaker) {
      this.activeSpeaker = loudest;
      changed = true;
    }
    if (this.activeSpeaker && !this.participants.has(this.activeSpeaker)) {
      this.activeSpeaker = null;
      changed = true;
    }
    if (changed) this.dispatchEvent(new CustomEvent('speakers'));
  }

  // ----- helpers ----------------------------------------------------------------------

  /**
   * @param {Status} status
   * @param {unknown} [error]
   */
  setStatus(status, error) {
    if (this.status === status) return;
    this.status = status;
    this.statusLog.push(status);
    this.dispatchEvent(new CustomEvent('status', { detail: { status, error } }));
  }

  update() {
    this.dispatchEvent(new CustomEvent('update'));
  }

  /**
   * @param {string} key translation key
   * @param {Record<string, string | number>} args
   * @param {'info' | 'error'} level
   * @param {string} [detail] the server's own words, shown as well
   */
  notice(key, args, level, detail) {
    this.dispatchEvent(new CustomEvent('notice', { detail: { key, args, level, detail } }));
  }

  /** The share link of this room. */
  get link() {
    return `${location.origin}/r/${encodeURIComponent(this.code)}`;
  }

  /** Statistics for tests and the debug hook. */
  async stats() {
    return {
      selfId: this.selfId,
      status: this.status,
      inbound: (await this.subscriber?.stats()) ?? [],
      outbound: (await this.publisher?.stats()) ?? {},
      publisherState: this.publisher?.pc.connectionState ?? null,
      subscriberState: this.subscriber?.pc.connectionState ?? null,
      iceRestarts: this.iceRestarts,
      rejoins: this.rejoins,
      controlHolder: this.controlHolder,
      inputsSent: this.inputsSent,
      relayRefused: this.relayRefused,
      qualitySent: this.qualityReporter?.lastReport ?? null,
    };
  }
}
