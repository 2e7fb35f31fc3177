// Short messages at the bottom of the page: what happened, and server errors in plain words.

import { h } from './dom.js';
import { icon } from './icons.js';

/** @type {HTMLElement | null} */
let host = null;

function container() {
  if (!host || !host.isConnected) {
    host = h('div', { class: 'toasts', attrs: { role: 'status', 'aria-live': 'polite' } });
    document.body.append(host);
  }
  return host;
}

/**
 * Show a message.
 * @param {{key: string, args?: Record<string, string | number>, level?: 'info' | 'error', detail?: string}} message
 */
export function toast({ key, args, level = 'info', detail }) {
  const el = h(
    'div',
    { class: `toast toast-${level}`, attrs: { role: level === 'error' ? 'alert' : 'status' } },
    level === 'error' ? h('span', { class: 'toast-icon', html: icon('warning') }) : null,
    h(
      'div',
      { class: 'toast-body' },
      h('span', { class: 'toast-text', text: key, args }),
      detail ? h('span', { class: 'toast-detail', raw: detail }) : null,
    ),
    h('button', {
      class: 'toast-close icon-button',
      html: icon('close'),
      t: { 'aria-label': 'action.close', title: 'action.close' },
      on: { click: () => el.remove() },
    }),
  );
  const box = container();
  box.append(el);
  while (box.children.length > 4) box.firstElementChild?.remove();
  setTimeout(() => el.remove(), level === 'error' ? 9000 : 3500);
  return el;
}
