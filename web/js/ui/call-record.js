// One call's page (/calls?id=<call>): when and how long, its people with their browsers and
// devices, a timeline of who was there when (and when each chat line was written), the chat,
// and its recordings. Read from GET /api/calls/{id} (docs/calls.md).

import { call } from '../accounts.js';
import { ApiError } from '../api.js';
import { has, t } from '../i18n.js';
import { formatLength, formatMoment } from './calls.js';
import { h } from './dom.js';
import { busy, say, showApiError } from './forms.js';
import { section } from './page.js';

/**
 * @typedef {{id: string, name: string, role: string, account_id: number | null,
 *   user_agent: string, browser: string, os: string, device: string,
 *   consent: {id: string, text: string | null} | null, camera: string, microphone: string}} Person
 * @typedef {{participant: string, joined_ms: number, left_ms: number | null}} Stay
 * @typedef {{seq: number, participant: string, sent_ms: number, text: string}} Line
 * @typedef {{id: string, code: string, rc_name: string, owner_name: string | null,
 *   started_ms: number, ended_ms: number | null, end_reason: string | null,
 *   duration_ms: number | null, participants: Person[], presence: Stay[], chat: Line[],
 *   recordings: {id: string, started_ms: number}[], quality: QualityPoint[],
 *   forms: {survey: FormItem[], fields: FormItem[]}, fields: Record<string, string>,
 *   survey: {participant: string, question: string, value: string, rating: number | null}[]}} CallRecord
 * @typedef {{id: string, kind: string, label: string, choices?: string[], required?: boolean}} FormItem
 * @typedef {import('../call-quality.js').QualityReport & {participant: string,
 *   source: 'browser' | 'server', at_ms: number}} QualityPoint
 */

/** The charts of a person's quality: what each draws, from which figures. */
const CHARTS = /** @type {const} */ ([
  { metric: 'bitrate', title: 'calls.chart_bitrate', lines: [['out_kbps', 'calls.line_sent'], ['in_kbps', 'calls.line_received']] },
  { metric: 'loss', title: 'calls.chart_loss', lines: [['loss_pct', 'calls.line_loss']] },
  { metric: 'rtt', title: 'calls.chart_rtt', lines: [['rtt_ms', 'calls.line_rtt'], ['jitter_ms', 'calls.line_jitter']] },
  { metric: 'fps', title: 'calls.chart_fps', lines: [['fps_out', 'calls.line_sent'], ['fps_in', 'calls.line_received']] },
]);

/**
 * A small time chart: a line per figure and source (the server's dashed), time across.
 * @param {string} metric
 * @param {string} title
 * @param {{label: string, source: string, field: string, points: [number, number][]}[]} series
 * @param {number} start
 * @param {number} end
 */
