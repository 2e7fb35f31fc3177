// The home page: pick an app of the coordinator's catalogue and start it (a plain room when
// this server has no coordinator), or join a session by its code.

import { normalizeCode } from '../api.js';
import { PLAIN_ROOM_APP } from '../catalogue.js';
import { setText } from '../i18n.js';
import { Launcher } from '../launch.js';
import { AppPicker } from './apps.js';
import { clear, h } from './dom.js';
import { accountHeader } from './account.js';
import { pageHeader } from './header.js';
import { explainLaunchError } from './launch-errors.js';

/**
 * Show why starting or joining failed.
 * @param {HTMLElement} el
 * @param {unknown} failure
 * @param {string} [code]
 */
function showFailure(el, failure, code) {
  const { key, args, detail } = explainLaunchError(failure, code);
  clear(el);
  delete el.dataset.i18n;
  el.append(h('span', { text: key, args }));
  if (detail) el.append(h('span', { class: 'error-detail', raw: detail }));
  if (key === 'home.login_required') {
    el.append(
      ' ',
      h('a', { attrs: { href: '/login?next=%2F', id: 'start-login' }, text: 'account.login' }),
      ' · ',
      h('a', { attrs: { href: '/signup' }, text: 'account.signup' }),
    );
  }
}

/**
 * The "join with a code" form (also shown when a link's code is unknown).
 * @param {Launcher} launcher
 * @param {string} [initial]
 */
export function joinForm(launcher, initial = '') {
  const input = h('input', {
    class: 'code-input',
    attrs: { id: 'join-code', name: 'code', inputmode: 'numeric', autocomplete: 'off', maxlength: 32, required: true, value: initial },
    t: { placeholder: 'home.code_placeholder' },
  });
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'join-error' } });
  const button = h('button', { class: 'button', attrs: { type: 'submit', id: 'join-submit' }, text: 'home.join' });
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
    clear(error);
    delete error.dataset.i18n;
    try {
      location.assign(await launcher.join(code));
    } catch (e) {
      showFailure(error, e, code);
      button.disabled = false;
      input.select();
    }
  });
  return form;
}

/** @param {HTMLElement} root */
export function renderHome(root) {
  const launcher = new Launcher();
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'start-error' } });
  const create = h('button', { class: 'button primary wide', attrs: { type: 'button', id: 'create-room' }, text: 'home.create' });
  /** The label of the start button for an app: a plain room is "created", an app "started". */
  const startLabel = (/** @type {string | null} */ rcName) => (rcName && rcName !== PLAIN_ROOM_APP ? 'home.start' : 'home.create');
  const picker = new AppPicker((rcName) => setText(create, startLabel(rcName)));
  /** @type {Promise<boolean>} whether there is a catalogue to pick from */
  const ready = launcher.catalogue().then(
    (apps) => {
      if (apps && apps.length) picker.show(apps, PLAIN_ROOM_APP);
      else picker.hide();
      return Boolean(apps && apps.length);
    },
    (e) => {
      console.warn('orbita: cannot load the apps', e);
      picker.hide();
      return false;
    },
  );
  create.addEventListener('click', async () => {
    create.disabled = true;
    clear(error);
    delete error.dataset.i18n;
    const rcName = (await ready) ? picker.selected : null;
    setText(create, 'home.starting');
    try {
      location.assign(await launcher.start(rcName));
    } catch (e) {
      showFailure(error, e);
      setText(create, startLabel(rcName));
      create.disabled = false;
    }
  });
  root.append(
    accountHeader(),
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
        picker.el,
        create,
        error,
        h('div', { class: 'divider' }, h('span', { text: 'home.or' })),
        joinForm(launcher),
      ),
    ),
  );
}

/**
 * The page for a link whose code no room has (or whose session cannot be joined yet).
 * @param {HTMLElement} root
 * @param {string} code
 * @param {string} reasonKey translation key of the explanation
 * @param {Record<string, string | number>} [args] its parameters (besides the code)
 * @param {string} [detail] the server's words
 */
export function renderUnknownRoom(root, code, reasonKey = 'room.unknown', args = {}, detail = undefined) {
  root.append(
    pageHeader(),
    h(
      'main',
      { class: 'home' },
      h(
        'section',
        { class: 'card home-card notice-card' },
        h('h1', { class: 'card-title', text: 'room.unknown_title' }),
        h('p', { class: 'notice-text', attrs: { id: 'unknown-reason' }, text: reasonKey, args: { code, ...args } }),
        detail ? h('p', { class: 'error-detail', raw: detail }) : null,
        joinForm(new Launcher()),
        h('a', { class: 'button ghost wide', attrs: { href: '/' }, text: 'room.go_home' }),
      ),
    ),
  );
}
