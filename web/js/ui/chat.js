// The chat panel: messages of everyone (ours included, as the server relays them back) and a
// box to write in.

import { language, setText } from '../i18n.js';
import { h, hue } from './dom.js';
import { icon } from './icons.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */
/** @typedef {import('../room.js').ChatEntry} ChatEntry */

export class ChatPanel {
  /** @param {RoomSession} session */
  constructor(session) {
    this.session = session;
    this.list = h('ol', { class: 'chat-list', attrs: { 'aria-live': 'polite', id: 'chat-list' } });
    this.empty = h('p', { class: 'chat-empty', text: 'chat.empty' });
    // Chat the administrators switched off for us: read only, and said so.
    const off = !session.features.chat;
    const hint = off ? 'chat.switched_off' : 'chat.placeholder';
    this.input = h('textarea', {
      class: 'chat-input',
      attrs: { id: 'chat-input', rows: 1, maxlength: session.limits.max_chat_chars, disabled: off },
      t: { placeholder: hint, 'aria-label': hint, title: hint },
    });
    const send = h('button', {
      class: 'icon-button send-button',
      attrs: { type: 'submit', id: 'chat-send', disabled: off },
      html: icon('send'),
      t: { 'aria-label': 'chat.send', title: 'chat.send' },
    });
    this.form = h('form', { class: 'chat-form' }, this.input, send);
    this.el = h('section', { class: 'chat' }, this.empty, this.list, this.form);

    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.session.sendChat(this.input.value)) this.input.value = '';
      this.input.focus();
    });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    for (const entry of session.messages) this.add(entry);
    window.addEventListener('orbita:language', () => this.retime());
  }

  /** @param {ChatEntry} entry */
  add(entry) {
    const time = h('time', { class: 'chat-time', attrs: { datetime: new Date(entry.ts).toISOString() }, raw: formatTime(entry.ts) });
    const who = h('span', { class: 'chat-name' });
    if (entry.own) setText(who, 'chat.you');
    else who.textContent = entry.name;
    who.style.setProperty('--hue', String(hue(entry.from)));
    const item = h(
      'li',
      { class: `chat-message${entry.own ? ' own' : ''}`, data: { from: entry.from, ts: String(entry.ts) } },
      h('div', { class: 'chat-meta' }, who, entry.private ? h('span', { class: 'chat-private', text: 'chat.private' }) : null, time),
      h('p', { class: 'chat-text', raw: entry.text }),
    );
    this.list.append(item);
    this.empty.hidden = true;
    item.scrollIntoView({ block: 'end' });
  }

  retime() {
    this.list.querySelectorAll('time').forEach((el) => {
      el.textContent = formatTime(Date.parse(/** @type {string} */ (el.getAttribute('datetime'))));
    });
  }

  focus() {
    this.input.focus();
  }
}

/** @param {number} ts */
function formatTime(ts) {
  return new Intl.DateTimeFormat(language(), { hour: '2-digit', minute: '2-digit' }).format(new Date(ts));
}
