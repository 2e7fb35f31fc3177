// The frame of the account pages (/admin, /plan, /plans): the header with the account menu,
// a wide main area, and the check of who may open the page (a notice with a way on when not).

import { h } from './dom.js';
import { accountHeader, session } from './account.js';

/** @typedef {import('../accounts.js').User} User */
/** @typedef {import('../accounts.js').Quota} Quota */

/**
 * Show the page frame and check the visitor's role; resolves with who is logged in when
 * they may use the page, else null (the page then says why: log in first, or not allowed).
 * @param {HTMLElement} root
 * @param {string} titleKey
 * @param {string[]} roles who may open the page
 * @returns {Promise<{main: HTMLElement, user: User, quota: Quota} | null>}
 */
export async function accountPage(root, titleKey, roles) {
  const main = h('main', { class: 'page' }, h('h1', { class: 'page-title', text: titleKey }));
  root.append(accountHeader(), main);
  const who = await session();
  if (!who) {
    const next = encodeURIComponent(location.pathname);
    main.append(
      h(
        'section',
        { class: 'card notice-card refused', attrs: { id: 'page-refused', role: 'alert' }, data: { reason: who === null ? 'login' : 'no_accounts' } },
        h('p', { class: 'notice-text', text: who === null ? 'page.login_first' : 'page.no_accounts' }),
        who === null ? h('a', { class: 'button primary', attrs: { href: `/login?next=${next}` }, text: 'account.login' }) : null,
      ),
    );
    return null;
  }
  if (!roles.includes(who.user.role)) {
    main.append(
      h(
        'section',
        { class: 'card notice-card refused', attrs: { id: 'page-refused', role: 'alert' }, data: { reason: 'forbidden' } },
        h('p', { class: 'notice-text', text: 'page.forbidden' }),
        h('a', { class: 'button', attrs: { href: '/' }, text: 'room.go_home' }),
      ),
    );
    return null;
  }
  return { main, user: who.user, quota: who.quota };
}

/**
 * A section of an account page with a heading.
 * @param {string} id
 * @param {string} titleKey
 * @param {...(HTMLElement | null)} children
 */
export function section(id, titleKey, ...children) {
  return h('section', { class: 'card page-section', attrs: { id, 'aria-labelledby': `${id}-title` } }, h('h2', { class: 'section-title', attrs: { id: `${id}-title` }, text: titleKey }), ...children);
}
