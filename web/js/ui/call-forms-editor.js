// The administrator's editor of the survey and the call fields on /admin (docs/calls.md,
// "Survey and fields"): for every app ("default") or one app, the questions a customer answers
// when the call ends and the fields an agent fills in, each a row (id, kind, label, choices,
// required) that can be added, changed and removed; the server checks and says what is wrong.

import { call } from '../accounts.js';
import { setText } from '../i18n.js';
import { clear, h } from './dom.js';
import { busy, say, showApiError } from './forms.js';
import { scopeField } from './call-settings.js';
import { section } from './page.js';

const QUESTION_KINDS = ['rating', 'choice', 'text'];
const FIELD_KINDS = ['text', 'number', 'choice', 'date'];
const MAX_QUESTIONS = 20;
const MAX_FIELDS = 30;

/**
 * @typedef {{id: string, kind: string, label: string, choices?: string[], required?: boolean}} Item
 * @typedef {{survey: Item[], fields: Item[]}} Forms
 */

/** The section of the survey and the fields. */
export function callFormsSection() {
  const status = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'forms-error' } });
  const body = h('div', { attrs: { id: 'forms-body' } });
  load();
  return section('call-forms', 'forms.title', h('p', { class: 'notice-text', text: 'forms.hint' }), status, body);

  async function load() {
    try {
      /** @type {{forms: Record<string, Forms>}} */
      const answer = await call('GET', '/api/call-forms');
      say(status, null);
      clear(body);
      body.append(editor(answer.forms, status, load));
    } catch (e) {
      showApiError(status, e);
    }
  }
}

/**
 * @param {Record<string, Forms>} all every scope's forms
 * @param {HTMLElement} status
 * @param {() => Promise<void>} reload
 */
function editor(all, status, reload) {
  const scope = scopeField('forms-scope', Object.keys(all));
  const questions = itemList('survey', QUESTION_KINDS, MAX_QUESTIONS);
  const fields = itemList('fields', FIELD_KINDS, MAX_FIELDS);
  const save = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'forms-save' }, text: 'settings.save' });
  const remove = h('button', { class: 'button ghost', attrs: { type: 'button', id: 'forms-remove' }, text: 'forms.remove' });
  const saved = h('p', { class: 'notice-text', attrs: { id: 'forms-saved', role: 'status' } });
  const fill = () => {
    const own = all[scope.input.value.trim()];
    questions.set(own?.survey ?? []);
    fields.set(own?.fields ?? []);
    remove.hidden = !own;
    say(saved, null);
  };
  scope.input.addEventListener('change', fill);
  const form = h(
    'form',
    { class: 'settings-form', attrs: { id: 'forms-form', novalidate: true } },
    scope.wrap,
    h('h3', { class: 'subsection-title', text: 'forms.questions' }),
    questions.el,
    h('h3', { class: 'subsection-title', text: 'forms.fields' }),
    fields.el,
    h('div', { class: 'row-action' }, save, remove),
    saved,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = scope.input.value.trim() || 'default';
    const forms = { survey: questions.read(), fields: fields.read() };
    busy(save, async () => {
      say(status, null);
      say(saved, null);
      try {
        await call('PUT', `/api/call-forms/${encodeURIComponent(name)}`, forms);
        all[name] = forms;
        remove.hidden = false;
        setText(saved, 'settings.saved');
      } catch (e) {
        showApiError(status, e);
      }
    });
  });
  remove.addEventListener('click', () =>
    busy(remove, async () => {
      try {
        await call('DELETE', `/api/call-forms/${encodeURIComponent(scope.input.value.trim())}`);
        await reload();
      } catch (e) {
        showApiError(status, e);
      }
    }),
  );
  fill();
  return form;
}

/**
 * The rows of questions (or fields): add, change, remove.
 * @param {string} prefix `survey` or `fields`
 * @param {string[]} kinds
 * @param {number} max
 */
function itemList(prefix, kinds, max) {
  const rows = h('div', { class: 'form-items', attrs: { id: `${prefix}-items` } });
  const add = h('button', { class: 'button small', attrs: { type: 'button', id: `${prefix}-add` }, text: prefix === 'survey' ? 'forms.add_question' : 'forms.add_field' });
  let n = 0;
  /** @type {Array<{row: HTMLElement, read: () => Item}>} */
  let items = [];

  /** @param {Item} item */
  function addRow(item) {
    const i = n++;
    const id = h('input', { class: 'item-id', attrs: { 'aria-label': 'id', maxlength: 32, placeholder: 'id', value: item.id, name: `${prefix}-${i}-id` } });
    const kind = h('select', { class: 'item-kind', attrs: { name: `${prefix}-${i}-kind` } }, ...kinds.map((k) => h('option', { attrs: { value: k }, text: `forms.kind_${k}` })));
    kind.value = item.kind;
    const label = h('input', { class: 'item-label', attrs: { maxlength: 200, name: `${prefix}-${i}-label`, value: item.label }, t: { placeholder: 'forms.label', 'aria-label': 'forms.label' } });
    const choices = h('input', { class: 'item-choices', attrs: { name: `${prefix}-${i}-choices`, value: (item.choices ?? []).join(', ') }, t: { placeholder: 'forms.choices', 'aria-label': 'forms.choices' } });
    const required = h('input', { attrs: { type: 'checkbox', name: `${prefix}-${i}-required` } });
    required.checked = Boolean(item.required);
    const drop = h('button', { class: 'button ghost small', attrs: { type: 'button' }, text: 'forms.remove_item' });
    const showChoices = () => {
      choices.hidden = kind.value !== 'choice';
    };
    kind.addEventListener('change', showChoices);
    showChoices();
    const row = h('div', { class: 'form-item', data: { item: item.id } }, id, kind, label, choices, h('label', { class: 'item-required' }, required, h('span', { text: 'forms.required' })), drop);
    const entry = {
      row,
      read: () => {
        /** @type {Item} */
        const out = { id: id.value.trim(), kind: kind.value, label: label.value.trim(), required: required.checked };
        if (kind.value === 'choice') out.choices = choices.value.split(',').map((c) => c.trim()).filter(Boolean);
        return out;
      },
    };
    drop.addEventListener('click', () => {
      items = items.filter((e) => e !== entry);
      row.remove();
      add.disabled = items.length >= max;
    });
    items.push(entry);
    rows.append(row);
    add.disabled = items.length >= max;
  }

  add.addEventListener('click', () => {
    addRow({ id: '', kind: kinds[0], label: '' });
    /** @type {HTMLInputElement | null} */ (rows.lastElementChild?.querySelector('.item-id') ?? null)?.focus();
  });
  return {
    el: h('div', {}, rows, add),
    /** @param {Item[]} list */
    set(list) {
      clear(rows);
      items = [];
      for (const item of list) addRow(item);
      add.disabled = items.length >= max;
    },
    /** @returns {Item[]} */
    read: () => items.map((e) => e.read()),
  };
}
