// The call history (/calls, agents, supervisors and administrators): the calls newest first,
// filtered (dates, agent, customer, length, recorded), a page at a time, and exported to CSV
// or Excel with the same filters. `/calls?id=<call>` shows one call (call-record.js). An agent
// sees their own calls; the server holds them to it (docs/calls.md).

import { call } from '../accounts.js';
import { language } from '../i18n.js';
import { PLANNERS } from './account.js';
import { renderCallRecord } from './call-record.js';
import { clear, h } from './dom.js';
import { busy, field, say, showApiError } from './forms.js';
import { accountPage, section } from './page.js';

/**
 * @typedef {{id: string, code: string, rc_name: string, owner_id: number | null,
 *   owner_name: string | null, started_ms: number, ended_ms: number | null,
 *   duration_ms: number | null, participants: number, customers: string[],
 *   recordings: number}} CallRow
 */

/** Calls a page. */
const PAGE = 50;

/**
 * A length for people: "1:05:09", "4:07".
 * @param {number} ms
 */
export function formatLength(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

/**
 * A moment for people, in the page's language and the browser's time zone.
 * @param {number} ms
 */
export function formatMoment(ms) {
  return new Intl.DateTimeFormat(language(), { dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23' }).format(new Date(ms));
}

/**
 * Epoch ms of a date input's day at the browser's midnight (`next`: the next day's).
 * @param {string} value
 * @param {boolean} next
 */
function midnight(value, next) {
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + (next ? 1 : 0)).getTime();
}

/** The filter form and what it asks for. */
class Filters {
  /** @param {boolean} overseer whether the agent filter is offered */
  constructor(overseer) {
    this.from = field({ id: 'calls-from', label: 'calls.from', type: 'date' });
    this.to = field({ id: 'calls-to', label: 'calls.to', type: 'date' });
    this.agent = field({ id: 'calls-agent', label: 'calls.agent', type: 'select', options: [{ value: '', text: 'calls.anyone' }] });
    this.agent.wrap.hidden = !overseer;
    this.customer = field({ id: 'calls-customer', label: 'calls.customer', attrs: { maxlength: 100, autocomplete: 'off' } });
    this.min = field({ id: 'calls-min', label: 'calls.min_minutes', type: 'number', attrs: { min: 0, step: 1, inputmode: 'numeric' } });
    this.max = field({ id: 'calls-max', label: 'calls.max_minutes', type: 'number', attrs: { min: 0, step: 1, inputmode: 'numeric' } });
    this.recorded = field({
      id: 'calls-recorded',
      label: 'calls.recorded',
      type: 'select',
      options: [
        { value: '', text: 'calls.recorded_any' },
        { value: 'yes', text: 'calls.recorded_yes' },
        { value: 'no', text: 'calls.recorded_no' },
      ],
    });
    this.apply = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'calls-apply' }, text: 'calls.apply' });
    this.form = h(
      'form',
      { class: 'inline-form calls-filters', attrs: { id: 'calls-filters', novalidate: true } },
      this.from.wrap,
      this.to.wrap,
      this.agent.wrap,
      this.customer.wrap,
      this.min.wrap,
      this.max.wrap,
      this.recorded.wrap,
      this.apply,
    );
  }

  /** @param {{id: number, name: string}[]} agents */
  setAgents(agents) {
    for (const a of agents) this.agent.input.append(h('option', { attrs: { value: String(a.id) }, raw: a.name }));
  }

  /** The query the form asks for, or null (and the fields say why) when a value is wrong. */
  query() {
    const q = new URLSearchParams();
    const from = this.from.input.value;
    const to = this.to.input.value;
    this.to.invalid(from && to && to < from ? 'calls.to_before_from' : null);
    if (from) q.set('from', String(midnight(from, false)));
    if (to) q.set('to', String(midnight(to, true)));
    if (this.agent.input.value) q.set('agent', this.agent.input.value);
    const customer = this.customer.input.value.trim();
    if (customer) q.set('customer', customer);
    const minutes = (/** @type {{input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, invalid: (k: string | null) => void}} */ f) => {
      const v = f.input.value.trim();
      const ok = v === '' || /^\d{1,6}$/.test(v);
      f.invalid(ok ? null : 'calls.whole_minutes');
      return ok && v !== '' ? String(Number(v) * 60) : null;
    };
    const min = minutes(this.min);
    const max = minutes(this.max);
    if (min !== null) q.set('min_duration_s', min);
    if (max !== null) q.set('max_duration_s', max);
    if (min !== null && max !== null && Number(max) < Number(min)) this.max.invalid('calls.max_below_min');
    if (this.recorded.input.value) q.set('recorded', this.recorded.input.value);
    return this.form.querySelector('[aria-invalid="true"]') ? null : q;
  }
}

