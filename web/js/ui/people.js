// The participant list: everyone in the room with their microphone and camera state.

import { setAttrText, setText } from '../i18n.js';
import { clear, h, hue, initials } from './dom.js';
import { icon } from './icons.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */

export class PeoplePanel {
  /** @param {RoomSession} session */
  constructor(session) {
    this.session = session;
    this.list = h('ul', { class: 'people-list', attrs: { id: 'people-list' } });
    this.el = h('section', { class: 'people' }, this.list);
  }

  render() {
    const s = this.session;
    clear(this.list);
    const rows = [
      {
        id: s.selfId ?? 'self',
        name: s.name,
        self: true,
        mic: Boolean(s.local.mic) && !s.micMuted,
        cam: Boolean(s.local.camera) && !s.cameraOff,
        screen: Boolean(s.screen),
      },
      ...[...s.participants.values()].map((p) => {
        const tracks = [...p.tracks.values()];
        const has = (/** @type {string} */ source) => tracks.some((t) => t.source === source && !t.muted);
        return { id: p.id, name: p.name, self: false, mic: has('microphone'), cam: has('camera'), screen: tracks.some((t) => t.source === 'screen') };
      }),
    ];
    for (const row of rows) {
      const name = h('span', { class: 'person-name' });
      if (row.self) setText(name, 'tile.you', { name: row.name });
      else name.textContent = row.name;
      const avatar = h('span', { class: 'person-avatar', raw: initials(row.name) });
      avatar.style.setProperty('--hue', String(hue(row.id)));
      this.list.append(
        h(
          'li',
          { class: 'person', data: { participant: row.id } },
          avatar,
          name,
          h(
            'span',
            { class: 'person-state' },
            row.screen ? stateIcon('screen', 'people.sharing', true) : null,
            stateIcon(row.mic ? 'mic' : 'micOff', row.mic ? 'people.mic_on' : 'people.mic_off', row.mic),
            stateIcon(row.cam ? 'cam' : 'camOff', row.cam ? 'people.camera_on' : 'people.camera_off', row.cam),
          ),
        ),
      );
    }
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
