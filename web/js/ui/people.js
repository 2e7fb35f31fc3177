// The participant list: everyone in the room with their microphone and camera state; in an
// app session who holds control, and for its holder a way to hand it to someone else.

import { setAttrText, setText } from '../i18n.js';
import { clear, h, hue, initials } from './dom.js';
import { icon } from './icons.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */

/**
 * @typedef {object} Row
 * @property {string} id
 * @property {string} name
 * @property {boolean} self
 * @property {boolean} ingest
 * @property {boolean} mic
 * @property {boolean} cam
 * @property {boolean} screen
 */

export class PeoplePanel {
  /** @param {RoomSession} session */
  constructor(session) {
    this.session = session;
    this.list = h('ul', { class: 'people-list', attrs: { id: 'people-list' } });
    this.el = h('section', { class: 'people' }, this.list);
  }

  /** @returns {Row[]} ourselves, the others, then the app */
  rows() {
    const s = this.session;
    /** @type {Row} */
    const self = {
      id: s.selfId ?? 'self',
      name: s.name,
      self: true,
      ingest: false,
      mic: Boolean(s.local.mic) && !s.micMuted,
      cam: Boolean(s.local.camera) && !s.cameraOff,
      screen: Boolean(s.screen),
    };
    const others = [...s.participants.values()].map((p) => {
      const tracks = [...p.tracks.values()];
      const has = (/** @type {string} */ source) => tracks.some((t) => t.source === source && !t.muted);
      return { id: p.id, name: p.name, self: false, ingest: p.ingest, mic: has('microphone'), cam: has('camera'), screen: tracks.some((t) => t.source === 'screen') };
    });
    return [self, ...others.filter((r) => !r.ingest), ...others.filter((r) => r.ingest)];
  }

  render() {
    const s = this.session;
    clear(this.list);
    for (const row of this.rows()) {
      const name = h('span', { class: 'person-name' });
      if (row.ingest) setText(name, 'tile.app');
      else if (row.self) setText(name, 'tile.you', { name: row.name });
      else name.textContent = row.name;
      const avatar = row.ingest
        ? h('span', { class: 'person-avatar app-avatar', html: icon('app') })
        : h('span', { class: 'person-avatar', raw: initials(row.name) });
      avatar.style.setProperty('--hue', String(hue(row.id)));
      const holder = s.appSession && row.id === s.controlHolder;
      this.list.append(
        h(
          'li',
          { class: 'person', data: { participant: row.id, control: String(holder) } },
          avatar,
          name,
          h(
            'span',
            { class: 'person-state' },
            holder ? stateIcon('mouse', 'people.has_control', true) : null,
            row.screen ? stateIcon('screen', 'people.sharing', true) : null,
            row.ingest ? null : stateIcon(row.mic ? 'mic' : 'micOff', row.mic ? 'people.mic_on' : 'people.mic_off', row.mic),
            row.ingest ? null : stateIcon(row.cam ? 'cam' : 'camOff', row.cam ? 'people.camera_on' : 'people.camera_off', row.cam),
          ),
          s.hasControl && !row.self && !row.ingest ? this.giveButton(row) : null,
        ),
      );
    }
  }

  /**
   * "Give control": visible as two words, named in full for screen readers.
   * @param {Row} row
   */
  giveButton(row) {
    return h(
      'button',
      { class: 'button small give-control', attrs: { type: 'button' }, on: { click: () => this.session.giveControl(row.id) } },
      h('span', { text: 'people.give_control', attrs: { 'aria-hidden': 'true' } }),
      h('span', { class: 'visually-hidden', text: 'people.give_control_to', args: { name: row.name } }),
    );
  }
}

/**
 * @param {string} name
 * @param {string} key
 * @param {boolean} on
 */
function stateIcon(name, key, on) {
  const el = h('span', { class: `state-icon${on ? '' : ' off'}`, html: icon(name) });
  setAttrText(el, 'title', key);
  setAttrText(el, 'aria-label', key);
  el.setAttribute('role', 'img');
  return el;
}
