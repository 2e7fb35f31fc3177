// The subscriber peer connection: everyone else's tracks. The server offers (whenever what we
// should receive changes), the client answers; each offer maps its mids to tracks.

/** @typedef {import('./signaling.js').Signaling} Signaling */
/** @typedef {import('./signaling.js').SubscribedTrack} SubscribedTrack */
/** @typedef {import('./signaling.js').ServerOfferMsg} ServerOfferMsg */

/**
 * A track we receive.
 * @typedef {object} RemoteTrack
 * @property {SubscribedTrack} info
 * @property {MediaStreamTrack} track
 * @property {RTCRtpReceiver} receiver
 */

/**
 * Events: `track` and `trackended` (detail: RemoteTrack) when a received track starts or
 * stops.
 */
export class Subscriber extends EventTarget {
  /**
   * @param {Signaling} signaling
   * @param {RTCConfiguration} config
   */
  constructor(signaling, config) {
    super();
    this.signaling = signaling;
    this.pc = new RTCPeerConnection(config);
    /** Whether an answer was sent (the connection is in use). */
    this.negotiated = false;
    /** @type {Map<string, SubscribedTrack>} mid -> track of the latest offer */
    this.mids = new Map();
    /** @type {Map<string, RemoteTrack>} track id -> what we receive */
    this.remote = new Map();
    /** @type {Promise<void>} */
    this.chain = Promise.resolve();
    /** @type {Map<string, {energy: number, duration: number}>} audio energy counters by track */
    this.energy = new Map();
    /** @type {string | null} the mid that tags our BUNDLE transport */
    this.bundleTag = null;

    this.pc.addEventListener('icecandidate', (event) => {
      this.signaling.send({ type: 'candidate', pc: 'subscriber', candidate: event.candidate ? event.candidate.candidate : '' });
    });
    this.onOffer = this.onOffer.bind(this);
    this.onCandidate = this.onCandidate.bind(this);
    signaling.addEventListener('offer', this.onOffer);
    signaling.addEventListener('candidate', this.onCandidate);
  }

  /** @param {Event} event */
  onOffer(event) {
    const msg = /** @type {ServerOfferMsg} */ (/** @type {CustomEvent} */ (event).detail);
    if (msg.pc !== 'subscriber') return;
    this.chain = this.chain
      .then(() => this.answer(msg))
      .catch((error) => {
        console.error('orbita: cannot answer the server', error);
        this.dispatchEvent(new CustomEvent('failure', { detail: error }));
      });
  }

  /** @param {Event} event */
  onCandidate(event) {
    const msg = /** @type {CustomEvent} */ (event).detail;
    if (msg.pc !== 'subscriber' || !msg.candidate) return;
    const first = this.pc.getTransceivers()[0]?.mid ?? '0';
    this.pc.addIceCandidate({ candidate: msg.candidate, sdpMid: first }).catch((e) => console.info('orbita: candidate', e));
  }

  /** @param {ServerOfferMsg} msg */
  async answer(msg) {
    if (this.pc.signalingState === 'closed') return;
    this.mids = new Map(msg.tracks.map((t) => [t.mid, t]));
    const sdp = keepBundleTag(msg.sdp, this.bundleTag);
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    this.bundleTag ??= bundleMids(sdp)[0] ?? null;
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.signaling.send({ type: 'answer', pc: 'subscriber', sdp: /** @type {RTCSessionDescription} */ (this.pc.localDescription).sdp });
    this.negotiated = true;
    this.reconcile();
  }

