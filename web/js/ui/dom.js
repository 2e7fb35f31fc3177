// Small DOM helpers: build elements declaratively, with translated text.

import { setAttrText, setText } from '../i18n.js';

/**
 * @typedef {object} Props
 * @property {string} [class] class names
 * @property {string} [text] translation key of the text content
 * @property {Record<string, string | number>} [args] parameters of `text`
 * @property {string} [raw] untranslated text (user content: names, chat, codes)
 * @property {Record<string, string>} [t] translated attributes: attribute -> key
 * @property {Record<string, string | boolean | number | undefined | null>} [attrs] plain attributes
 * @property {Record<string, string>} [data] data-* attributes
 * @property {Record<string, EventListener>} [on] event listeners
 * @property {string} [html] trusted markup (icons only)
 */

/**
 * Create an element.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.html) el.innerHTML = props.html;
  if (props.text) setText(el, props.text, props.args);
  if (props.raw !== undefined) el.textContent = props.raw;
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (value === false || value === undefined || value === null) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const [name, value] of Object.entries(props.data ?? {})) el.dataset[name] = value;
  for (const [attr, key] of Object.entries(props.t ?? {})) setAttrText(el, attr, key);
  for (const [type, listener] of Object.entries(props.on ?? {})) el.addEventListener(type, listener);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/**
 * Remove every child of an element.
 * @param {Element} el
 */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

/**
 * The initials of a display name, for avatars.
 * @param {string} name
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => Array.from(w)[0] ?? '').join('').toUpperCase() || '?';
}

/**
 * A stable hue for a participant id, for avatar colours.
 * @param {string} id
 */
export function hue(id) {
  let hash = 0;
  for (const ch of id) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return hash % 360;
}
