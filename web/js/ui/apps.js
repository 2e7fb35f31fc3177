// The app picker of the home page: the coordinator's catalogue as a group of radio choices,
// each with its name and its description in the page's language.

import { describe } from '../catalogue.js';
import { has, language, setText } from '../i18n.js';
import { clear, h } from './dom.js';

/** @typedef {import('../catalogue.js').App} App */

/**
 * The translation key of an app's name (the default catalogue's apps have one).
 * @param {string} rcName
 */
export function nameKey(rcName) {
  return `apps.name.${rcName.toLowerCase().replace(/[^a-z0-9]+/g, '_')}`;
}

/**
 * A readable name for an app the tables do not know: "my-app_2" -> "My app 2".
 * @param {string} rcName
 */
export function humanName(rcName) {
  const words = rcName.replace(/[-_]+/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : rcName;
}

/**
 * An app's name for people: its translation when the tables have one, else made readable.
 * @param {HTMLElement} el
 * @param {string} rcName
 */
export function setAppName(el, rcName) {
  const key = nameKey(rcName);
  if (has(key)) setText(el, key);
  else el.textContent = humanName(rcName);
  return el;
}

export class AppPicker {
  /** @param {(rcName: string) => void} onChange */
  constructor(onChange) {
    this.onChange = onChange;
    /** @type {string | null} */
    this.selected = null;
    /** @type {{app: App, text: HTMLElement}[]} */
    this.descriptions = [];
    this.list = h('div', { class: 'app-list', attrs: { id: 'app-list' } });
    this.status = h('p', { class: 'app-status', attrs: { id: 'apps-status', role: 'status' }, text: 'apps.loading' });
    this.el = h(
      'fieldset',
      { class: 'apps', attrs: { id: 'apps' } },
      h('legend', { class: 'field-label', text: 'apps.choose' }),
      this.status,
      this.list,
    );
    window.addEventListener('orbita:language', () => this.translate());
  }

  /**
   * Show the apps and select `preferred` (else the first).
   * @param {App[]} apps
   * @param {string} preferred
   */
  show(apps, preferred) {
    clear(this.list);
    this.descriptions = [];
    this.status.hidden = true;
    if (apps.length === 0) {
      this.el.hidden = true;
      return;
    }
    const initial = apps.some((a) => a.rcName === preferred) ? preferred : apps[0].rcName;
    // The one picked at first is listed first; the others keep the coordinator's order.
    const ordered = [...apps.filter((a) => a.rcName === initial), ...apps.filter((a) => a.rcName !== initial)];
    for (const app of ordered) {
      const radio = h('input', {
        class: 'app-radio',
        attrs: { type: 'radio', name: 'app', value: app.rcName, checked: app.rcName === initial },
      });
      radio.addEventListener('change', () => {
        if (radio.checked) this.select(app.rcName);
      });
      const title = h('span', { class: 'app-name' });
      const key = nameKey(app.rcName);
      if (has(key)) setText(title, key);
      else title.textContent = humanName(app.rcName);
      const text = h('span', { class: 'app-description' });
      this.descriptions.push({ app, text });
      this.list.append(
        h('label', { class: 'app-option', data: { app: app.rcName } }, radio, h('span', { class: 'app-text' }, title, text)),
      );
    }
    this.translate();
    this.select(initial);
  }

  /** There is no catalogue here (no coordinator, or it failed): hide the picker. */
  hide() {
    this.el.hidden = true;
  }

  /** @param {string} rcName */
  select(rcName) {
    this.selected = rcName;
    for (const option of this.list.querySelectorAll('.app-option')) {
      option.classList.toggle('selected', /** @type {HTMLElement} */ (option).dataset.app === rcName);
    }
    this.onChange(rcName);
  }

  /** Descriptions in the page's language. */
  translate() {
    const lang = language();
    for (const { app, text } of this.descriptions) text.textContent = describe(app, lang);
  }
}
