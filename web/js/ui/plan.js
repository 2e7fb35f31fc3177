// The planning page (/plan): choose the app, the day and the length; the day's slots in the
// browser's time zone (only free ones can be picked; the first is "now" on today's date);
// the customer's name, phone, e-mail and a note. Planned, it shows the code and the join
// link with a copy button. Below: the planner's own plans, to move or cancel.

import { createPlan, getSlots } from '../accounts.js';
import { PLAIN_ROOM_APP } from '../catalogue.js';
import { has, setText, t } from '../i18n.js';
import { Launcher } from '../launch.js';
import { absoluteLink, addDays, browserTimeZone, groupSlots, localParts, todayIn } from '../plan-time.js';
import { emailProblem, phoneProblem } from '../validate.js';
import { PLANNERS } from './account.js';
import { humanName, nameKey } from './apps.js';
import { clear, h } from './dom.js';
import { busy, field, say, showApiError } from './forms.js';
import { accountPage, section } from './page.js';
import { DURATIONS, PlanList, durationOptions } from './plan-list.js';

/** @typedef {import('../accounts.js').Slot} Slot */

const NOTE_MAX = 2000;
const CUSTOMER_NAME_MAX = 100;
/** How far ahead the date picker goes (the coordinator's horizon refuses beyond its own). */
const HORIZON_DAYS = 365;

