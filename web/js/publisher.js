// The publisher peer connection: what this client sends. The client offers, the server
// answers; every offer lists all tracks we publish (a track left out is unpublished).

import { CAMERA_RIDS } from './quality.js';

/** @typedef {import('./signaling.js').Signaling} Signaling */
/** @typedef {import('./signaling.js').TrackSource} TrackSource */
/** @typedef {import('./signaling.js').TrackInfo} TrackInfo */
/** @typedef {import('./signaling.js').PublishTrack} PublishTrack */
/** @typedef {import('./quality.js').Layer} Layer */

/**
 * One sending m-line, kept for the life of the connection (it is reused when a source is
 * published again, so the SDP does not grow).
 * @typedef {object} Slot
 * @property {TrackSource} source
 * @property {RTCRtpTransceiver} transceiver
 * @property {MediaStreamTrack | null} track
 * @property {boolean} muted
 * @property {boolean} published whether the next offer lists it
 * @property {Layer[] | null} layers simulcast layers (camera)
 * @property {number | null} maxBitrate single-stream cap (screen)
 * @property {TrackInfo | null} info what the server says about it, once answered
 */

/** How long the server may take to answer an offer. */
const ANSWER_TIMEOUT_MS = 15_000;

/** @param {TrackSource} source */
function kindOf(source) {
  return source === 'microphone' || source === 'screen_audio' ? 'audio' : 'video';
}

/**
 * @param {Layer[] | null} a
 * @param {Layer[] | null} b
 */
function sameSizes(a, b) {
  if (!a || !b) return a === b;
  return a.length === b.length && a.every((l, i) => l.width === b[i].width && l.height === b[i].height);
}

export class Publisher extends EventTarget {
  /**
   * @param {Signaling} signaling
   * @param {RTCConfiguration} config
   */
  constructor(signaling, config) {
    super();
    this.signaling = signaling;
    this.pc = new RTCPeerConnection(config);
    /** @type {Map<TrackSource, Slot>} */
    this.slots = new Map();
    /** Whether an offer was answered (the server has this connection). */
    this.negotiated = false;
    this.restarts = 0;
    /** @type {{energy: number, duration: number} | null} */
    this.micEnergy = null;
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** @type {Promise<void> | null} a negotiation queued but not started yet */
    this.queued = null;
    this.queuedRestart = false;
    /** @type {{resolve: (msg: import('./signaling.js').ServerAnswerMsg) => void, reject: (e: Error) => void} | null} */
    this.waiting = null;

    this.pc.addEventListener('icecandidate', (event) => {
      // An empty candidate tells the server gathering is over.
      this.signaling.send({ type: 'candidate', pc: 'publisher', candidate: event.candidate ? event.candidate.candidate : '' });
    });
    this.onAnswer = this.onAnswer.bind(this);
    this.onServerError = this.onServerError.bind(this);
    this.onCandidate = this.onCandidate.bind(this);
    signaling.addEventListener('answer', this.onAnswer);
    signaling.addEventListener('error', this.onServerError);
    signaling.addEventListener('candidate', this.onCandidate);
  }

  /** @param {Event} event */
  onAnswer(event) {
    const msg = /** @type {CustomEvent} */ (event).detail;
    if (msg.pc !== 'publisher') return;
    if (this.waiting) this.waiting.resolve(msg);
  }

  /** @param {Event} event */
  onServerError(event) {
    const msg = /** @type {CustomEvent} */ (event).detail;
    // An offer the server cannot use gets `sdp_error` and no answer.
    if (msg.code === 'sdp_error' && this.waiting) this.waiting.reject(new Error(msg.message));
  }

  /** @param {Event} event */
  onCandidate(event) {
    const msg = /** @type {CustomEvent} */ (event).detail;
    if (msg.pc !== 'publisher' || !msg.candidate) return;
    this.pc.addIceCandidate({ candidate: msg.candidate, sdpMid: '0' }).catch((e) => console.info('orbita: candidate', e));
  }

  /** Whether the source is published (listed in offers). @param {TrackSource} source */
  has(source) {
    return this.slots.get(source)?.published ?? false;
  }

  /** Whether anything is published. */
  get publishing() {
    return [...this.slots.values()].some((s) => s.published);
  }

