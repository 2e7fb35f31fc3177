// The agent's pointer on a customer's video: where the agent's mouse is on the customer's
// tile, as a place of the customer's camera picture (a fraction of the frame, before any
// mirroring, cropping or letterboxing), sent at most once an animation frame (30 a second);
// and on the customer's side, that place shown on their own picture (their self view is
// mirrored and cropped differently), with a fading trail and a ripple on click.

/** Pointer messages a second at most. */
const MAX_RATE = 30;
/** How long a pointer that stopped moving stays shown. */
const IDLE_MS = 4_000;
/** Trail dots kept. */
const TRAIL = 8;

/**
 * How `video` shows its frame: the picture's box inside the element (CSS pixels, from the
 * element's top left) and whether it is mirrored.
 * @param {HTMLVideoElement} video
 */
export function pictureBox(video) {
  const width = video.clientWidth;
  const height = video.clientHeight;
  const frameW = video.videoWidth || width;
  const frameH = video.videoHeight || height;
  const fit = getComputedStyle(video).objectFit;
  // cover: the frame fills the box, cut at two sides; contain: it fits, with bars.
  const scale = fit === 'cover' ? Math.max(width / frameW, height / frameH) : Math.min(width / frameW, height / frameH);
  const w = frameW * scale;
  const h = frameH * scale;
  return { left: (width - w) / 2, top: (height - h) / 2, width: w, height: h, mirrored: video.classList.contains('mirrored') };
}

/**
 * The place of the frame under a point of the page, or null outside the picture.
 * @param {HTMLVideoElement} video
 * @param {number} clientX
 * @param {number} clientY
 */
export function frameAt(video, clientX, clientY) {
  const rect = video.getBoundingClientRect();
  const box = pictureBox(video);
  let x = (clientX - rect.left - box.left) / box.width;
  const y = (clientY - rect.top - box.top) / box.height;
  if (box.mirrored) x = 1 - x;
  const inside = x >= 0 && x <= 1 && y >= 0 && y <= 1 && clientX >= rect.left && clientX <= rect.right && clientY >= rect.top && clientY <= rect.bottom;
  return inside ? { x, y } : null;
}

/**
 * Where a place of the frame is shown in `video` (CSS pixels from the element's top left), or
 * null when it is cut off.
 * @param {HTMLVideoElement} video
 * @param {number} x
 * @param {number} y
 */
export function shownAt(video, x, y) {
  const box = pictureBox(video);
  const left = box.left + (box.mirrored ? 1 - x : x) * box.width;
  const top = box.top + y * box.height;
  const inside = left >= 0 && left <= video.clientWidth && top >= 0 && top <= video.clientHeight;
  return inside ? { left, top } : null;
}

/**
 * Sends the agent's pointer over others' camera tiles in `grid`.
 */
export class PointerSender {
  /**
   * @param {HTMLElement} grid
   * @param {(msg: object) => void} send
   */
  constructor(grid, send) {
    this.send = send;
    /** @type {{to: string, x: number, y: number} | null} a move waiting for its frame */
    this.pending = null;
    /** @type {string | null} whose video the pointer is on */
    this.over = null;
    this.lastSent = 0;
    this.frame = 0;
    /** @param {PointerEvent} event */
    this.onMove = (event) => this.handle(event, 'move');
    /** @param {PointerEvent} event */
    this.onDown = (event) => this.handle(event, 'click');
    this.onLeave = () => this.leave();
    this.grid = grid;
    grid.addEventListener('pointermove', this.onMove);
    grid.addEventListener('pointerdown', this.onDown);
    grid.addEventListener('pointerleave', this.onLeave);
  }

