// The tile of the session's app: its video, large; who holds control shown on it; focusable,
// and while we hold control the pointer, keys and touches over it go to the app.

import { AppInput } from '../app-input.js';
import { setText } from '../i18n.js';
import { h } from './dom.js';
import { controlState } from './control.js';
import { icon } from './icons.js';
import { Tile } from './tiles.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */
/** @typedef {import('./tiles.js').TileModel} TileModel */

let serial = 0;

export class AppTile extends Tile {
  /**
   * @param {TileModel} model
   * @param {RoomSession} session
   */
  constructor(model, session) {
    super(model);
    this.session = session;
    const id = `app-tile-${++serial}`;
    this.nameEl.id = `${id}-name`;
    this.controlText = h('span', { class: 'app-control-text', attrs: { id: `${id}-control` } });
    this.controlBadge = h('div', { class: 'app-control' }, h('span', { class: 'app-control-icon', html: icon('mouse') }), this.controlText);
    this.el.append(this.controlBadge);
    this.el.tabIndex = 0;
    this.el.setAttribute('role', 'application');
    this.el.setAttribute('aria-labelledby', `${this.nameEl.id} ${this.controlText.id}`);
    this.input = new AppInput(this.el, this.video, session);
    this.syncControl();
  }

  /** Show who holds control (and, when we do, that the tile takes input). */
  syncControl() {
    const c = controlState(this.session);
    this.el.dataset.control = c.state;
    this.el.classList.toggle('in-control', c.state === 'you');
    setText(this.controlText, c.state === 'you' ? 'control.you_hint' : c.key, c.args);
  }

  remove() {
    this.input.detach();
    super.remove();
  }
}
