// A list of plans (the planner's own on /plan, everyone's on /plans): when, which app, the
// code and join link, the customer, the owner; each plan can be moved (a new date, time and
// length) or cancelled (asked twice).

import { cancelPlan, listPlans, movePlan } from '../accounts.js';
import { language } from '../i18n.js';
import { absoluteLink, browserTimeZone, formatInstant, formatTime, localParts } from '../plan-time.js';
import { setAppName } from './apps.js';
import { clear, h } from './dom.js';
import { busy, field, say, showApiError } from './forms.js';

/** @typedef {import('../accounts.js').Plan} Plan */

/** Plans listed: from a day ago (those running now) to a year ahead. */
const PAST_MS = 24 * 3600 * 1000;
const AHEAD_MS = 366 * 24 * 3600 * 1000;
/** Lengths offered when planning or moving, in minutes. */
export const DURATIONS = [15, 30, 45, 60, 90, 120, 180, 240];

/**
 * The options of a length select, at most `max` minutes (null: no limit).
 * @param {number | null | undefined} max
 * @param {number} [keep] a length to offer even above the limit (a plan's current one)
 */
export function durationOptions(max, keep) {
  const allowed = DURATIONS.filter((m) => max === null || max === undefined || m <= max);
  if (keep && !allowed.includes(keep)) allowed.push(keep);
  if (!allowed.length && max) allowed.push(max);
  return allowed.sort((a, b) => a - b).map((m) => ({ value: String(m), text: 'plan.minutes', args: { count: m } }));
}

export class PlanList {
  /**
   * @param {{scope: 'mine' | 'all', showOwner: boolean, maxMinutes?: number | null, onChange?: () => void}} options
   */
  constructor({ scope, showOwner, maxMinutes = null, onChange }) {
    this.scope = scope;
    this.showOwner = showOwner;
    this.maxMinutes = maxMinutes;
    this.onChange = onChange ?? (() => {});
    this.tz = browserTimeZone();
    this.error = h('p', { class: 'form-error', attrs: { role: 'alert', id: `plans-${scope}-error` } });
    this.list = h('div', { class: 'plan-list', attrs: { id: `plans-${scope}` } });
    this.el = h('div', { class: 'plan-list-box' }, this.error, this.list);
    /** @type {Plan[]} */
    this.plans = [];
    // Dates follow the language; a move being typed is left alone.
    window.addEventListener('orbita:language', () => {
      if (!this.list.querySelector('.plan-edit:not([hidden])')) this.render();
    });
  }

  async load() {
    const now = Date.now();
    try {
      const { plans } = await listPlans(this.scope, { from: new Date(now - PAST_MS).toISOString(), to: new Date(now + AHEAD_MS).toISOString() });
      say(this.error, null);
      this.plans = [...plans].sort((a, b) => Date.parse(a.start_utc) - Date.parse(b.start_utc));
      this.render();
    } catch (e) {
      showApiError(this.error, e);
    }
  }

  /** Show the plans last loaded (again after a language switch: dates are in the page's language). */
  render() {
    clear(this.list);
    if (!this.plans.length) this.list.append(h('p', { class: 'notice-text empty', text: 'plans.none' }));
    for (const plan of this.plans) this.list.append(this.row(plan));
  }

