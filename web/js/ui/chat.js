// The chat panel: messages of everyone (ours included, as the server relays them back), the
// files sent (a thumbnail for pictures) with the progress of ours, and a box to write in.

import { language, setText } from '../i18n.js';
import { formatBytes } from '../file-transfer.js';
import { h, hue } from './dom.js';
import { icon } from './icons.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */
/** @typedef {import('../room.js').ChatEntry} ChatEntry */
/** @typedef {import('../file-transfer.js').Upload} Upload */

/** Types the browser shows as a picture (the server serves only these inline). */
const PICTURES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

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
    // Files: a button opens the picker; what is picked is sent at once.
    const filesOff = !session.features.files;
    this.picker = h('input', { attrs: { type: 'file', id: 'chat-file', hidden: true, multiple: true } });
    const attachHint = filesOff ? 'file.switched_off' : 'file.attach';
    const attach = h('button', {
      class: 'icon-button attach-button',
      attrs: { type: 'button', id: 'chat-attach', disabled: filesOff },
      html: icon('attach'),
      t: { 'aria-label': attachHint, title: attachHint },
    });
    attach.addEventListener('click', () => this.picker.click());
    this.picker.addEventListener('change', () => {
      for (const file of Array.from(this.picker.files ?? [])) void this.session.sendFile(file);
      this.picker.value = '';
    });
    /** @type {Map<number, HTMLElement>} our uploads' lines, by key */
    this.uploads = new Map();
    session.files.addEventListener('upload', (event) => this.showUpload(/** @type {CustomEvent} */ (event).detail.upload));
    // Locations: share ours; the agent asks the customers for theirs.
    const share = h('button', {
      class: 'icon-button location-button',
      attrs: { type: 'button', id: 'chat-location' },
      html: icon('place'),
      t: { 'aria-label': 'location.share', title: 'location.share' },
      on: { click: () => void this.session.shareLocation() },
    });
    const ask = h('button', {
      class: 'icon-button location-button',
      attrs: { type: 'button', id: 'chat-ask-location', hidden: session.role !== 'agent' },
      html: icon('placeAsk'),
      t: { 'aria-label': 'location.ask', title: 'location.ask' },
      on: {
        click: () => {
          if (this.session.requestLocations() === 0) this.session.notice('location.no_customer', {}, 'info');
        },
      },
    });
    this.form = h('form', { class: 'chat-form' }, this.picker, attach, share, ask, this.input, send);
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
      this.body(entry),
    );
    this.list.append(item);
    this.empty.hidden = true;
    item.scrollIntoView({ block: 'end' });
  }

  /**
   * What a line of the chat shows: text, a file, a location, or a refusal to share one.
   * @param {ChatEntry} entry
   */
  body(entry) {
    if (entry.file) return this.fileView(entry.file);
    if (entry.location) return this.locationView(entry.location);
    if (entry.declined) return h('p', { class: 'chat-text chat-declined', text: `location.declined_${entry.declined}`, args: { name: entry.name } });
    return h('p', { class: 'chat-text', raw: entry.text });
  }

  /**
   * A location of the chat: its address (or coordinates) and accuracy, a link to the map and,
   * when the server has a tile server, the map around it with the place marked.
   * @param {import('../signaling.js').SharedLocation} location
   */
  locationView(location) {
    const where = location.address ?? `${location.lat.toFixed(5)}, ${location.lon.toFixed(5)}`;
    let preview = null;
    if (location.preview) {
      // Placed through the CSSOM: the page's policy allows no style attributes.
      const marker = h('span', { class: 'chat-map-marker' });
      marker.style.left = `${location.preview.x}px`;
      marker.style.top = `${location.preview.y}px`;
      const tile = h('img', { class: 'chat-map-tile', attrs: { src: this.session.fileUrl(location.preview.file), alt: '', width: 256, height: 256 } });
      preview = h('div', { class: 'chat-map' }, tile, marker);
    }
    return h(
      'div',
      { class: 'chat-location', data: { lat: String(location.lat), lon: String(location.lon) } },
      preview,
      h('span', { class: 'chat-location-address', raw: where }),
      h('span', { class: 'chat-file-about', text: 'location.accuracy', args: { metres: Math.round(location.accuracy_m) } }),
      h('a', { class: 'chat-location-link', attrs: { href: location.map_url, target: '_blank', rel: 'noopener noreferrer' }, text: 'location.open_map' }),
    );
  }

  /**
   * A file of the chat: its name (the download), size and type; a thumbnail for pictures.
   * @param {import('../signaling.js').SharedFile} file
   */
  fileView(file) {
    const url = this.session.fileUrl(file);
    const picture = PICTURES.includes(file.mime);
    const link = h(
      'a',
      { class: 'chat-file-link', attrs: { href: url, download: file.name } },
      picture ? h('img', { class: 'chat-thumb', attrs: { src: url, alt: file.name, loading: 'lazy' } }) : h('span', { class: 'chat-file-icon', html: icon('attach') }),
      h('span', { class: 'chat-file-name', raw: file.name }),
    );
    return h(
      'div',
      { class: 'chat-file', data: { id: file.id, mime: file.mime, sha256: file.sha256, size: String(file.size) } },
      link,
      file.screenshot ? h('span', { class: 'chat-file-about chat-screenshot', text: 'snapshot.label' }) : null,
      h('span', { class: 'chat-file-about', raw: `${formatBytes(file.size)} · ${file.mime}` }),
    );
  }

  /**
   * Our upload's line: a progress bar while it goes, why when it failed; gone once the file
   * is in the chat.
   * @param {Upload} upload
   */
  showUpload(upload) {
    let line = this.uploads.get(upload.key);
    if (!line) {
      line = h(
        'li',
        { class: 'chat-upload', data: { key: String(upload.key) } },
        h('span', { class: 'chat-file-name', raw: upload.name }),
        h('progress', { class: 'upload-progress', attrs: { max: upload.size || 1, value: 0 } }),
        h('span', { class: 'upload-status', attrs: { role: 'status' } }),
      );
      this.uploads.set(upload.key, line);
      this.list.append(line);
      this.empty.hidden = true;
    }
    line.dataset.state = upload.state;
    const bar = /** @type {HTMLProgressElement} */ (line.querySelector('progress'));
    bar.value = upload.sent;
    const status = /** @type {HTMLElement} */ (line.querySelector('.upload-status'));
    const percent = upload.size ? Math.floor((upload.sent * 100) / upload.size) : 0;
    if (upload.state === 'failed') {
      bar.hidden = true;
      setText(status, upload.error ?? 'file.failed', upload.errorArgs);
      if (upload.detail) status.title = upload.detail;
    } else if (upload.state === 'done') {
      // The file's own line (from the server) takes over.
      line.remove();
      this.uploads.delete(upload.key);
    } else {
      setText(status, `file.${upload.state}`, { percent, sent: formatBytes(upload.sent), size: formatBytes(upload.size) });
    }
    line.scrollIntoView({ block: 'end' });
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