  /**
   * @param {PointerEvent} event
   * @param {'move' | 'click'} action
   */
  handle(event, action) {
    // The tile's own buttons (a screenshot) are not pointing.
    if (event.target instanceof Element && event.target.closest('button')) return;
    const tile = /** @type {HTMLElement | null} */ (event.target instanceof Element ? event.target.closest('.tile') : null);
    const video = tile?.querySelector('video');
    const to = tile?.dataset.participant;
    const target = tile && video && to && tile.dataset.source === 'camera' && tile.dataset.self !== 'true' && tile.dataset.video === 'on' ? { tile, video, to } : null;
    const place = target ? frameAt(target.video, event.clientX, event.clientY) : null;
    if (!target || !place) {
      this.leave();
      return;
    }
    if (this.over && this.over !== target.to) this.leave();
    this.over = target.to;
    if (action === 'click') {
      this.pending = null;
      this.send({ type: 'pointer', to: target.to, source: 'camera', action: 'click', x: place.x, y: place.y });
      return;
    }
    this.pending = { to: target.to, x: place.x, y: place.y };
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** One move a frame, 30 a second at most (a later frame takes the latest place). */
  flush() {
    this.frame = 0;
    if (!this.pending) return;
    const now = performance.now();
    if (now - this.lastSent < 1000 / MAX_RATE) {
      this.frame = requestAnimationFrame(() => this.flush());
      return;
    }
    const { to, x, y } = this.pending;
    this.pending = null;
    this.lastSent = now;
    this.send({ type: 'pointer', to, source: 'camera', action: 'move', x, y });
  }

  leave() {
    if (!this.over) return;
    this.send({ type: 'pointer', to: this.over, source: 'camera', action: 'leave', x: 0, y: 0 });
    this.over = null;
    this.pending = null;
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.grid.removeEventListener('pointermove', this.onMove);
    this.grid.removeEventListener('pointerdown', this.onDown);
    this.grid.removeEventListener('pointerleave', this.onLeave);
  }
}

/**
 * Shows others' pointers on our own camera tile.
 */
export class PointerOverlay {
  /** @param {() => HTMLElement | null} ownTile our camera tile, when there is one */
  constructor(ownTile) {
    this.ownTile = ownTile;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.idle = undefined;
  }

  /**
   * A `pointer` from the server.
   * @param {{from: string, source: string, action: 'move' | 'click' | 'leave', x: number, y: number}} msg
   */
  show(msg) {
    const tile = this.ownTile();
    const video = tile?.querySelector('video');
    if (!tile || !video || msg.source !== 'camera') return;
    let layer = /** @type {HTMLElement | null} */ (tile.querySelector('.pointer-layer'));
    if (!layer) {
      layer = document.createElement('div');
      layer.className = 'pointer-layer';
      layer.setAttribute('aria-hidden', 'true');
      tile.append(layer);
    }
    clearTimeout(this.idle);
    if (msg.action === 'leave') {
      layer.replaceChildren();
      return;
    }
    const at = shownAt(video, msg.x, msg.y);
    if (!at) return;
    let dot = /** @type {HTMLElement | null} */ (layer.querySelector('.pointer-dot'));
    if (dot) {
      // The place it leaves becomes a trail dot that fades.
      const trail = document.createElement('span');
      trail.className = 'pointer-trail';
      trail.style.left = dot.style.left;
      trail.style.top = dot.style.top;
      layer.insertBefore(trail, dot);
      trail.addEventListener('animationend', () => trail.remove());
      const trails = layer.querySelectorAll('.pointer-trail');
      if (trails.length > TRAIL) trails[0].remove();
    } else {
      dot = document.createElement('span');
      dot.className = 'pointer-dot';
      layer.append(dot);
    }
    dot.style.left = `${at.left}px`;
    dot.style.top = `${at.top}px`;
    dot.dataset.x = String(msg.x);
    dot.dataset.y = String(msg.y);
    if (msg.action === 'click') {
      const ripple = document.createElement('span');
      ripple.className = 'pointer-ripple';
      ripple.style.left = `${at.left}px`;
      ripple.style.top = `${at.top}px`;
      layer.append(ripple);
      ripple.addEventListener('animationend', () => ripple.remove());
    }
    this.idle = setTimeout(() => layer?.replaceChildren(), IDLE_MS);
  }
}