  /**
   * Publish a source with a track (or update it): the track is sent unless muted. Negotiates
   * when the set of published tracks or the camera's layer sizes change (the server learns
   * layer sizes when a track is published, so new sizes mean publishing the track again).
   * @param {TrackSource} source
   * @param {{track: MediaStreamTrack | null, muted?: boolean, layers?: Layer[] | null, maxBitrate?: number | null, negotiate?: boolean}} options
   */
  async publish(source, { track, muted = false, layers = null, maxBitrate = null, negotiate = true }) {
    let slot = this.slots.get(source);
    let mustNegotiate = false;
    if (!slot) {
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendonly' };
      if (source === 'camera') {
        init.sendEncodings = CAMERA_RIDS.map((rid, i) => ({
          rid,
          scaleResolutionDownBy: layers?.[i]?.scaleResolutionDownBy ?? 2 ** (CAMERA_RIDS.length - 1 - i),
          maxBitrate: layers?.[i]?.maxBitrate ?? [150_000, 500_000, 1_500_000][i],
          active: layers?.[i]?.active ?? true,
        }));
      } else if (maxBitrate) {
        init.sendEncodings = [{ maxBitrate }];
      }
      const transceiver = this.pc.addTransceiver(kindOf(source), init);
      slot = { source, transceiver, track: null, muted, published: true, layers, maxBitrate, info: null };
      this.slots.set(source, slot);
      mustNegotiate = true;
    } else if (!slot.published) {
      slot.transceiver.direction = 'sendonly';
      slot.published = true;
      slot.layers = layers;
      mustNegotiate = true;
    } else if (layers && !sameSizes(slot.layers, layers)) {
      // Publish it again so the server has the new sizes: once without, once with.
      slot.published = false;
      slot.transceiver.direction = 'inactive';
      slot.info = null;
      await this.negotiate();
      slot.transceiver.direction = 'sendonly';
      slot.published = true;
      slot.layers = layers;
      mustNegotiate = true;
    } else if (layers) {
      slot.layers = layers;
    }
    slot.track = track;
    slot.maxBitrate = maxBitrate;
    await this.setMuted(source, muted);
    await this.applyEncodings(slot);
    if (mustNegotiate && negotiate) await this.negotiate();
  }

  /**
   * Stop publishing a source (its m-line stays, inactive, for later reuse).
   * @param {TrackSource} source
   * @param {{negotiate?: boolean}} [options]
   */
  async unpublish(source, { negotiate = true } = {}) {
    const slot = this.slots.get(source);
    if (!slot || !slot.published) return;
    slot.published = false;
    slot.track = null;
    slot.info = null;
    await slot.transceiver.sender.replaceTrack(null);
    slot.transceiver.direction = 'inactive';
    if (negotiate) await this.negotiate();
  }

  /**
   * Mute or unmute: a muted source sends nothing (its sender has no track) and everyone is
   * told with `mute`.
   * @param {TrackSource} source
   * @param {boolean} muted
   */
  async setMuted(source, muted) {
    const slot = this.slots.get(source);
    if (!slot) return;
    slot.muted = muted;
    const want = muted ? null : slot.track;
    if (slot.transceiver.sender.track !== want) await slot.transceiver.sender.replaceTrack(want);
    if (slot.info && slot.info.muted !== muted) {
      slot.info.muted = muted;
      this.signaling.send({ type: 'mute', source, muted });
    }
  }