  /** Compare the transceivers with what we had: announce new tracks and ended ones. */
  reconcile() {
    const seen = new Set();
    for (const transceiver of this.pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || transceiver.currentDirection === 'stopped' || transceiver.currentDirection === 'inactive') continue;
      const info = this.mids.get(mid);
      if (!info) continue;
      seen.add(info.track_id);
      const have = this.remote.get(info.track_id);
      if (have && have.track === transceiver.receiver.track) continue;
      /** @type {RemoteTrack} */
      const remote = { info, track: transceiver.receiver.track, receiver: transceiver.receiver };
      this.remote.set(info.track_id, remote);
      this.dispatchEvent(new CustomEvent('track', { detail: remote }));
    }
    for (const [trackId, remote] of [...this.remote]) {
      if (seen.has(trackId)) continue;
      this.remote.delete(trackId);
      this.dispatchEvent(new CustomEvent('trackended', { detail: remote }));
    }
  }

  /**
   * The audio level (0..1) of each participant we hear, over the time since the last call:
   * from the decoded audio energy (so short sounds between two calls count too), or the last
   * packet's level, whichever is higher.
   * @returns {Promise<Map<string, number>>}
   */
  async audioLevels() {
    /** @type {Map<string, number>} */
    const levels = new Map();
    for (const remote of this.remote.values()) {
      if (remote.info.kind !== 'audio') continue;
      let level = 0;
      for (const source of remote.receiver.getSynchronizationSources()) {
        if (typeof source.audioLevel === 'number') level = Math.max(level, source.audioLevel);
      }
      try {
        const report = await remote.receiver.getStats();
        for (const s of report.values()) {
          if (s.type !== 'inbound-rtp') continue;
          level = Math.max(level, this.energyLevel(remote.info.track_id, s.totalAudioEnergy, s.totalSamplesDuration));
        }
      } catch {
        // The connection closed meanwhile.
      }
      const pid = remote.info.participant_id;
      levels.set(pid, Math.max(levels.get(pid) ?? 0, level));
    }
    return levels;
  }

  /**
   * The RMS level since the last reading of a track's energy counters.
   * @param {string} key
   * @param {number | undefined} energy
   * @param {number | undefined} duration
   */
  energyLevel(key, energy, duration) {
    if (typeof energy !== 'number' || typeof duration !== 'number') return 0;
    const last = this.energy.get(key);
    this.energy.set(key, { energy, duration });
    if (!last || duration <= last.duration) return 0;
    return Math.sqrt(Math.max(0, energy - last.energy) / (duration - last.duration));
  }

  /** Inbound RTP statistics of every received track (tests and the stats overlay). */
  async stats() {
    const out = [];
    for (const remote of this.remote.values()) {
      const report = await remote.receiver.getStats();
      for (const s of report.values()) {
        if (s.type !== 'inbound-rtp') continue;
        out.push({
          trackId: remote.info.track_id,
          participantId: remote.info.participant_id,
          source: remote.info.source,
          kind: remote.info.kind,
          bytesReceived: s.bytesReceived ?? 0,
          packetsReceived: s.packetsReceived ?? 0,
          framesDecoded: s.framesDecoded ?? 0,
          frameWidth: s.frameWidth ?? 0,
          frameHeight: s.frameHeight ?? 0,
          audioLevel: s.audioLevel ?? 0,
          totalAudioEnergy: s.totalAudioEnergy ?? 0,
        });
      }
    }
    return out;
  }

  close() {
    this.signaling.removeEventListener('offer', this.onOffer);
    this.signaling.removeEventListener('candidate', this.onCandidate);
    this.pc.close();
  }
}

/**
 * The mids of the BUNDLE group of an SDP.
 * @param {string} sdp
 * @returns {string[]}
 */
export function bundleMids(sdp) {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith('a=group:BUNDLE'));
  return line ? line.slice('a=group:BUNDLE'.length).trim().split(/\s+/).filter(Boolean) : [];
}

/**
 * Keep the m-line that tags our BUNDLE transport in the group when the server stops it.
 *
 * When the first m-line of a BUNDLE group is rejected in a new offer, Chrome moves the other
 * m-lines to a new ICE/DTLS transport (new ufrag), which the server cannot follow: it drops the
 * connection. So an offer that stops the tagging m-line is applied with that m-line kept as
 * `inactive` (no media flows on it, and no track is mapped to it) and still first in the group.
 * @param {string} sdp
 * @param {string | null} tag
 * @returns {string}
 */
export function keepBundleTag(sdp, tag) {
  if (!tag) return sdp;
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const parts = sdp.split(`${eol}m=`);
  let changed = false;
  for (let i = 1; i < parts.length; i++) {
    const lines = parts[i].split(eol);
    if (!lines.includes(`a=mid:${tag}`)) continue;
    const head = lines[0].split(' ');
    if (head[1] !== '0') return sdp;
    head[1] = '9';
    lines[0] = head.join(' ');
    const kept = lines.filter((l) => !/^a=(sendonly|recvonly|sendrecv|inactive)$/.test(l));
    const at = kept.findIndex((l) => l.startsWith('a=mid:'));
    kept.splice(at + 1, 0, 'a=inactive');
    parts[i] = kept.join(eol);
    changed = true;
  }
  if (!changed) return sdp;
  let out = parts.join(`${eol}m=`);
  const group = bundleMids(out).filter((m) => m !== tag);
  const groupLine = `a=group:BUNDLE ${[tag, ...group].join(' ')}`;
  if (/^a=group:BUNDLE.*$/m.test(out)) out = out.replace(/^a=group:BUNDLE.*$/m, groupLine);
  else out = out.replace(`${eol}t=0 0${eol}`, `${eol}t=0 0${eol}${groupLine}${eol}`);
  return out;
}