/** @param {HTMLElement} root */
export async function renderPlan(root) {
  const page = await accountPage(root, 'plan.title', PLANNERS);
  if (!page) return;
  const { main, quota } = page;
  const tz = browserTimeZone();
  const today = todayIn(tz);
  const maxMinutes = quota?.max_minutes ?? null;

  const app = field({ id: 'plan-app', label: 'plan.app', type: 'select' });
  const appSelect = /** @type {HTMLSelectElement} */ (app.input);
  const date = field({ id: 'plan-date', label: 'plan.date', type: 'date', attrs: { required: true, value: today, min: today, max: addDays(today, HORIZON_DAYS) } });
  const options = durationOptions(maxMinutes);
  const duration = field({ id: 'plan-duration', label: 'plan.duration', type: 'select', options });
  const durationSelect = /** @type {HTMLSelectElement} */ (duration.input);
  durationSelect.value = options.some((o) => o.value === '30') ? '30' : (options[0]?.value ?? String(DURATIONS[0]));

  const slotStatus = h('p', { class: 'app-status', attrs: { role: 'status', id: 'slots-status' } });
  const slotError = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'slots-error' } });
  const slotList = h('div', { class: 'slot-groups', attrs: { id: 'slot-list' } });
  const slots = h(
    'fieldset',
    { class: 'slots', attrs: { id: 'slots', 'aria-describedby': 'slots-tz' } },
    h('legend', { class: 'field-label', text: 'plan.slots' }),
    h('p', { class: 'field-hint', attrs: { id: 'slots-tz' }, text: 'plan.tz_note', args: { tz } }),
    slotStatus,
    slotError,
    slotList,
  );

  const customerName = field({ id: 'customer-name', label: 'plan.customer_name', attrs: { autocomplete: 'off', maxlength: CUSTOMER_NAME_MAX } });
  const customerPhone = field({ id: 'customer-phone', label: 'plan.customer_phone', type: 'tel', hint: 'plan.phone_hint', attrs: { autocomplete: 'off', maxlength: 32 } });
  const customerEmail = field({ id: 'customer-email', label: 'plan.customer_email', type: 'email', attrs: { autocomplete: 'off', maxlength: 254 } });
  const note = field({ id: 'customer-note', label: 'plan.note', type: 'textarea', attrs: { maxlength: NOTE_MAX, rows: 3 } });
  const customer = h(
    'fieldset',
    { class: 'customer' },
    h('legend', { class: 'field-label', text: 'plan.customer' }),
    h('div', { class: 'form-grid' }, customerName.wrap, customerPhone.wrap, customerEmail.wrap),
    note.wrap,
  );
  const record = h('input', { attrs: { type: 'checkbox', id: 'plan-record' } });
  const recordRow = h('label', { class: 'check' }, record, h('span', { text: 'plan.record' }));

  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'plan-error' } });
  const submit = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'plan-submit' }, text: 'plan.submit' });
  const form = h(
    'form',
    { class: 'stack-form plan-form', attrs: { novalidate: true, id: 'plan-form' } },
    h('div', { class: 'form-grid' }, app.wrap, date.wrap, duration.wrap),
    slots,
    customer,
    recordRow,
    submit,
    error,
  );
  const result = h('section', { class: 'card page-section plan-result', attrs: { id: 'plan-result', hidden: true, tabindex: -1, 'aria-live': 'polite' } });
  const quotaLine = h('p', { class: 'notice-text', attrs: { id: 'plan-quota' } });
  const mine = new PlanList({ scope: 'mine', showOwner: false, maxMinutes, onChange: () => loadSlots() });
  main.append(section('plan-new', 'plan.new', quotaLine, form), result, section('my-plans', 'plans.mine', mine.el));
  showQuota(quotaLine, quota);

  // The apps on offer, from the coordinator's catalogue (a plain room when it has none).
  const launcher = new Launcher();
  /** @type {string[]} */
  let apps = [];
  try {
    apps = ((await launcher.catalogue()) ?? []).map((a) => a.rcName);
  } catch (e) {
    console.warn('orbita: cannot load the apps', e);
  }
  launcher.coordinator().then((c) => c?.close());
  if (!apps.length) apps = [PLAIN_ROOM_APP];
  for (const rc of apps) {
    const option = h('option', { attrs: { value: rc } });
    if (has(nameKey(rc))) setText(option, nameKey(rc));
    else option.textContent = humanName(rc);
    appSelect.append(option);
  }
  appSelect.value = apps.includes(PLAIN_ROOM_APP) ? PLAIN_ROOM_APP : apps[0];

  let asked = 0;
  /** Ask for the day's slots and show them; the picked one is kept if still free. */
  async function loadSlots() {
    const ask = ++asked;
    const picked = /** @type {HTMLInputElement | null} */ (slotList.querySelector('input[name=slot]:checked'))?.value ?? null;
    say(slotError, null);
    setText(slotStatus, 'plan.slots_loading');
    slotStatus.hidden = false;
    // Another day (or app, or length): the slots shown are not bookable any more.
    if (slotList.dataset.date !== date.input.value || slotList.dataset.app !== appSelect.value || slotList.dataset.minutes !== durationSelect.value) {
      clear(slotList);
      delete slotList.dataset.date;
    }
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date.input.value)) {
      clear(slotList);
      setText(slotStatus, 'plans.date_needed');
      return;
    }
    try {
      const answer = await getSlots({ rcName: appSelect.value, date: date.input.value, tz, durationMinutes: Number(durationSelect.value) });
      if (ask !== asked) return;
      clear(slotList);
      showSlots(answer.slots ?? [], picked);
      Object.assign(slotList.dataset, { date: date.input.value, app: appSelect.value, minutes: durationSelect.value });
    } catch (e) {
      if (ask !== asked) return;
      clear(slotList);
      slotStatus.hidden = true;
      showApiError(slotError, e);
    }
  }

  /**
   * @param {Slot[]} list
   * @param {string | null} picked
   */
  function showSlots(list, picked) {
    const free = list.filter((s) => s.free).length;
    if (!list.length) setText(slotStatus, 'plan.no_slots');
    else if (!free) setText(slotStatus, 'plan.all_taken');
    else setText(slotStatus, 'plan.free_count', { count: free });
    for (const group of groupSlots(list)) {
      const headingId = `slots-${group.part}`;
      const box = h('div', { class: 'slot-grid', attrs: { role: 'group', 'aria-labelledby': headingId } });
      for (const slot of group.slots) {
        const value = slot.now ? 'now' : slot.start;
        const id = `slot-${value.replace(':', '')}`;
        const input = h('input', {
          class: 'slot-radio',
          attrs: { type: 'radio', name: 'slot', id, value, disabled: !slot.free, checked: slot.free && picked === value },
          data: { time: slot.start },
        });
        const label = h(
          'label',
          { class: `slot${slot.free ? '' : ' taken'}${slot.now ? ' now' : ''}`, attrs: { for: id }, data: { start: slot.start, free: String(slot.free), now: String(Boolean(slot.now)) } },
          h('span', { class: 'slot-time', raw: slot.start }),
          slot.now ? h('span', { class: 'slot-tag', text: 'plan.now' }) : null,
          slot.free ? null : h('span', { class: 'slot-tag', text: 'plan.taken' }),
        );
        box.append(h('div', { class: 'slot-cell' }, input, label));
      }
      slotList.append(h('h3', { class: 'slot-part', attrs: { id: headingId }, text: `plan.part.${group.part}` }), box);
    }
  }

  for (const input of [appSelect, date.input, durationSelect]) input.addEventListener('change', () => loadSlots());

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    say(error, null);
    const checked = /** @type {HTMLInputElement | null} */ (slotList.querySelector('input[name=slot]:checked'));
    const problems = [
      [customerName, Array.from(customerName.input.value.trim()).length > CUSTOMER_NAME_MAX ? 'plan.customer_name_long' : null],
      [customerPhone, phoneProblem(customerPhone.input.value)],
      [customerEmail, customerEmail.input.value.trim() ? emailProblem(customerEmail.input.value) : null],
      [note, Array.from(note.input.value).length > NOTE_MAX ? 'plan.note_long' : null],
    ];
    for (const [f, key] of problems) /** @type {any} */ (f).invalid(key, { max: NOTE_MAX });
    if (!checked) {
      setText(error, 'plan.pick_slot');
      (/** @type {HTMLInputElement | null} */ (slotList.querySelector('input[name=slot]:not(:disabled)')) ?? date.input).focus();
      return;
    }
    const wrong = problems.find(([, key]) => key);
    if (wrong) {
      /** @type {any} */ (wrong[0]).input.focus();
      return;
    }
    const optional = (/** @type {string} */ v) => (v.trim() ? v.trim() : undefined);
    // "Now" is the current minute when the form is sent, not when the slots were listed.
    const at = checked.value === 'now' ? localParts(new Date(), tz) : { date: date.input.value, time: checked.dataset.time ?? checked.value };
    busy(submit, async () => {
      try {
        const { plan } = await createPlan({
          rc_name: appSelect.value,
          date: at.date,
          time: at.time,
          tz,
          duration_minutes: Number(durationSelect.value),
          customer_name: optional(customerName.input.value),
          customer_phone: optional(customerPhone.input.value),
          customer_email: optional(customerEmail.input.value),
          note: optional(note.input.value),
          record: record.checked || undefined,
        });
        showResult(plan);
        for (const f of [customerName, customerPhone, customerEmail, note]) f.input.value = '';
        record.checked = false;
        await Promise.all([loadSlots(), mine.load()]);
      } catch (e) {
        showApiError(error, e);
        if (/slot/i.test(e?.code ?? '')) loadSlots();
      }
    });
  });

  /** @param {import('../accounts.js').Plan} plan */
  function showResult(plan) {
    const link = absoluteLink(plan.link || `/r/${plan.code}`, location.origin);
    const linkInput = h('input', { attrs: { id: 'plan-link', readonly: true, value: link } });
    const copyStatus = h('p', { class: 'form-status', attrs: { role: 'status', id: 'plan-copy-status' } });
    const copy = h('button', { class: 'button', attrs: { type: 'button', id: 'plan-copy' }, text: 'call.copy_link' });
    copy.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(link);
        setText(copyStatus, 'call.link_copied');
      } catch {
        linkInput.select();
        setText(copyStatus, 'call.copy_manually');
      }
    });
    clear(result);
    result.append(
      h('h2', { class: 'section-title', text: 'plan.done' }),
      h('p', { class: 'plan-code-line' }, h('span', { text: 'plan.code_is' }), ' ', h('strong', { class: 'plan-code-big', attrs: { id: 'plan-code' }, raw: plan.code })),
      h('p', { class: 'notice-text', text: 'plan.when', args: { when: plan.start_local, tz: plan.tz } }),
      h('div', { class: 'field' }, h('label', { class: 'field-label', attrs: { for: 'plan-link' }, text: 'plan.link' }), h('div', { class: 'inline-field' }, linkInput, copy)),
      copyStatus,
      h('a', { class: 'button primary', attrs: { href: link, id: 'plan-join' }, text: 'plan.join' }),
    );
    result.hidden = false;
    result.focus();
  }

  window.addEventListener('orbita:language', () => showQuota(quotaLine, quota));
  await Promise.all([loadSlots(), mine.load()]);
}

/**
 * "3 of 10 sessions used in the last 24 h; at most 120 min each."
 * @param {HTMLElement} el
 * @param {import('../accounts.js').Quota | undefined} quota
 */
function showQuota(el, quota) {
  if (!quota) return;
  const parts = [];
  if (quota.sessions_per_period !== null && quota.sessions_per_period !== undefined) {
    parts.push(t('plan.quota_sessions', { used: quota.used ?? 0, limit: quota.sessions_per_period, hours: quota.period_hours ?? 24 }));
  }
  if (quota.max_minutes !== null && quota.max_minutes !== undefined) parts.push(t('plan.quota_minutes', { max: quota.max_minutes }));
  el.textContent = parts.length ? parts.join(' ') : t('plan.quota_none');
}
