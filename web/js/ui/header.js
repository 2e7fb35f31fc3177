// The language switch and the page header of the home and pre-join pages.

import { branding } from '../branding.js';
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
  return h('header', { class: 'page-header' }, brandMark(), h('div', { class: 'header-tools' }, extra, languageSwitch()));
}

/** Orbita's mark, or the organisation's logo and name where it set them (the room pages). */
function brandMark() {
  const b = branding();
  if (!b.company && !b.logo) {
    return h(
      'a',
      { class: 'brand', attrs: { href: '/' } },
      h('img', { attrs: { src: '/assets/img/icon.svg', alt: '', width: 28, height: 28 } }),
      h('span', { class: 'brand-name', text: 'app.name' }),
    );
  }
  return h(
    'span',
    { class: 'brand brand-custom', attrs: { id: 'brand' } },
    b.logo ? h('img', { class: 'brand-logo', attrs: { src: b.logo, alt: b.company, height: 32, id: 'brand-logo' } }) : null,
    b.company ? h('span', { class: 'brand-name', raw: b.company, attrs: { id: 'brand-company' } }) : null,
  );
}
