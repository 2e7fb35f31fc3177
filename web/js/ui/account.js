// Who is logged in, and the account menu of the page header: "Logged in as Ann", links to
// planning and administration by role, change password, log out; "Log in" / "Sign up" for
// guests (who still join sessions by code without an account).

import { ApiError } from '../api.js';
import { changePassword, logout, me } from '../accounts.js';
import { setText } from '../i18n.js';
import { clear, h } from './dom.js';
import { busy, checkFields, field, newPasswordFields, say, showApiError } from './forms.js';
import { pageHeader } from './header.js';

/** @typedef {import('../accounts.js').User} User */
/** @typedef {import('../accounts.js').Quota} Quota */

/** @type {Promise<{user: User, quota: Quota} | null | undefined> | null} */
let current = null;

/**
 * Who is logged in (asked once per page): `{user, quota}`, null for a guest, undefined when
 * this server has no accounts.
 */
export function session() {
  if (!current) current = me().catch(() => undefined);
  return current;
}

/** Ask the server again (after logging in or out). */
export function forgetSession() {
  current = null;
}

/** Roles that plan sessions. */
export const PLANNERS = ['agent', 'supervisor', 'admin'];
/** Roles that see everyone's plans. */
export const OVERSEERS = ['supervisor', 'admin'];

/**
 * The links of the account menu for a role.
 * @param {string} role
 * @returns {{href: string, text: string, id: string}[]}
 */
export function roleLinks(role) {
  const links = [];
  if (PLANNERS.includes(role)) links.push({ href: '/plan', text: 'account.plan', id: 'menu-plan' });
  if (OVERSEERS.includes(role)) links.push({ href: '/plans', text: 'account.all_plans', id: 'menu-plans' });
  if (PLANNERS.includes(role)) links.push({ href: '/recordings', text: 'account.recordings', id: 'menu-recordings' });
  if (PLANNERS.includes(role)) links.push({ href: '/calls', text: 'account.calls', id: 'menu-calls' });
  if (role === 'admin') links.push({ href: '/admin', text: 'account.admin', id: 'menu-admin' });
  return links;
}

/** The page header with the account menu. */
export function accountHeader() {
  const area = h('div', { class: 'account-area', attrs: { id: 'account-area' } });
  const header = pageHeader(area);
  session().then((who) => fillAccountArea(area, who));
  return header;
}

/**
 * @param {HTMLElement} area
 * @param {{user: User, quota: Quota} | null | undefined} who
 */
function fillAccountArea(area, who) {
  clear(area);
  if (who === undefined) return; // no accounts on this server
  if (who === null) {
    area.append(
      h('a', { class: 'button small ghost', attrs: { href: '/login', id: 'login-link' }, text: 'account.login' }),
      h('a', { class: 'button small', attrs: { href: '/signup', id: 'signup-link' }, text: 'account.signup' }),
    );
    return;
  }
  const { user } = who;
  const passwordBox = h('div', { class: 'account-password', attrs: { hidden: true } });
  const logoutError = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'logout-error' } });
  const logoutButton = h('button', { class: 'button small ghost wide', attrs: { type: 'button', id: 'logout' }, text: 'account.logout' });
  logoutButton.addEventListener('click', () =>
    busy(logoutButton, async () => {
      try {
        await logout();
        forgetSession();
        location.assign('/');
      } catch (e) {
        showApiError(logoutError, e);
      }
    }),
  );
  const passwordToggle = h('button', {
    class: 'button small ghost wide',
    attrs: { type: 'button', id: 'change-password', 'aria-expanded': 'false' },
    text: 'account.change_password',
  });
  passwordToggle.addEventListener('click', () => {
    passwordBox.hidden = !passwordBox.hidden;
    passwordToggle.setAttribute('aria-expanded', String(!passwordBox.hidden));
    if (!passwordBox.hidden && !passwordBox.firstChild) passwordBox.append(passwordForm());
    /** @type {HTMLInputElement | null} */ (passwordBox.querySelector('input'))?.focus();
  });
  const menu = h(
    'details',
    { class: 'account-menu', attrs: { id: 'account-menu' }, data: { role: user.role, email: user.email } },
    h(
      'summary',
      { class: 'button small account-summary' },
      h('span', { class: 'account-as', text: 'account.logged_in_as', args: { name: user.name || user.email } }),
    ),
    h(
      'div',
      { class: 'account-panel card' },
      h('p', { class: 'account-who' }, h('strong', { raw: user.name || user.email }), h('span', { class: 'account-email', raw: user.email })),
      h('p', { class: 'account-role', text: `role.${user.role}` }),
      h(
        'nav',
        { class: 'account-links', t: { 'aria-label': 'account.menu' } },
        ...roleLinks(user.role).map((l) => h('a', { class: 'button small wide', attrs: { href: l.href, id: l.id }, text: l.text })),
      ),
      passwordToggle,
      passwordBox,
      logoutButton,
      logoutError,
    ),
  );
  area.append(menu);
}

/** The change-password form (old, new, new again). */
function passwordForm() {
  const old = field({ id: 'old-password', label: 'account.old_password', type: 'password', attrs: { autocomplete: 'current-password', required: true } });
  const passwords = newPasswordFields('new-password', { label: 'account.new_password', againLabel: 'account.new_password_again' });
  const { password: next, again } = passwords;
  const status = h('p', { class: 'form-status', attrs: { role: 'status', id: 'password-status' } });
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'password-error' } });
  const submit = h('button', { class: 'button primary wide', attrs: { type: 'submit' }, text: 'account.save_password' });
  const form = h('form', { class: 'stack-form', attrs: { novalidate: true } }, old.wrap, next.wrap, again.wrap, submit, error, status);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, null);
    say(status, null);
    if (!checkFields([[old, old.input.value ? null : 'account.password_required'], ...passwords.problems()])) return;
    busy(submit, async () => {
      try {
        await changePassword(old.input.value, next.input.value);
        for (const f of [old, next, again]) f.input.value = '';
        setText(status, 'account.password_changed');
      } catch (e) {
        if (e instanceof ApiError && e.code === 'bad_credentials') {
          old.invalid('account.wrong_password');
          old.input.focus();
        } else {
          showApiError(error, e);
        }
      }
    });
  });
  return form;
}
