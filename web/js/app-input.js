// Input for the session's app: the pointer, keyboard and touch over the app's video become
// `input` messages while we hold control (docs/protocol.md). Coordinates are normalised to the
// video frame as displayed (object-fit letterboxing taken out); pointer moves go at most one per
// MOVE_INTERVAL_MS (the latest position wins), button changes and keys at once, which keeps
// well under the server's 50 messages a second.

/** @typedef {import('./room.js').RoomSession} RoomSession */

/** Pointer and touch moves are sent at most this often. */
export const MOVE_INTERVAL_MS = 50;

/**
 * @typedef {{left: number, top: number, width: number, height: number}} Box
 * @typedef {{x: number, y: number}} Point
 */

/**
 * Where a point of the page falls in a video's frame as the element shows it: 0..1 from the
 * frame's left and top edges (outside that range in the letterbox bars). The frame is centred
 * (the default object-position).
 * @param {number} clientX
 * @param {number} clientY
 * @param {Box} box the video element's box
 * @param {number} videoWidth the frame's size (0 before the first frame: the box is used)
 * @param {number} videoHeight
 * @param {string} fit the element's object-fit
 * @returns {Point}
 */
export function framePoint(clientX, clientY, box, videoWidth, videoHeight, fit) {
  let width = box.width;
  let height = box.height;
  if (videoWidth > 0 && videoHeight > 0 && fit !== 'fill') {
    const contain = Math.min(box.width / videoWidth, box.height / videoHeight);
    const scale =
      fit === 'cover' ? Math.max(box.width / videoWidth, box.height / videoHeight)
        : fit === 'none' ? 1
          : fit === 'scale-down' ? Math.min(1, contain)
            : contain;
    width = videoWidth * scale;
    height = videoHeight * scale;
  }
  const left = box.left + (box.width - width) / 2;
  const top = box.top + (box.height - height) / 2;
  return { x: (clientX - left) / width, y: (clientY - top) / height };
}

/** @param {Point} p */
function inFrame(p) {
  return p.x >= 0 && p.x <= 1 && p.y >= 0 && p.y <= 1;
}

/** @param {number} v */
function clamp(v) {
  return Math.min(1, Math.max(0, v));
}

/** Round to 4 decimals: a tenth of a pixel of a 1000-pixel frame is enough. @param {number} v */
function round(v) {
  return Math.round(v * 10_000) / 10_000;
}

/**
 * Sends the input over one element (the app's tile) for its video, while we hold control.
 */
export class AppInput {
  /**
   * @param {HTMLElement} target focusable element that receives the events
   * @param {HTMLVideoElement} video the app's video, for the frame's place
   * @param {RoomSession} session
   */
  constructor(target, video, session) {
    this.target = target;
    this.video = video;
    this.session = session;
    this.lastButtons = 0;
    this.lastMoveAt = -Infinity;
    /** @type {object | null} the latest move not sent yet */
    this.pendingMove = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.moveTimer = undefined;
    /** @type {Set<string>} keys held down (sent as down, not yet up) */
    this.held = new Set();

    /** @type {[string, (event: any) => void][]} */
    this.listeners = [
      ['pointerdown', (e) => this.onPointer(e, 'down')],
      ['pointermove', (e) => this.onPointer(e, 'move')],
      ['pointerup', (e) => this.onPointer(e, 'up')],
      ['pointercancel', (e) => this.onPointer(e, 'up')],
      ['keydown', (e) => this.onKey(e, true)],
      ['keyup', (e) => this.onKey(e, false)],
      ['blur', () => this.releaseKeys()],
      ['contextmenu', (e) => this.session.hasControl && e.preventDefault()],
    ];
    for (const [type, listener] of this.listeners) target.addEventListener(type, listener);
  }

  /**
   * @param {PointerEvent} e
   * @param {'down' | 'move' | 'up'} phase
   */
  onPointer(e, phase) {
    if (!this.session.hasControl) return;
    if (phase === 'down') {
      this.target.focus({ preventScroll: true });
      // Keep receiving the pointer when it leaves the video with a button held.
      if (this.target.setPointerCapture) {
        try {
          this.target.setPointerCapture(e.pointerId);
        } catch {
          // A synthetic pointer: nothing to capture.
        }
      }
    }
    const p = this.point(e);
    if (e.pointerType === 'touch') {
      e.preventDefault();
      if (phase === 'up' || !inFrame(p)) return;
      const touch = { type: 'touch', x: round(p.x), y: round(p.y) };
      if (phase === 'down') this.sendNow(touch);
      else this.sendMove(touch);
      return;
    }
    const buttons = e.buttons;
    const changed = buttons !== this.lastButtons;
    if (!changed && !inFrame(p)) return;
    if (phase === 'down') e.preventDefault(); // no text selection or dragging of the video
    const event = { type: 'pointer', x: round(clamp(p.x)), y: round(clamp(p.y)), buttons };
    if (changed) {
      this.lastButtons = buttons;
      this.sendNow(event);
    } else {
      this.sendMove(event);
    }
  }

  /**
   * @param {KeyboardEvent} e
   * @param {boolean} down
   */
  onKey(e, down) {
    if (!this.session.hasControl || e.key === 'Tab' || e.isComposing) return;
    e.preventDefault(); // arrows must not scroll, space not click
    if (down && (e.repeat || this.held.has(e.key))) return; // the app sees the key held
    if (!down && !this.held.has(e.key)) return;
    if (down) this.held.add(e.key);
    else this.held.delete(e.key);
    this.session.sendInput({ type: 'key', key: e.key, down });
  }

  /** Focus left the app: the keys held are let go. */
  releaseKeys() {
    for (const key of this.held) this.session.sendInput({ type: 'key', key, down: false });
    this.held.clear();
  }

  /** @param {PointerEvent} e */
  point(e) {
    const box = this.video.getBoundingClientRect();
    const fit = getComputedStyle(this.video).objectFit;
    return framePoint(e.clientX, e.clientY, box, this.video.videoWidth, this.video.videoHeight, fit);
  }

  /**
   * A move: now if the last one went long enough ago, else the latest one when it is time.
   * @param {object} event
   */
  sendMove(event) {
    this.pendingMove = event;
    if (this.moveTimer !== undefined) return;
    const wait = this.lastMoveAt + MOVE_INTERVAL_MS - performance.now();
    if (wait <= 0) {
      this.flushMove();
      return;
    }
    this.moveTimer = setTimeout(() => {
      this.moveTimer = undefined;
      this.flushMove();
    }, wait);
  }

  flushMove() {
    const event = this.pendingMove;
    this.pendingMove = null;
    if (!event) return;
    this.lastMoveAt = performance.now();
    this.session.sendInput(event);
  }

  /**
   * Send at once (a button change, a touch start); the pending move it supersedes is dropped.
   * @param {object} event
   */
  sendNow(event) {
    clearTimeout(this.moveTimer);
    this.moveTimer = undefined;
    this.pendingMove = null;
    this.lastMoveAt = performance.now();
    this.session.sendInput(event);
  }

  detach() {
    clearTimeout(this.moveTimer);
    for (const [type, listener] of this.listeners) this.target.removeEventListener(type, listener);
  }
}