  /**
   * Set the camera's (or screen's) encodings: layers above the cap inactive, sizes, bitrates.
   * @param {Slot} slot
   */
  async applyEncodings(slot) {
    const sender = slot.transceiver.sender;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length === 0) return;
    if (slot.layers) {
      for (const encoding of params.encodings) {
        const layer = slot.layers.find((l) => l.rid === encoding.rid);
        if (!layer) continue;
        encoding.active = layer.active;
        encoding.scaleResolutionDownBy = layer.scaleResolutionDownBy;
        encoding.maxBitrate = layer.maxBitrate;
      }
    } else if (slot.maxBitrate) {
      params.encodings[0].maxBitrate = slot.maxBitrate;
    } else {
      return;
    }
    try {
      await sender.setParameters(params);
    } catch (error) {
      console.warn('orbita: cannot set encodings', error);
    }
  }

  /**
   * Offer the current set of tracks; resolves once the answer is applied. Calls made while
   * one is running are merged into one more negotiation after it.
   * @param {{iceRestart?: boolean}} [options]
   * @returns {Promise<void>}
   */
  negotiate({ iceRestart = false } = {}) {
    this.queuedRestart ||= iceRestart;
    if (this.queued) return this.queued;
    const run = async () => {
      this.queued = null;
      const restart = this.queuedRestart;
      this.queuedRestart = false;
      await this.offerOnce(restart);
    };
    const next = this.chain.then(run, run);
    this.queued = next;
    this.chain = next.catch(() => {});
    return next;
  }

  /** @param {boolean} iceRestart */
  async offerOnce(iceRestart) {
    if (this.pc.signalingState === 'closed') return;
    if (!this.publishing && !this.negotiated) return;
    if (iceRestart) this.restarts += 1;
    const offer = await this.pc.createOffer(iceRestart ? { iceRestart: true } : {});
    await this.pc.setLocalDescription(offer);
    /** @type {PublishTrack[]} */
    const tracks = [];
    for (const slot of this.slots.values()) {
      const mid = slot.transceiver.mid;
      if (!slot.published || mid === null) continue;
      /** @type {PublishTrack} */
      const entry = { mid, source: slot.source, muted: slot.muted };
      if (slot.layers) entry.layers = slot.layers.map((l) => ({ rid: l.rid, width: l.width, height: l.height }));
      tracks.push(entry);
    }
    const answered = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not answer the offer')), ANSWER_TIMEOUT_MS);
      this.waiting = {
        resolve: (msg) => {
          clearTimeout(timer);
          resolve(msg);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
    });
    this.signaling.send({ type: 'offer', pc: 'publisher', sdp: /** @type {RTCSessionDescription} */ (this.pc.localDescription).sdp, tracks });
    /** @type {import('./signaling.js').ServerAnswerMsg} */
    let answer;
    try {
      answer = /** @type {any} */ (await answered);
    } catch (error) {
      if (this.pc.signalingState === 'have-local-offer') await this.pc.setLocalDescription({ type: 'rollback' });
      throw error;
    } finally {
      this.waiting = null;
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    this.negotiated = true;
    for (const slot of this.slots.values()) slot.info = null;
    for (const info of answer.tracks) {
      const slot = this.slots.get(info.source);
      if (!slot) continue;
      slot.info = { ...info };
      // Muted or unmuted while the offer was on its way: tell the server now.
      if (info.muted !== slot.muted) {
        slot.info.muted = slot.muted;
        this.signaling.send({ type: 'mute', source: slot.source, muted: slot.muted });
      }
    }
    for (const slot of this.slots.values()) await this.applyEncodings(slot);
    this.dispatchEvent(new Event('negotiated'));
  }

  /**
   * Our microphone's RMS level (0..1) since the last call, from the sender's energy counters.
   * @returns {Promise<number>}
   */
  async micLevel() {
    const slot = this.slots.get('microphone');
    if (!slot || slot.muted || !slot.published) return 0;
    try {
      const report = await slot.transceiver.sender.getStats();
      for (const s of report.values()) {
        if (s.type !== 'media-source' || s.kind !== 'audio') continue;
        const last = this.micEnergy;
        this.micEnergy = { energy: s.totalAudioEnergy ?? 0, duration: s.totalSamplesDuration ?? 0 };
        if (!last || this.micEnergy.duration <= last.duration) return s.audioLevel ?? 0;
        const rms = Math.sqrt(Math.max(0, this.micEnergy.energy - last.energy) / (this.micEnergy.duration - last.duration));
        return Math.max(rms, s.audioLevel ?? 0);
      }
    } catch {
      // Closed meanwhile.
    }
    return 0;
  }

  /** The server's ids of what we publish, by source. */
  trackIds() {
    /** @type {Partial<Record<TrackSource, string>>} */
    const ids = {};
    for (const slot of this.slots.values()) if (slot.info) ids[slot.source] = slot.info.track_id;
    return ids;
  }

  /** Outbound RTP statistics by source (tests and the stats overlay). */
  async stats() {
    /** @type {Record<string, any[]>} */
    const out = {};
    for (const slot of this.slots.values()) {
      const report = await slot.transceiver.sender.getStats();
      const rtp = [];
      for (const s of report.values()) {
        if (s.type === 'outbound-rtp') {
          rtp.push({ rid: s.rid, bytesSent: s.bytesSent, packetsSent: s.packetsSent, frameWidth: s.frameWidth, frameHeight: s.frameHeight, framesEncoded: s.framesEncoded, active: s.active });
        }
      }
      out[slot.source] = rtp;
    }
    return out;
  }

  close() {
    this.signaling.removeEventListener('answer', this.onAnswer);
    this.signaling.removeEventListener('error', this.onServerError);
    this.signaling.removeEventListener('candidate', this.onCandidate);
    if (this.waiting) this.waiting.reject(new Error('closed'));
    this.pc.close();
  }
}
