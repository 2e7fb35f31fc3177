// The first-run page, `/setup?token=…`: while a server has no administrator it prints this
// link on its console, and the first person to open it creates the administrator account here
// (then lands, logged in, on the administration page). The link works once; afterwards the
// page says so and points to the log-in page.

import { ApiError } from '../api.js';
import { finishSetup, setupState } from '../accounts.js';
import { EMAIL_MAX, emailProblem } from '../validate.js';
import { accountHeader, forgetSession } from './account.js';
import { h } from './dom.js';
import { busy, checkFields, field, newPasswordFields, say, showApiError } from './forms.js';

/** @param {HTMLElement} root */
export function renderSetup(root) {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const card = h('section', { class: 'card home-card auth-card', attrs: { id: 'setup-card' } }, h('h1', { class: 'card-title', text: 'setup.title' }));
  root.append(accountHeader(), h('main', { class: 'home' }, card));

  const done = () => {
    card.append(
      h('div', { class: 'account-state', attrs: { id: 'setup-done', role: 'status' }, data: { state: 'done' } },
        h('h2', { class: 'state-title', text: 'setup.done_title' }),
        h('p', { class: 'notice-text', text: 'setup.done' }),
        h('a', { class: 'button primary', attrs: { href: '/login' }, text: 'login.submit' })),
    );
  };

  setupState().then(
    (state) => {
      if (!state.open) return done();
      if (!token) return card.append(h('p', { class: 'notice-text', attrs: { id: 'setup-no-token' }, text: 'setup.no_token' }));
      card.append(form(token, done));
    },
    (error) => {
      const p = h('p', { class: 'form-error', attrs: { role: 'alert' } });
      card.append(p);
      showApiError(p, error);
    },
  );
}

/**
 * @param {string} token
 * @param {() => void} done
 */
function form(token, done) {
  const intro = h('p', { class: 'notice-text', text: 'setup.intro' });
  const email = field({ id: 'setup-email', label: 'signup.email', type: 'email', attrs: { autocomplete: 'username', required: true, maxlength: EMAIL_MAX } });
  const passwords = newPasswordFields('setup-password');
  const { password, again } = passwords;
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'setup-error' } });
  const submit = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'setup-submit' }, text: 'setup.submit' });
  const el = h('form', { class: 'stack-form', attrs: { novalidate: true, id: 'setup-form' } }, intro, email.wrap, password.wrap, again.wrap, submit, error);
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, null);
    if (!checkFields([[email, emailProblem(email.input.value)], ...passwords.problems()])) return;
    busy(submit, async () => {
      try {
        await finishSetup({ token, email: email.input.value.trim(), password: password.input.value });
        forgetSession();
        location.assign('/admin');
      } catch (e) {
        if (e instanceof ApiError && e.code === 'setup_done') {
          el.remove();
          done();
          return;
        }
        showApiError(error, e);
      }
    });
  });
  return el;
}