  /** @param {Plan} plan */
  row(plan) {
    const lang = language();
    const link = absoluteLink(plan.link || `/r/${plan.code}`, location.origin);
    const error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    const editBox = h('div', { class: 'plan-edit', attrs: { hidden: true } });
    const move = h('button', { class: 'button small move-plan', attrs: { type: 'button', 'aria-expanded': 'false' }, text: 'plans.move' });
    const cancel = h('button', { class: 'button small danger cancel-plan', attrs: { type: 'button' }, text: 'plans.cancel' });
    const confirm = h('div', { class: 'plan-confirm', attrs: { hidden: true, role: 'group' } });
    const customer = [plan.customer_name, plan.customer_phone, plan.customer_email].filter(Boolean).join(' · ');
    const row = h(
      'article',
      { class: 'plan-row', data: { code: plan.code, started: String(Boolean(plan.started)) }, attrs: { 'aria-label': plan.code } },
      h(
        'div',
        { class: 'plan-when' },
        h('strong', { class: 'plan-start', raw: `${formatInstant(plan.start_utc, this.tz, lang)} – ${formatTime(plan.end_utc, this.tz, lang)}` }),
        plan.tz && plan.tz !== this.tz ? h('span', { class: 'plan-meta', text: 'plans.local_there', args: { time: plan.start_local, tz: plan.tz } }) : null,
      ),
      h(
        'div',
        { class: 'plan-what' },
        setAppName(h('span', { class: 'plan-app' }), plan.rc_name),
        h('span', { class: 'plan-meta', text: 'plan.minutes', args: { count: plan.duration_minutes } }),
        h('span', { class: 'plan-code', text: 'plans.code', args: { code: plan.code } }),
        h('a', { class: 'plan-link', attrs: { href: link }, raw: link }),
      ),
      customer || plan.note
        ? h(
            'div',
            { class: 'plan-customer' },
            customer ? h('span', { class: 'plan-customer-who', text: 'plans.customer', args: { who: customer } }) : null,
            plan.note ? h('span', { class: 'plan-note', raw: plan.note }) : null,
          )
        : null,
      this.showOwner && plan.owner
        ? h('div', { class: 'plan-owner', text: 'plans.owner', args: { name: plan.owner.name || plan.owner.email, email: plan.owner.email } })
        : null,
      // A running session can no longer be moved or cancelled.
      plan.started ? h('p', { class: 'plan-meta plan-started', text: 'plans.started' }) : h('div', { class: 'row-action' }, move, cancel),
      confirm,
      editBox,
      error,
    );
    move.addEventListener('click', () => {
      editBox.hidden = !editBox.hidden;
      move.setAttribute('aria-expanded', String(!editBox.hidden));
      if (!editBox.hidden && !editBox.firstChild) editBox.append(this.moveForm(plan, error));
      /** @type {HTMLInputElement | null} */ (editBox.querySelector('input'))?.focus();
    });
    cancel.addEventListener('click', () => {
      clear(confirm);
      const yes = h('button', { class: 'button small danger confirm-cancel', attrs: { type: 'button' }, text: 'plans.cancel_yes' });
      const no = h('button', { class: 'button small ghost', attrs: { type: 'button' }, text: 'plans.cancel_no' });
      confirm.append(h('span', { class: 'plan-meta', text: 'plans.cancel_confirm', args: { code: plan.code } }), yes, no);
      confirm.hidden = false;
      cancel.hidden = true;
      no.addEventListener('click', () => {
        confirm.hidden = true;
        cancel.hidden = false;
        cancel.focus();
      });
      yes.addEventListener('click', () =>
        busy(yes, async () => {
          say(error, null);
          try {
            await cancelPlan(plan.code);
            await this.load();
            this.onChange();
          } catch (e) {
            showApiError(error, e);
          }
        }),
      );
      yes.focus();
    });
    return row;
  }

  /**
   * The move form of a plan: date and time in the browser's time zone, and the length.
   * @param {Plan} plan
   * @param {HTMLElement} error
   */
  moveForm(plan, error) {
    const id = `move-${plan.code}`;
    const at = localParts(plan.start_utc, this.tz);
    const date = field({ id: `${id}-date`, label: 'plan.date', type: 'date', attrs: { required: true, value: at.date } });
    const time = field({ id: `${id}-time`, label: 'plans.time', type: 'time', attrs: { required: true, value: at.time, step: 60 } });
    const length = field({
      id: `${id}-duration`,
      label: 'plan.duration',
      type: 'select',
      options: durationOptions(this.maxMinutes, plan.duration_minutes),
    });
    const select = /** @type {HTMLSelectElement} */ (length.input);
    select.value = String(plan.duration_minutes);
    const save = h('button', { class: 'button primary small', attrs: { type: 'submit' }, text: 'plans.move_save' });
    const form = h(
      'form',
      { class: 'inline-form', attrs: { novalidate: true } },
      date.wrap,
      time.wrap,
      length.wrap,
      h('p', { class: 'field-hint', text: 'plan.tz_note', args: { tz: this.tz } }),
      save,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      say(error, null);
      date.invalid(/^\d{4}-\d{2}-\d{2}$/.test(date.input.value) ? null : 'plans.date_needed');
      time.invalid(/^\d{2}:\d{2}/.test(time.input.value) ? null : 'plans.time_needed');
      if (date.input.getAttribute('aria-invalid') || time.input.getAttribute('aria-invalid')) return;
      busy(save, async () => {
        try {
          await movePlan(plan.code, { date: date.input.value, time: time.input.value.slice(0, 5), tz: this.tz, duration_minutes: Number(select.value) });
          await this.load();
          this.onChange();
        } catch (e) {
          showApiError(error, e);
        }
      });
    });
    return form;
  }
}