/**
 * One call's row.
 * @param {CallRow} c
 */
function row(c) {
  const open = `/calls?id=${encodeURIComponent(c.id)}`;
  return h(
    'tr',
    { class: 'call-row', data: { id: c.id } },
    h('td', { class: 'call-when' }, h('a', { attrs: { href: open }, raw: formatMoment(c.started_ms) })),
    h('td', { class: 'call-length' }, c.duration_ms === null ? h('span', { class: 'call-live', text: 'calls.going_on' }) : formatLength(c.duration_ms)),
    h('td', { class: 'call-agent', raw: c.owner_name ?? '—' }),
    h('td', { class: 'call-customers', raw: c.customers.join(', ') || '—' }),
    h('td', { class: 'call-people', raw: String(c.participants) }),
    h('td', { class: 'call-recorded' }, c.recordings ? h('span', { class: 'badge', text: 'calls.has_recording' }) : null),
  );
}

/**
 * The history page, or one call's page when the address names it.
 * @param {HTMLElement} root
 */
export async function renderCalls(root) {
  const id = new URLSearchParams(location.search).get('id');
  const page = await accountPage(root, id ? 'calls.one_title' : 'calls.title', PLANNERS);
  if (!page) return;
  if (id) {
    await renderCallRecord(page.main, id);
    return;
  }
  const overseer = page.user.role !== 'agent';
  const filters = new Filters(overseer);
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'calls-error' } });
  const body = h('tbody', { attrs: { id: 'calls-body' } });
  const head = (/** @type {string} */ key) => h('th', { attrs: { scope: 'col' }, text: key });
  const table = h(
    'table',
    { class: 'calls-table', attrs: { id: 'calls-table' } },
    h('thead', {}, h('tr', {}, head('calls.col_when'), head('calls.col_length'), head('calls.col_agent'), head('calls.col_customers'), head('calls.col_people'), head('calls.col_recording'))),
    body,
  );
  const status = h('p', { class: 'notice-text', attrs: { id: 'calls-status', role: 'status' } });
  const more = h('button', { class: 'button', attrs: { type: 'button', id: 'calls-more', hidden: true }, text: 'calls.more' });
  const csv = h('a', { class: 'button small', attrs: { id: 'calls-export-csv', download: '' }, text: 'calls.export_csv' });
  const xlsx = h('a', { class: 'button small', attrs: { id: 'calls-export-xlsx', download: '' }, text: 'calls.export_xlsx' });
  const exports = h('div', { class: 'row-action calls-export' }, h('span', { class: 'plan-meta', text: 'calls.export' }), csv, xlsx);
  page.main.append(section('calls', 'calls.list', filters.form, exports, error, h('div', { class: 'table-scroll' }, table), status, more));

  /** @type {URLSearchParams} */
  let query = new URLSearchParams();
  /** @type {string | null} */
  let next = null;
  const setExports = () => {
    const q = query.toString();
    csv.setAttribute('href', `/api/calls/export.csv${q ? `?${q}` : ''}`);
    xlsx.setAttribute('href', `/api/calls/export.xlsx${q ? `?${q}` : ''}`);
  };
  /** @param {boolean} more_ */
  const load = async (more_) => {
    say(error, null);
    const q = new URLSearchParams(query);
    q.set('limit', String(PAGE));
    if (more_ && next) q.set('before', next);
    try {
      /** @type {{calls: CallRow[], next: string | null}} */
      const answer = await call('GET', `/api/calls?${q}`);
      if (!more_) clear(body);
      for (const c of answer.calls) body.append(row(c));
      next = answer.next;
      more.hidden = !next;
      say(status, body.firstChild ? null : 'calls.none');
      table.dataset.loaded = 'true';
    } catch (e) {
      showApiError(error, e);
    }
  };
  filters.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = filters.query();
    if (!q) return;
    query = q;
    setExports();
    busy(filters.apply, () => load(false));
  });
  more.addEventListener('click', () => busy(more, () => load(true)));
  setExports();
  if (overseer) {
    call('GET', '/api/calls/agents').then(
      (/** @type {{agents: {id: number, name: string}[]}} */ a) => filters.setAgents(a.agents),
      (e) => console.warn('orbita: no agents to filter by', e),
    );
  }
  await load(false);
}
