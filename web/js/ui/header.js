// The language switch and the page header of the home and pre-join pages.

import { LANGUAGES, language, languageName, setLanguage } from '../i18n.js';
import { h } from './dom.js';
import { icon } from './icons.js';

/** A language switch: each language named in itself, the choice remembered. */
export function languageSwitch() {
  const select = h(
    'select',
    { class: 'lang-select', t: { 'aria-label': 'language.switch', title: 'language.switch' }, data: { testid: 'language' } },
    ...LANGUAGES.map((lang) => h('option', { attrs: { value: lang, lang }, raw: languageName(lang) })),
  );
  select.value = language();
  select.addEventListener('change', () => setLanguage(/** @type {any} */ (select.value)));
  window.addEventListener('orbita:language', () => {
    select.value = language();
  });
  return h('label', { class: 'lang-switch' }, h('span', { class: 'lang-icon', html: icon('language') }), select);
}

/**
 * The header of the home and pre-join pages (and the account pages, with the account menu).
 * @param {HTMLElement | null} [extra] shown before the language switch
 */
export function pageHeader(extra = null) {
  return h(
    'header',
    { class: 'page-header' },
    h(
      'a',
      { class: 'brand', attrs: { href: '/' } },
      h('img', { attrs: { src: '/assets/img/icon.svg', alt: '', width: 28, height: 28 } }),
      h('span', { class: 'brand-name', text: 'app.name' }),
    ),
    h('div', { class: 'header-tools' }, extra, languageSwitch()),
  );
}
