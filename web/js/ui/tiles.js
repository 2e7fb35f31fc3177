// Video tiles: one per participant's camera (an avatar when there is no video), one per
// screen share and one for the session's app; names, mute badges and the active speaker; a
// grid that fits the stage.

import { setAttrText, setText } from '../i18n.js';
import { h, hue, initials } from './dom.js';
import { icon } from './icons.js';

/**
 * What a tile shows.
 * @typedef {object} TileModel
 * @property {string} key stable key: participant id and source
 * @property {string} participantId
 * @property {string} name
 * @property {'camera' | 'screen' | 'app'} source
 * @property {MediaStreamTrack | null} track the video, or null (avatar)
 * @property {boolean} micMuted
 * @property {boolean} self
 * @property {boolean} mirrored
 * @property {string | null} [quality] the connection's figures (the agent's live view)
 */

export class Tile {
  /** @param {TileModel} model */
  constructor(model) {
    this.key = model.key;
    this.video = h('video', { class: 'tile-video', attrs: { autoplay: true, playsinline: true, muted: true } });
    this.video.muted = true;
    this.avatar = h('div', { class: 'avatar' });
    this.nameEl = h('span', { class: 'tile-name' });
    this.micBadge = h('span', { class: 'mic-badge', html: icon('micOff') });
    this.qualityEl = h('span', { class: 'tile-quality', attrs: { hidden: true } });
    // A still of this video, to draw on and send (the call view handles the click).
    this.snapButton = h('button', {
      class: 'icon-button tile-snap',
      attrs: { type: 'button' },
      html: icon('snapshot'),
      t: { 'aria-label': 'snapshot.take', title: 'snapshot.take' },
    });
    this.el = h(
      'div',
      { class: 'tile', data: { participant: model.participantId, source: model.source } },
      this.video,
      this.avatar,
      h('div', { class: 'tile-label' }, this.micBadge, this.nameEl),
      this.qualityEl,
      this.snapButton,
    );
    /** @type {MediaStreamTrack | null} */
    this.track = null;
    this.update(model);
  }

  /** @param {TileModel} model */
  update(model) {
    const el = this.el;
    el.dataset.self = String(model.self);
    el.dataset.micMuted = String(model.micMuted);
    el.classList.toggle('screen', model.source === 'screen');
    el.classList.toggle('app', model.source === 'app');
    el.classList.toggle('self', model.self);
    if (model.source === 'app') {
      setText(this.nameEl, 'tile.app');
    } else if (model.source === 'screen') {
      setText(this.nameEl, model.self ? 'tile.your_screen' : 'tile.screen_of', { name: model.name });
    } else if (model.self) {
      setText(this.nameEl, 'tile.you', { name: model.name });
    } else {
      delete this.nameEl.dataset.i18n;
      this.nameEl.textContent = model.name;
    }
    this.micBadge.hidden = !model.micMuted || model.source !== 'camera';
    if (!this.micBadge.hidden && !this.micBadge.title) {
      setAttrText(this.micBadge, 'title', 'tile.muted');
      setAttrText(this.micBadge, 'aria-label', 'tile.muted');
      this.micBadge.setAttribute('role', 'img');
    }
    if (this.avatar.textContent !== initials(model.name)) {
      this.avatar.textContent = initials(model.name);
      this.avatar.style.setProperty('--hue', String(hue(model.participantId)));
    }
    if (model.track !== this.track) {
      this.track = model.track;
      this.video.srcObject = model.track ? new MediaStream([model.track]) : null;
      if (model.track) this.video.play().catch(() => {});
    }
    this.qualityEl.hidden = !model.quality;
    this.qualityEl.textContent = model.quality ?? '';
    el.classList.toggle('video-off', !model.track);
    el.dataset.video = model.track ? 'on' : 'off';
    this.snapButton.hidden = !model.track;
    this.video.classList.toggle('mirrored', model.mirrored);
  }

  /** @param {boolean} speaking */
  setSpeaking(speaking) {
    this.el.classList.toggle('speaking', speaking);
    this.el.dataset.speaking = String(speaking);
  }

