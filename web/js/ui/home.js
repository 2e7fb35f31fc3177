// The home page: make a room, or join one by its code.

import { ApiError, createRoom, lookupRoom, normalizeCode } from '../api.js';
import { setText } from '../i18n.js';
import { h } from './dom.js';
import { pageHeader } from './header.js';

/**
 * The "join with a code" form (also shown when a link's code is unknown).
 * @param {string} [initial]
 */
export function joinForm(initial = '') {
  const input = h('input', {
    class: 'code-input',
    attrs: { id: 'join-code', name: 'code', inputmode: 'numeric', autocomplete: 'off', maxlength: 32, required: true, value: initial },
    t: { placeholder: 'home.code_placeholder' },
  });
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'join-error' } });
  const button = h('button', { class: 'button', attrs: { type: 'submit' }, text: 'home.join' });
  const form = h(
    'form',
    { class: 'join-form', attrs: { novalidate: true } },
    h('label', { class: 'field-label', attrs: { for: 'join-code' }, text: 'home.join_label' }),
    h('div', { class: 'inline-field' }, input, button),
    error,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const code = normalizeCode(input.value);
    if (!code) {
      setText(error, 'home.code_empty');
      input.focus();
      return;
    }
    if (!/^\d{1,12}$/.test(code)) {
      setText(error, 'home.code_digits');
      input.focus();
      return;
    }
    button.disabled = true;
    error.textContent = '';
    try {
      await lookupRoom(code);
      location.assign(`/r/${encodeURIComponent(code)}`);
    } catch (e) {
      const apiCode = e instanceof ApiError ? e.code : 'other';
      setText(error, apiCode === 'unknown_code' ? 'home.unknown_code' : apiCode === 'network' ? 'error.network' : 'error.generic', { code });
      button.disabled = false;
      input.select();
    }
  });
  return form;
}

/** @param {HTMLElement} root */
export function renderHome(root) {
  const error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
  const create = h('button', { class: 'button primary wide', attrs: { type: 'button', id: 'create-room' }, text: 'home.create' });
  create.addEventListener('click', async () => {
    create.disabled = true;
    error.textContent = '';
    try {
      const room = await createRoom();
      location.assign(`/r/${encodeURIComponent(room.code)}`);
    } catch (e) {
      const code = e instanceof ApiError ? e.code : 'other';
      setText(error, code === 'unavailable' ? 'home.create_unavailable' : code === 'network' ? 'error.network' : 'error.generic');
      create.disabled = false;
    }
  });
  root.append(
    pageHeader(),
    h(
      'main',
      { class: 'home' },
      h(
        'section',
        { class: 'hero' },
        h('h1', { class: 'hero-title', text: 'home.title' }),
        h('p', { class: 'hero-text', text: 'home.tagline' }),
      ),
      h(
        'section',
        { class: 'card home-card' },
        create,
        error,
        h('div', { class: 'divider' }, h('span', { text: 'home.or' })),
        joinForm(),
      ),
    ),
  );
}

/**
 * The page for a link whose code no room has.
 * @param {HTMLElement} root
 * @param {string} code
 * @param {string} reasonKey translation key of the explanation
 */
export function renderUnknownRoom(root, code, reasonKey = 'room.unknown') {
  root.append(
    pageHeader(),
    h(
      'main',
      { class: 'home' },
      h(
        'section',
        { class: 'card home-card notice-card' },
        h('h1', { class: 'card-title', text: 'room.unknown_title' }),
        h('p', { class: 'notice-text', text: reasonKey, args: { code } }),
        joinForm(),
        h('a', { class: 'button ghost wide', attrs: { href: '/' }, text: 'room.go_home' }),
      ),
    ),
  );
}
