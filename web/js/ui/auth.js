// The sign-up and log-in pages. Sign-up makes a pending account (an administrator approves
// it); logging in says when the account is still waiting or was rejected, and why. Nothing
// typed is lost on a failure.

import { ApiError } from '../api.js';
import { login, signup } from '../accounts.js';
import { browserTimeZone } from '../plan-time.js';
import { EMAIL_MAX, NAME_MAX, emailProblem, nameProblem, nextPath } from '../validate.js';
import { accountHeader, forgetSession, session } from './account.js';
import { explainApiError } from './api-errors.js';
import { clear, h } from './dom.js';
import { busy, checkFields, field, newPasswordFields, say, showApiError } from './forms.js';
import { setText } from '../i18n.js';

/**
 * A page of one card.
 * @param {HTMLElement} root
 * @param {...HTMLElement} children
 */
function cardPage(root, ...children) {
  root.append(accountHeader(), h('main', { class: 'home' }, h('section', { class: 'card home-card auth-card' }, ...children)));
}

/** @param {HTMLElement} root */
export function renderSignup(root) {
  const name = field({ id: 'signup-name', label: 'signup.name', attrs: { autocomplete: 'name', required: true, maxlength: NAME_MAX } });
  const email = field({ id: 'signup-email', label: 'signup.email', type: 'email', attrs: { autocomplete: 'email', required: true, maxlength: EMAIL_MAX } });
  const passwords = newPasswordFields('signup-password');
  const { password, again } = passwords;
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'signup-error' } });
  const submit = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'signup-submit' }, text: 'signup.submit' });
  const form = h(
    'form',
    { class: 'stack-form', attrs: { novalidate: true, id: 'signup-form' } },
    name.wrap,
    email.wrap,
    password.wrap,
    again.wrap,
    submit,
    error,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, null);
    const ok = checkFields([[name, nameProblem(name.input.value)], [email, emailProblem(email.input.value)], ...passwords.problems()]);
    if (!ok) return;
    busy(submit, async () => {
      try {
        const { user } = await signup({
          name: name.input.value.trim(),
          email: email.input.value.trim(),
          password: password.input.value,
          time_zone: browserTimeZone(),
        });
        const card = /** @type {HTMLElement} */ (form.parentElement);
        clear(card);
        card.append(
          h('h1', { class: 'card-title', text: 'signup.done_title' }),
          h('p', { class: 'notice-text', attrs: { id: 'signup-done', role: 'status' }, text: 'signup.done', args: { email: user?.email ?? email.input.value.trim() } }),
          h('a', { class: 'button primary wide', attrs: { href: '/login' }, text: 'account.login' }),
        );
      } catch (e) {
        const target = e instanceof ApiError ? { bad_email: email, email_taken: email, weak_password: password, bad_name: name }[e.code] : undefined;
        if (target) {
          target.invalid(explainApiError(e).key);
          target.input.focus();
        } else {
          showApiError(error, e);
        }
      }
    });
  });
  cardPage(
    root,
    h('h1', { class: 'card-title', text: 'signup.title' }),
    h('p', { class: 'notice-text', text: 'signup.intro' }),
    form,
    h('p', { class: 'auth-switch' }, h('span', { text: 'signup.have_account' }), ' ', h('a', { attrs: { href: '/login' }, text: 'account.login' })),
  );
}

/** @param {HTMLElement} root */
export function renderLogin(root) {
  const email = field({ id: 'login-email', label: 'signup.email', type: 'email', attrs: { autocomplete: 'username', required: true, maxlength: EMAIL_MAX } });
  const password = field({ id: 'login-password', label: 'signup.password', type: 'password', attrs: { autocomplete: 'current-password', required: true } });
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'login-error' } });
  const state = h('div', { class: 'account-state', attrs: { id: 'login-state', role: 'status', hidden: true } });
  const submit = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'login-submit' }, text: 'login.submit' });
  const form = h('form', { class: 'stack-form', attrs: { novalidate: true, id: 'login-form' } }, email.wrap, password.wrap, submit, error, state);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, null);
    state.hidden = true;
    clear(state);
    email.invalid(emailProblem(email.input.value));
    password.invalid(password.input.value ? null : 'account.password_required');
    if (emailProblem(email.input.value)) {
      email.input.focus();
      return;
    }
    if (!password.input.value) {
      password.input.focus();
      return;
    }
    busy(submit, async () => {
      try {
        await login(email.input.value.trim(), password.input.value);
        forgetSession();
        location.assign(nextPath(location.search));
      } catch (e) {
        const code = e instanceof ApiError ? e.code : '';
        if (code === 'account_pending' || code === 'account_rejected') {
          const { key, args } = explainApiError(e);
          state.dataset.state = code === 'account_pending' ? 'pending' : 'rejected';
          state.append(
            h('h2', { class: 'state-title', text: code === 'account_pending' ? 'login.pending_title' : 'login.rejected_title' }),
            h('p', { class: 'notice-text', text: key, args }),
          );
          state.hidden = false;
        } else {
          showApiError(error, e);
          if (code === 'bad_credentials') password.input.select();
        }
      }
    });
  });
  const already = h('p', { class: 'notice-text', attrs: { id: 'login-already', hidden: true } });
  session().then((who) => {
    if (who && who.user) {
      setText(already, 'login.already', { name: who.user.name || who.user.email });
      already.hidden = false;
    }
  });
  cardPage(
    root,
    h('h1', { class: 'card-title', text: 'login.title' }),
    already,
    form,
    h('p', { class: 'auth-switch' }, h('span', { text: 'login.no_account' }), ' ', h('a', { attrs: { href: '/signup' }, text: 'account.signup' })),
    h('p', { class: 'notice-text small', text: 'login.guests' }),
  );
}