function lineChart(metric, title, series, start, end) {
  const w = 320;
  const hgt = 150;
  const pad = { l: 40, r: 8, t: 8, b: 20 };
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.1;
  const span = Math.max(1000, end - start);
  const x = (/** @type {number} */ ms) => pad.l + ((ms - start) / span) * (w - pad.l - pad.r);
  const y = (/** @type {number} */ v) => hgt - pad.b - (v / max) * (hgt - pad.t - pad.b);
  const lines = series
    .filter((s) => s.points.length)
    .map((s) =>
      svg(
        'polyline',
        {
          class: `chart-line line-${series.findIndex((x) => x.field === s.field) % 2} source-${s.source}`,
          points: s.points.map(([t_, v]) => `${x(t_).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
          'data-source': s.source,
          'data-field': s.field,
          'data-points': s.points.length,
        },
        svg('title', {}, `${s.label} (${t(`calls.source_${s.source}`)})`),
      ),
    );
  const label = (/** @type {number} */ v) => (v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10));
  const axis = [
    svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'timeline-axis' }, label(max)),
    svg('text', { x: pad.l - 4, y: hgt - pad.b, 'text-anchor': 'end', class: 'timeline-axis' }, '0'),
    svg('text', { x: pad.l, y: hgt - 4, class: 'timeline-axis' }, '0:00'),
    svg('text', { x: w - pad.r, y: hgt - 4, 'text-anchor': 'end', class: 'timeline-axis' }, formatLength(span)),
    svg('line', { x1: pad.l, y1: hgt - pad.b, x2: w - pad.r, y2: hgt - pad.b, class: 'chart-axis' }),
  ];
  // A key for each figure drawn (its colour; the source is told by solid or dashed).
  const drawn = [...new Map(series.filter((s) => s.points.length).map((s) => [s.field, s.label])).entries()];
  const key = h(
    'div',
    { class: 'chart-legend' },
    ...drawn.map(([field, text]) =>
      h('span', { class: 'chart-key' }, h('span', { class: `chart-swatch line-${series.findIndex((s) => s.field === field) % 2}` }), text),
    ),
  );
  return h(
    'figure',
    { class: 'quality-chart', data: { metric } },
    h('figcaption', { text: title }),
    svg('svg', { viewBox: `0 0 ${w} ${hgt}`, role: 'img', 'aria-label': t(title) }, ...axis, ...lines),
    key,
  );
}

/**
 * A person's quality charts: from their browser (solid) and the server (dashed).
 * @param {CallRecord} r
 * @param {Person} p
 * @param {number} end
 */
function qualityCharts(r, p, end) {
  const points = r.quality.filter((q) => q.participant === p.id);
  const charts = CHARTS.map(({ metric, title, lines }) => {
    /** @type {{label: string, source: string, field: string, points: [number, number][]}[]} */
    const series = [];
    for (const source of ['browser', 'server']) {
      for (const [field, label] of lines) {
        const pts = points
          .filter((q) => q.source === source && typeof q[/** @type {keyof QualityPoint} */ (field)] === 'number')
          .map((q) => /** @type {[number, number]} */ ([q.at_ms, Number(q[/** @type {keyof QualityPoint} */ (field)])]));
        series.push({ label: t(label), source, field, points: pts });
      }
    }
    return lineChart(metric, title, series, r.started_ms, end);
  });
  return h(
    'div',
    { class: 'quality-person', data: { participant: p.id } },
    h('h3', { class: 'quality-who', raw: p.name }),
    points.length ? h('div', { class: 'quality-charts' }, ...charts) : h('p', { class: 'notice-text', text: 'calls.no_quality' }),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {...(Element | string)} children
 */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/**
 * Who was there when: a row a person, a bar a stay, a tick a chat line.
 * @param {CallRecord} r
 * @param {number} end the timeline's end (the call's, or now)
 */
function timeline(r, end) {
  const start = r.started_ms;
  const span = Math.max(1000, end - start);
  const label = 160;
  const width = 1000;
  const rowH = 26;
  const x = (/** @type {number} */ ms) => label + ((Math.min(Math.max(ms, start), end) - start) / span) * (width - label - 10);
  const rows = r.participants.map((p, i) => {
    const y = 20 + i * rowH;
    const bars = r.presence
      .filter((s) => s.participant === p.id)
      .map((s) => {
        const x0 = x(s.joined_ms);
        const x1 = Math.max(x0 + 2, x(s.left_ms ?? end));
        const bar = svg('rect', { class: `timeline-stay role-${p.role}`, x: x0, y, width: x1 - x0, height: rowH - 8, rx: 3 });
        bar.append(svg('title', {}, `${p.name}: ${formatMoment(s.joined_ms)} – ${s.left_ms ? formatMoment(s.left_ms) : t('calls.going_on')}`));
        return bar;
      });
    const ticks = r.chat
      .filter((l) => l.participant === p.id)
      .map((l) => svg('rect', { class: 'timeline-chat', x: x(l.sent_ms) - 1, y: y - 3, width: 2, height: rowH - 2 }));
    return svg('g', { class: 'timeline-row', 'data-participant': p.id }, svg('text', { x: 4, y: y + rowH / 2, class: 'timeline-name' }, p.name), ...bars, ...ticks);
  });
  const height = 30 + r.participants.length * rowH;
  const axis = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    svg('text', { x: label + f * (width - label - 10), y: height - 4, class: 'timeline-axis', 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, formatLength(f * span)),
  );
  return svg('svg', { class: 'call-timeline', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': t('calls.timeline'), id: 'call-timeline' }, ...rows, ...axis);
}

/**
 * The time a person spent in the call, all their stays together.
 * @param {CallRecord} r
 * @param {string} id
 * @param {number} end
 */
function timeIn(r, id, end) {
  return r.presence.filter((s) => s.participant === id).reduce((sum, s) => sum + ((s.left_ms ?? end) - s.joined_ms), 0);
}

/**
 * The call's fields as a form (its agent, supervisors and administrators fill them in).
 * @param {CallRecord} r
 */
function fieldsForm(r) {
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'call-fields-error' } });
  const saved = h('p', { class: 'notice-text', attrs: { id: 'call-fields-saved', role: 'status' } });
  const inputs = r.forms.fields.map((f) => {
    const id = `field-${f.id}`;
    const attrs = { id, name: f.id, required: Boolean(f.required), value: r.fields[f.id] ?? '' };
    const input =
      f.kind === 'choice'
        ? h('select', { attrs: { id, name: f.id } }, h('option', { attrs: { value: '' }, raw: '—' }), ...(f.choices ?? []).map((c) => h('option', { attrs: { value: c, selected: r.fields[f.id] === c }, raw: c })))
        : h('input', { attrs: { ...attrs, type: f.kind === 'number' ? 'number' : f.kind === 'date' ? 'date' : 'text', maxlength: 2000, step: f.kind === 'number' ? 'any' : undefined } });
    return h('div', { class: 'field' }, h('label', { class: 'field-label', attrs: { for: id }, raw: f.required ? `${f.label} *` : f.label }), input);
  });
  const save = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'call-fields-save' }, text: 'calls.fields_save' });
  const form = h('form', { class: 'inline-form', attrs: { id: 'call-fields', novalidate: true } }, ...inputs, save);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    /** @type {Record<string, string>} */
    const values = {};
    for (const f of r.forms.fields) {
      const input = /** @type {HTMLInputElement | HTMLSelectElement} */ (form.elements.namedItem(f.id));
      if (input.value.trim()) values[f.id] = input.value.trim();
    }
    busy(save, async () => {
      say(error, null);
      say(saved, null);
      try {
        await call('PUT', `/api/calls/${encodeURIComponent(r.id)}/fields`, { values });
        say(saved, 'calls.fields_saved');
      } catch (e) {
        showApiError(error, e);
      }
    });
  });
  return h('div', {}, form, error, saved);
}

/**
 * The survey's answers, by person.
 * @param {CallRecord} r
 * @param {Map<string, string>} names
 */
function surveyAnswers(r, names) {
  if (!r.survey.length) return h('p', { class: 'notice-text', attrs: { id: 'call-survey' }, text: r.forms.survey.length ? 'calls.no_answers' : 'calls.no_survey' });
  const label = (/** @type {string} */ q) => r.forms.survey.find((x) => x.id === q)?.label ?? q;
  return h(
    'dl',
    { class: 'call-facts', attrs: { id: 'call-survey' } },
    ...r.survey.map((a) =>
      h('div', { class: 'call-fact survey-answer', data: { question: a.question } }, h('dt', { raw: `${names.get(a.participant) ?? a.participant}: ${label(a.question)}` }), h('dd', { raw: a.rating ? `${a.rating} ★` : a.value })),
    ),
  );
}

/**
 * Shows call `id` in `main`.
 * @param {HTMLElement} main
 * @param {string} id
 */
export async function renderCallRecord(main, id) {
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'call-error' } });
  main.append(h('p', {}, h('a', { attrs: { href: '/calls', id: 'call-back' }, text: 'calls.back' })), error);
  /** @type {CallRecord} */
  let r;
  try {
    r = await call('GET', `/api/calls/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) error.textContent = t('calls.not_found');
    else showApiError(error, e);
    return;
  }
  const end = r.ended_ms ?? Date.now();
  const names = new Map(r.participants.map((p) => [p.id, p.name]));
  const fact = (/** @type {string} */ key, /** @type {string} */ value, /** @type {string} */ cls) =>
    h('div', { class: `call-fact ${cls}` }, h('dt', { text: key }), h('dd', { raw: value }));
  const facts = h(
    'dl',
    { class: 'call-facts', attrs: { id: 'call-facts' } },
    fact('calls.col_when', formatMoment(r.started_ms), 'fact-start'),
    fact('calls.col_length', r.duration_ms === null ? t('calls.going_on') : formatLength(r.duration_ms), 'fact-length'),
    fact('calls.col_agent', r.owner_name ?? '—', 'fact-agent'),
    fact('calls.code', r.code, 'fact-code'),
    r.end_reason ? fact('calls.end_reason', has(`calls.reason.${r.end_reason}`) ? t(`calls.reason.${r.end_reason}`) : r.end_reason, 'fact-reason') : null,
  );
  const head = (/** @type {string} */ key) => h('th', { attrs: { scope: 'col' }, text: key });
  const people = h(
    'table',
    { class: 'calls-table', attrs: { id: 'call-people' } },
    h('thead', {}, h('tr', {}, head('calls.person'), head('calls.role'), head('calls.browser'), head('calls.os'), head('calls.device'), head('calls.time_in'), head('calls.consent'))),
    h(
      'tbody',
      {},
      ...r.participants.map((p) =>
        h(
          'tr',
          { class: 'call-person', data: { id: p.id, role: p.role } },
          h('td', { raw: p.name }),
          h('td', { text: `calls.role_${p.role}` }),
          h('td', { class: 'person-browser', raw: p.browser || '—', attrs: { title: p.user_agent } }),
          h('td', { class: 'person-os', raw: p.os || '—' }),
          h(
            'td',
            { class: 'person-devices' },
            h('span', { class: 'person-device', text: p.device ? `calls.device_${p.device}` : undefined, raw: p.device ? undefined : '—' }),
            // The camera and microphone their browser named.
            p.camera ? h('span', { class: 'person-media', attrs: { title: p.camera }, raw: `📷 ${p.camera}` }) : null,
            p.microphone ? h('span', { class: 'person-media', attrs: { title: p.microphone }, raw: `🎤 ${p.microphone}` }) : null,
          ),
          h('td', { raw: formatLength(timeIn(r, p.id, end)) }),
          // The text they accepted before joining, as they read it.
          h(
            'td',
            { class: 'person-consent' },
            p.consent ? h('details', {}, h('summary', { text: 'calls.consent_accepted' }), h('p', { class: 'consent-text', raw: p.consent.text ?? '' })) : '—',
          ),
        ),
      ),
    ),
  );
  const chat = r.chat.length
    ? h(
        'ol',
        { class: 'call-chat', attrs: { id: 'call-chat' } },
        ...r.chat.map((l) =>
          h(
            'li',
            { class: 'call-chat-line' },
            h('span', { class: 'chat-at', raw: formatLength(l.sent_ms - r.started_ms) }),
            h('strong', { class: 'chat-who', raw: names.get(l.participant) ?? '?' }),
            h('span', { class: 'chat-text', raw: l.text }),
          ),
        ),
      )
    : h('p', { class: 'notice-text', attrs: { id: 'call-chat' }, text: 'calls.no_chat' });
  const recordings = r.recordings.length
    ? h(
        'ul',
        { class: 'call-recordings', attrs: { id: 'call-recordings' } },
        ...r.recordings.map((rec) => h('li', {}, h('a', { attrs: { href: '/recordings' }, raw: rec.id }), ' ', h('span', { class: 'plan-meta', raw: formatMoment(rec.started_ms) }))),
      )
    : h('p', { class: 'notice-text', attrs: { id: 'call-recordings' }, text: 'calls.no_recordings' });
  main.append(
    section('call-summary', 'calls.summary', facts),
    section('call-who', 'calls.people', h('div', { class: 'table-scroll' }, people), timeline(r, end)),
    section(
      'call-quality',
      'calls.quality',
      h('p', { class: 'field-hint', text: 'calls.quality_hint' }),
      ...r.participants.map((p) => qualityCharts(r, p, end)),
    ),
    section('call-survey-section', 'calls.survey', surveyAnswers(r, names)),
    r.forms.fields.length ? section('call-fields-section', 'calls.fields', fieldsForm(r)) : null,
    section('call-chat-section', 'calls.chat', chat),
    section('call-recordings-section', 'calls.recordings', recordings),
  );
  main.dataset.call = r.id;
}
