// The survey after a call (docs/calls.md, "Survey and fields"): when the call's app has one,
// the participant who left answers it with the token their media server gave them
// (`call_info`); no login. Ratings are five buttons, choices radio buttons, text a text area.

import { ApiError } from '../api.js';
import { t } from '../i18n.js';
import { clear, h } from './dom.js';
import { busy, say } from './forms.js';

/**
 * @typedef {{id: string, kind: 'rating' | 'choice' | 'text', label: string,
 *   choices?: string[], required?: boolean}} Question
 */

/**
 * A request to the survey API (JSON both ways); throws ApiError on a refusal.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function ask(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: 'omit',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(String(data?.error ?? `http_${response.status}`), String(data?.message ?? ''), response.status);
  return data;
}

/**
 * One question's inputs.
 * @param {Question} q
 */
function questionInput(q) {
  const name = `survey-${q.id}`;
  const legend = h('legend', { class: 'field-label', raw: q.required ? `${q.label} *` : q.label });
  if (q.kind === 'text') {
    return h(
      'fieldset',
      { class: 'survey-question', data: { question: q.id } },
      legend,
      h('textarea', { attrs: { name, maxlength: 2000, rows: 3, 'aria-label': q.label } }),
    );
  }
  const options = q.kind === 'rating' ? ['1', '2', '3', '4', '5'] : (q.choices ?? []);
  return h(
    'fieldset',
    { class: `survey-question survey-${q.kind}`, data: { question: q.id } },
    legend,
    h(
      'div',
      { class: 'survey-options' },
      ...options.map((value) =>
        h('label', { class: 'survey-option' }, h('input', { attrs: { type: 'radio', name, value } }), h('span', { raw: q.kind === 'rating' ? `${value} ★` : value })),
      ),
    ),
  );
}

/**
 * Shows the survey of `callId` in `where` when there is one to answer; whether it did.
 * @param {HTMLElement} where
 * @param {{callId: string, token: string, participant: string}} info
 * @param {() => void} [onAnswered] called once the answers are stored
 * @returns {Promise<boolean>}
 */
export async function offerSurvey(where, { callId, token, participant }, onAnswered = () => {}) {
  const base = `/api/calls/${encodeURIComponent(callId)}/survey`;
  /** @type {{survey: Question[], answered: boolean}} */
  let s;
  try {
    s = await ask('GET', `${base}?participant=${encodeURIComponent(participant)}&token=${encodeURIComponent(token)}`);
  } catch (e) {
    console.warn('orbita: no survey', e);
    return false;
  }
  if (!s.survey.length || s.answered) return false;
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'survey-error' } });
  const send = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'survey-send' }, text: 'survey.send' });
  const form = h('form', { class: 'survey-form', attrs: { id: 'survey', novalidate: true } }, h('h2', { class: 'section-title', text: 'survey.title' }), ...s.survey.map(questionInput), error, send);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    /** @type {Record<string, string>} */
    const answers = {};
    for (const q of s.survey) {
      const input = /** @type {HTMLInputElement | HTMLTextAreaElement | null} */ (
        form.querySelector(`[name="survey-${q.id}"]:checked`) ?? form.querySelector(`textarea[name="survey-${q.id}"]`)
      );
      const value = input?.value.trim() ?? '';
      if (value) answers[q.id] = value;
    }
    const missing = s.survey.find((q) => q.required && !answers[q.id]);
    if (missing) {
      error.textContent = t('survey.needs', { question: missing.label });
      return;
    }
    busy(send, async () => {
      say(error, null);
      try {
        await ask('POST', base, { participant, token, answers });
        clear(form);
        form.append(h('p', { class: 'notice-text', attrs: { id: 'survey-thanks' }, text: 'survey.thanks' }));
        onAnswered();
      } catch (e) {
        error.textContent = e instanceof ApiError && e.message ? e.message : t('error.generic');
      }
    });
  });
  where.append(form);
  return true;
}