  /** @param {boolean} active */
  setActive(active) {
    this.el.classList.toggle('active-speaker', active);
  }

  remove() {
    this.video.srcObject = null;
    this.el.remove();
  }
}

/**
 * How many columns give the largest 16:9 picture per tile.
 * @param {number} count
 * @param {number} width
 * @param {number} height
 */
export function bestColumns(count, width, height) {
  let best = 1;
  let bestArea = -1;
  for (let cols = 1; cols <= count; cols++) {
    const rows = Math.ceil(count / cols);
    const cellW = width / cols;
    const cellH = height / rows;
    const picW = Math.min(cellW, (cellH * 16) / 9);
    const picH = (picW * 9) / 16;
    const area = picW * picH;
    if (area > bestArea + 1) {
      bestArea = area;
      best = cols;
    }
  }
  return best;
}

/**
 * Lay tiles out in `grid`: an even grid, or with an app or a screen share that large and the
 * others in a strip (at the side on wide screens, below on tall ones).
 * @param {HTMLElement} grid
 */
export function layoutGrid(grid) {
  const tiles = /** @type {HTMLElement[]} */ ([...grid.children]);
  const count = tiles.length;
  if (count === 0) return;
  const width = grid.clientWidth;
  const height = grid.clientHeight;
  // The app's video, then screen shares (others' before our own) come first: the first one is
  // shown large.
  const first = tiles[0].dataset.source;
  const featured = first === 'app' || first === 'screen' ? tiles[0] : undefined;
  for (const tile of tiles) {
    tile.style.gridColumn = '';
    tile.style.gridRow = '';
    tile.classList.toggle('featured', tile === featured && count > 1);
  }
  if (featured && count > 1) {
    const others = count - 1;
    grid.classList.add('presenting');
    if (width >= height * 1.2) {
      const strip = Math.round(Math.min(320, Math.max(160, width * 0.22)));
      const rows = Math.max(others, 3);
      grid.style.gridTemplateColumns = `minmax(0, 1fr) ${strip}px`;
      grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
      featured.style.gridColumn = '1';
      featured.style.gridRow = `1 / span ${rows}`;
    } else {
      // Tall stage: the others two abreast below, each given what the featured picture (as
      // high as a 16:9 frame of the full width) leaves, at least the usual strip and at most a
      // 3:4 portrait; the featured picture takes the rest.
      const gap = parseFloat(getComputedStyle(grid).rowGap) || 0;
      const featuredH = Math.round((width * 9) / 16);
      const stripH = Math.max(Math.min(height * 0.3, 180), height - featuredH - gap);
      const cols = Math.min(others, 2);
      const rows = Math.ceil(others / cols);
      const cellW = (width - gap * (cols - 1)) / cols;
      const rowH = Math.floor(Math.min((stripH - gap * (rows - 1)) / rows, (cellW * 4) / 3));
      grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
      grid.style.gridTemplateRows = `minmax(0, 1fr) repeat(${rows}, ${rowH}px)`;
      featured.style.gridColumn = `1 / span ${cols}`;
      featured.style.gridRow = '1';
    }
    return;
  }
  grid.classList.remove('presenting');
  const cols = bestColumns(count, width, height);
  const rows = Math.ceil(count / cols);
  grid.dataset.columns = String(cols);
  if (width >= height) {
    // Wide stage: 16:9 tiles, as large as fit, centred.
    const gap = 10;
    const tileW = Math.floor(Math.min((width - gap * (cols - 1)) / cols, (((height - gap * (rows - 1)) / rows) * 16) / 9));
    const tileH = Math.floor((tileW * 9) / 16);
    grid.style.gridTemplateColumns = `repeat(${cols}, ${tileW}px)`;
    grid.style.gridTemplateRows = `repeat(${rows}, ${tileH}px)`;
  } else {
    // Tall stage (phones): tiles fill the width and share the height.
    grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
    grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
  }
}
