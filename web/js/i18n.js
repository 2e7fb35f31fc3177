// Translations: every visible string of the client comes from web/i18n/{en,ru,kk}.json.
//
// Elements carry the key of their text in `data-i18n` (and its parameters as JSON in
// `data-i18n-args`); attributes in `data-i18n-attrs` ("title:key;aria-label:key"). Switching
// the language re-translates the whole document in place, so live video elements are kept.

/** @typedef {'en' | 'ru' | 'kk'} Lang */
/** @typedef {Record<string, string | Record<string, string>>} Table */

/** The languages the client speaks, in the order the switch lists them. */
export const LANGUAGES = /** @type {const} */ (['en', 'ru', 'kk']);
const STORAGE_KEY = 'orbita.lang';

/** @type {Partial<Record<Lang, Table>>} */
const tables = {};
/** @type {Lang} */
let current = 'en';

/**
 * The language to start with: the remembered choice, else the first of the browser's
 * languages that we speak, else English.
 * @returns {Lang}
 */
export function preferredLanguage() {
  const stored = safeStorageGet(STORAGE_KEY);
  if (isLang(stored)) return stored;
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of wanted) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (isLang(base)) return base;
  }
  return 'en';
}

/**
 * @param {unknown} value
 * @returns {value is Lang}
 */
function isLang(value) {
  return typeof value === 'string' && /** @type {readonly string[]} */ (LANGUAGES).includes(value);
}

/** @param {string} key */
function safeStorageGet(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/**
 * @param {Lang} lang
 * @returns {Promise<Table>}
 */
async function load(lang) {
  const have = tables[lang];
  if (have) return have;
  const response = await fetch(`/assets/i18n/${lang}.json`);
  if (!response.ok) throw new Error(`cannot load translations ${lang}: HTTP ${response.status}`);
  const table = /** @type {Table} */ (await response.json());
  tables[lang] = table;
  return table;
}

/** Load the preferred language (and English as the fallback) and translate the page. */
export async function initI18n() {
  await load('en');
  await setLanguage(preferredLanguage(), { remember: false });
}

/** @returns {Lang} */
export function language() {
  return current;
}

/**
 * Switch the language, remember it, and re-translate the document.
 * @param {Lang} lang
 * @param {{remember?: boolean}} [options]
 */
export async function setLanguage(lang, { remember = true } = {}) {
  if (!isLang(lang)) return;
  await load(lang);
  current = lang;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // Private mode: the choice lasts for this page only.
    }
  }
  document.documentElement.lang = lang;
  translateTree(document);
  window.dispatchEvent(new CustomEvent('orbita:language', { detail: lang }));
}

/**
 * The text of `key` in the current language, with `{name}` parameters filled in. A value
 * that is an object is a plural form table chosen by `args.count`.
 * @param {string} key
 * @param {Record<string, string | number>} [args]
 * @returns {string}
 */
export function t(key, args = {}) {
  const value = lookup(current, key) ?? lookup('en', key);
  if (value === undefined) {
    console.warn(`orbita: no translation for ${key}`);
    return key;
  }
  let text;
  if (typeof value === 'string') {
    text = value;
  } else {
    const count = Number(args.count ?? 0);
    const form = new Intl.PluralRules(current).select(count);
    text = value[form] ?? value.other ?? Object.values(value)[0] ?? key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in args ? String(args[name]) : whole));
}

/**
 * @param {Lang} lang
 * @param {string} key
 */
function lookup(lang, key) {
  const table = tables[lang];
  return table ? table[key] : undefined;
}

/** Whether a key exists in the English table. @param {string} key */
export function has(key) {
  return lookup('en', key) !== undefined;
}

/**
 * The name of a language in that language (from its own table).
 * @param {Lang} lang
 */
export function languageName(lang) {
  const value = lookup(lang, 'language.name');
  return typeof value === 'string' ? value : lang;
}

/** Load every table (for the language switch, which names each language in itself). */
export async function loadAll() {
  await Promise.all(LANGUAGES.map((lang) => load(lang)));
}

/**
 * Give an element translated text that follows language switches.
 * @param {HTMLElement} el
 * @param {string} key
 * @param {Record<string, string | number>} [args]
 */
export function setText(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
}

/**
 * Give an element a translated attribute (title, aria-label, placeholder) that follows
 * language switches.
 * @param {HTMLElement} el
 * @param {string} attr
 * @param {string} key
 */
export function setAttrText(el, attr, key) {
  const pairs = parseAttrs(el.dataset.i18nAttrs).filter(([name]) => name !== attr);
  pairs.push([attr, key]);
  el.dataset.i18nAttrs = pairs.map(([name, k]) => `${name}:${k}`).join(';');
  el.setAttribute(attr, t(key));
}

/** @param {string | undefined} spec @returns {[string, string][]} */
function parseAttrs(spec) {
  if (!spec) return [];
  return spec
    .split(';')
    .filter(Boolean)
    .map((pair) => /** @type {[string, string]} */ (pair.split(':', 2)));
}

/**
 * Translate every marked element under `root`.
 * @param {ParentNode} root
 */
export function translateTree(root) {
  root.querySelectorAll('[data-i18n]').forEach((node) => {
    const el = /** @type {HTMLElement} */ (node);
    const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined;
    el.textContent = t(/** @type {string} */ (el.dataset.i18n), args);
  });
  root.querySelectorAll('[data-i18n-attrs]').forEach((node) => {
    const el = /** @type {HTMLElement} */ (node);
    for (const [attr, key] of parseAttrs(el.dataset.i18nAttrs)) el.setAttribute(attr, t(key));
  });
  if (root === document) document.title = t('app.title');
}
