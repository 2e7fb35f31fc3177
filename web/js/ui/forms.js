// Form pieces of the account pages: labelled fields with their own error line, and showing
// an API failure in words (the server's message under it when it says more).

import { setText } from '../i18n.js';
import { passwordProblem } from '../validate.js';
import { explainApiError } from './api-errors.js';
import { clear, h } from './dom.js';

/**
 * @typedef {object} FieldOptions
 * @property {string} id
 * @property {string} label translation key
 * @property {string} [type] input type (default text); `textarea` and `select` make those
 * @property {string} [hint] translation key of a hint under the field
 * @property {Record<string, string | number | boolean | undefined | null>} [attrs]
 * @property {{value: string, text?: string, args?: Record<string, string | number>, raw?: string}[]} [options] for a select
 */

/**
 * A labelled field with a hint and an error line, both tied to the input by
 * `aria-describedby`.
 * @param {FieldOptions} options
 */
export function field({ id, label, type = 'text', hint, attrs = {}, options = [] }) {
  const errorId = `${id}-error`;
  const hintId = `${id}-hint`;
  const described = [hint ? hintId : '', errorId].filter(Boolean).join(' ');
  /** @type {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} */
  let input;
  if (type === 'textarea') {
    input = h('textarea', { attrs: { id, name: id, 'aria-describedby': described, ...attrs } });
  } else if (type === 'select') {
    input = h(
      'select',
      { attrs: { id, name: id, 'aria-describedby': described, ...attrs } },
      ...options.map((o) => h('option', { attrs: { value: o.value }, text: o.text, args: o.args, raw: o.raw })),
    );
  } else {
    input = h('input', { attrs: { id, name: id, type, 'aria-describedby': described, ...attrs } });
  }
  const error = h('p', { class: 'form-error field-error', attrs: { id: errorId, role: 'alert' } });
  const wrap = h(
    'div',
    { class: 'field' },
    h('label', { class: 'field-label', attrs: { for: id }, text: label }),
    input,
    hint ? h('p', { class: 'field-hint', attrs: { id: hintId }, text: hint }) : null,
    error,
  );
  return {
    wrap,
    input,
    error,
    /** Show a problem with this field (a translation key), or clear it with null. */
    invalid(/** @type {string | null} */ key, /** @type {Record<string, string | number>} */ args = {}) {
      if (key) {
        setText(error, key, args);
        input.setAttribute('aria-invalid', 'true');
      } else {
        error.textContent = '';
        delete error.dataset.i18n;
        input.removeAttribute('aria-invalid');
      }
    },
  };
}

/**
 * A new password and the same again (sign-up, the first-run setup, changing the password):
 * the fields, and their problems for {@link checkFields}.
 * @param {string} id the password input's id; the second one's is `${id}-again`
 * @param {{label?: string, againLabel?: string}} [labels] translation keys
 */
export function newPasswordFields(id, { label = 'signup.password', againLabel = 'signup.password_again' } = {}) {
  const password = field({
    id,
    label,
    type: 'password',
    hint: 'signup.password_hint',
    attrs: { autocomplete: 'new-password', required: true, minlength: 10, maxlength: 128 },
  });
  const again = field({ id: `${id}-again`, label: againLabel, type: 'password', attrs: { autocomplete: 'new-password', required: true } });
  return {
    password,
    again,
    /** @returns {[ReturnType<typeof field>, string | null][]} */
    problems: () => [
      [password, passwordProblem(password.input.value)],
      [again, again.input.value === password.input.value ? null : 'signup.passwords_differ'],
    ],
  };
}

/**
 * Shows each field's problem (a translation key) or clears it, and focuses the first field
 * with one. Whether there was none.
 * @param {[ReturnType<typeof field>, string | null][]} checks
 */
export function checkFields(checks) {
  for (const [f, problem] of checks) f.invalid(problem);
  const first = checks.find(([, problem]) => problem);
  first?.[0].input.focus();
  return !first;
}

/**
 * Show an API failure in an element: the explanation, and the server's words under it when
 * they say more.
 * @param {HTMLElement} el
 * @param {unknown} failure
 */
export function showApiError(el, failure) {
  const { key, args, detail } = explainApiError(failure);
  clear(el);
  delete el.dataset.i18n;
  el.append(h('span', { text: key, args }));
  if (detail) el.append(h('span', { class: 'error-detail', raw: detail }));
}

/**
 * Show a message (a translation key) in an element, or clear it (with anything in it).
 * @param {HTMLElement} el
 * @param {string | null} key
 * @param {Record<string, string | number>} [args]
 */
export function say(el, key, args) {
  if (key) setText(el, key, args);
  else {
    clear(el);
    delete el.dataset.i18n;
  }
}

/**
 * Run an action with a button disabled (and its label swapped) while it lasts.
 * @template T
 * @param {HTMLButtonElement} button
 * @param {() => Promise<T>} action
 * @returns {Promise<T>}
 */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}
