// A small pop-up menu of choices (quality, camera), anchored to a button.

import { h } from './dom.js';
import { icon } from './icons.js';

/**
 * @typedef {object} MenuItem
 * @property {string} value
 * @property {string} [text] translation key
 * @property {string} [raw] untranslated label (device names)
 * @property {boolean} [checked]
 */

/** @type {(() => void) | null} */
let closeOpen = null;

/**
 * Open a menu above (or below) `anchor`; `onPick` gets the chosen value.
 * @param {HTMLElement} anchor
 * @param {string} titleKey translation key of the menu's heading
 * @param {MenuItem[]} items
 * @param {(value: string) => void} onPick
 * @param {string} [name] a name for tests (data-menu)
 */
export function openMenu(anchor, titleKey, items, onPick, name = '') {
  if (closeOpen) closeOpen();
  const menu = h(
    'div',
    { class: 'menu', attrs: { role: 'menu' }, data: { menu: name } },
    h('div', { class: 'menu-title', text: titleKey }),
    ...items.map((item) =>
      h(
        'button',
        {
          class: `menu-item${item.checked ? ' checked' : ''}`,
          attrs: { role: 'menuitemradio', 'aria-checked': item.checked ? 'true' : 'false', type: 'button' },
          data: { value: item.value },
          on: {
            click: () => {
              close();
              onPick(item.value);
            },
          },
        },
        h('span', { class: 'menu-check', html: item.checked ? icon('check') : '' }),
        item.text ? h('span', { text: item.text }) : h('span', { raw: item.raw ?? item.value }),
      ),
    ),
  );
  document.body.append(menu);
  const rect = anchor.getBoundingClientRect();
  const width = menu.offsetWidth;
  const left = Math.min(Math.max(8, rect.left + rect.width / 2 - width / 2), window.innerWidth - width - 8);
  menu.style.left = `${left}px`;
  if (rect.top > window.innerHeight / 2) menu.style.bottom = `${window.innerHeight - rect.top + 8}px`;
  else menu.style.top = `${rect.bottom + 8}px`;
  anchor.setAttribute('aria-expanded', 'true');

  /** @param {Event} event */
  const outside = (event) => {
    if (!menu.contains(/** @type {Node} */ (event.target)) && !anchor.contains(/** @type {Node} */ (event.target))) close();
  };
  /** @param {KeyboardEvent} event */
  const onKey = (event) => {
    if (event.key === 'Escape') {
      close();
      anchor.focus();
    }
  };
  function close() {
    menu.remove();
    anchor.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', outside, true);
    document.removeEventListener('keydown', onKey);
    closeOpen = null;
  }
  setTimeout(() => {
    document.addEventListener('pointerdown', outside, true);
    document.addEventListener('keydown', onKey);
  });
  closeOpen = close;
  /** @type {HTMLElement | null} */ (menu.querySelector('.menu-item.checked, .menu-item'))?.focus();
  return close;
}
