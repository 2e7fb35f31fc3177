// The browser's view of its connection quality, sent to the server every few seconds
// (`stats`, docs/protocol.md): what it sends and receives (kbit/s), the loss and jitter of what
// it receives, the round-trip time, the camera's frame rate and size, and why the camera is
// held back. The server keeps it with the call's record and shows it to the call's agent.

/** How often a report is sent (the server takes at most one every 2 s). */
export const REPORT_EVERY_MS = 5000;

/**
 * @typedef {{out_kbps?: number, in_kbps?: number, loss_pct?: number, jitter_ms?: number,
 *   rtt_ms?: number, fps_out?: number, fps_in?: number, width?: number, height?: number,
 *   limitation?: 'none' | 'cpu' | 'bandwidth' | 'other'}} QualityReport
 */

/** @param {number} v @param {number} places */
const round = (v, places) => Math.round(v * 10 ** places) / 10 ** places;

/** Totals of one moment, to take the next moment's from. */
class Totals {
  constructor() {
    this.at = 0;
    this.sent = 0;
    this.received = 0;
    this.packets = 0;
    this.lost = 0;
  }
}

export class QualityReporter {
  /**
   * @param {() => {publisher: RTCPeerConnection | null, subscriber: RTCPeerConnection | null}} pcs
   * @param {(report: QualityReport) => void} send
   */
  constructor(pcs, send) {
    this.pcs = pcs;
    this.send = send;
    this.last = new Totals();
    /** @type {QualityReport | null} the last report sent (tests, the debug hook) */
    this.lastReport = null;
    this.timer = setInterval(() => this.report().catch((e) => console.warn('orbita: quality report', e)), REPORT_EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Measure and send one report (nothing when no connection is up yet). */
  async report() {
    const { publisher, subscriber } = this.pcs();
    const now = new Totals();
    now.at = performance.now();
    /** @type {QualityReport} */
    const r = {};
    let rtt = null;
    let widest = 0;
    let jitter = null;
    let fpsIn = null;
    for (const stats of [publisher ? await publisher.getStats() : null, subscriber ? await subscriber.getStats() : null]) {
      if (!stats) continue;
      for (const s of stats.values()) {
        if (s.type === 'outbound-rtp') {
          now.sent += s.bytesSent ?? 0;
          if (s.kind === 'video' && (s.frameWidth ?? 0) > widest) {
            widest = s.frameWidth;
            r.width = s.frameWidth;
            r.height = s.frameHeight;
            if (s.framesPerSecond !== undefined) r.fps_out = round(s.framesPerSecond, 1);
            if (s.qualityLimitationReason) r.limitation = s.qualityLimitationReason;
          }
        } else if (s.type === 'inbound-rtp') {
          now.received += s.bytesReceived ?? 0;
          now.packets += s.packetsReceived ?? 0;
          now.lost += Math.max(0, s.packetsLost ?? 0);
          if (s.jitter !== undefined) jitter = Math.max(jitter ?? 0, s.jitter * 1000);
          if (s.kind === 'video' && s.framesPerSecond !== undefined) fpsIn = Math.max(fpsIn ?? 0, s.framesPerSecond);
        } else if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) {
          rtt = Math.max(rtt ?? 0, s.currentRoundTripTime * 1000);
        }
      }
    }
    const last = this.last;
    this.last = now;
    if (!publisher && !subscriber) return;
    const secs = (now.at - last.at) / 1000;
    if (last.at && secs > 0.5) {
      if (now.sent >= last.sent) r.out_kbps = round(((now.sent - last.sent) * 8) / secs / 1000, 1);
      if (now.received >= last.received) r.in_kbps = round(((now.received - last.received) * 8) / secs / 1000, 1);
      const got = now.packets - last.packets;
      const lost = now.lost - last.lost;
      if (got >= 0 && lost >= 0 && got + lost > 0) r.loss_pct = round((lost / (got + lost)) * 100, 2);
    }
    if (jitter !== null) r.jitter_ms = round(Math.min(jitter, 60_000), 1);
    if (rtt !== null) r.rtt_ms = round(Math.min(rtt, 60_000), 1);
    if (fpsIn !== null) r.fps_in = round(fpsIn, 1);
    if (r.limitation && !['none', 'cpu', 'bandwidth', 'other'].includes(r.limitation)) r.limitation = 'other';
    if (Object.keys(r).length === 0) return;
    this.lastReport = r;
    this.send(r);
  }
}

/**
 * A report in a line for people: "↑ 850 kbit/s · ↓ 1.2 Mbit/s · loss 0.4 % · RTT 45 ms · 640×480 30 fps".
 * @param {QualityReport} r
 * @param {(key: string, args?: Record<string, string | number>) => string} t
 */
export function describeQuality(r, t) {
  const rate = (/** @type {number} */ kbps) => (kbps >= 1000 ? `${round(kbps / 1000, 1)} Mbit/s` : `${Math.round(kbps)} kbit/s`);
  const parts = [];
  if (r.out_kbps !== undefined) parts.push(`↑ ${rate(r.out_kbps)}`);
  if (r.in_kbps !== undefined) parts.push(`↓ ${rate(r.in_kbps)}`);
  if (r.loss_pct !== undefined) parts.push(t('quality.loss', { pct: r.loss_pct }));
  if (r.rtt_ms !== undefined) parts.push(t('quality.rtt', { ms: Math.round(r.rtt_ms) }));
  if (r.width && r.height) parts.push(`${r.width}×${r.height}${r.fps_out !== undefined ? ` ${Math.round(r.fps_out)} fps` : ''}`);
  if (r.limitation && r.limitation !== 'none') parts.push(t(`quality.limited_${r.limitation}`));
  return parts.join(' · ');
}
