// The administrator's page (/admin): accounts waiting for approval (approve with a role, or
// reject with a reason), every account with its role and its own quota (or the role's), and
// the quota defaults of each role.

import { approveUser, getQuotas, listUsers, putQuotas, rejectUser, updateUser } from '../accounts.js';
import { language, setText } from '../i18n.js';
import { browserTimeZone, formatInstant, parseLimit } from '../plan-time.js';
import { clear, h } from './dom.js';
import { busy, field, say, showApiError } from './forms.js';
import { accountPage, section } from './page.js';
import { callSettingsSections } from './call-settings.js';
import { callFormsSection } from './call-forms-editor.js';

/** @typedef {import('../accounts.js').User} User */
/** @typedef {import('../accounts.js').Quota} Quota */

export const ROLES = ['agent', 'supervisor', 'admin'];
/** The three limits of a quota, each with the smallest value allowed and whether it may be
 * left empty (unlimited; the period may not). */
const LIMITS = /** @type {const} */ ([
  ['sessions_per_period', 0, true],
  ['period_hours', 1, false],
  ['max_minutes', 1, true],
]);
const REASON_MAX = 500;

/** @param {string} prefix */
function roleSelect(prefix, /** @type {string} */ selected = 'agent') {
  const f = field({ id: `${prefix}-role`, label: 'admin.role', type: 'select', options: ROLES.map((r) => ({ value: r, text: `role.${r}` })) });
  /** @type {HTMLSelectElement} */ (f.input).value = selected;
  return f;
}

/**
 * Three limit fields (empty = unlimited), filled from a quota.
 * @param {string} prefix
 * @param {Quota | null | undefined} quota
 */
function quotaFields(prefix, quota) {
  const fields = LIMITS.map(([name, min, optional]) => {
    const f = field({
      id: `${prefix}-${name.replace(/_/g, '-')}`,
      label: `quota.${name}`,
      type: 'number',
      attrs: { min, step: 1, inputmode: 'numeric' },
    });
    const value = quota?.[name];
    f.input.value = value === null || value === undefined ? '' : String(value);
    if (optional) /** @type {HTMLInputElement} */ (f.input).placeholder = '∞';
    return { name, min, optional, f };
  });
  return {
    fields,
    el: h('div', { class: 'quota-fields' }, ...fields.map(({ f }) => f.wrap)),
    /** The quota typed, or null when a field is wrong (it says so). @returns {Quota | null} */
    read() {
      /** @type {Record<string, number | null>} */
      const quota = {};
      let ok = true;
      for (const { name, min, optional, f } of fields) {
        const value = parseLimit(f.input.value, min);
        if (Number.isNaN(value) || (value === null && !optional)) {
          f.invalid(optional ? 'quota.bad_number' : 'quota.bad_period', { min });
          if (ok) f.input.focus();
          ok = false;
        } else {
          f.invalid(null);
          quota[name] = value;
        }
      }
      return ok ? /** @type {Quota} */ (quota) : null;
    },
  };
}

/** @param {HTMLElement} root */
export async function renderAdmin(root) {
  const page = await accountPage(root, 'admin.title', ['admin']);
  if (!page) return;
  const { main, user: self } = page;
  const tz = browserTimeZone();

  const pendingList = h('div', { class: 'row-list', attrs: { id: 'pending-list' } });
  const usersList = h('div', { class: 'row-list', attrs: { id: 'users-list' } });
  const pendingStatus = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'pending-error' } });
  const usersStatus = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'users-error' } });
  const defaults = h('div', { attrs: { id: 'quota-defaults-body' } });
  main.append(
    section('pending', 'admin.pending', pendingStatus, pendingList),
    section('users', 'admin.users', h('p', { class: 'notice-text', text: 'admin.quota_hint' }), usersStatus, usersList),
    section('quota-defaults', 'admin.defaults', defaults),
    ...callSettingsSections(),
    callFormsSection(),
  );

  /** @param {string} iso */
  const when = (iso) => (iso ? formatInstant(iso, tz, language()) : '');
  /** The limits of each role (asked once: the defaults form and "own limits" start from them). */
  const roleQuotas = getQuotas().then((answer) => answer.quotas);

  async function loadPending() {
    try {
      const { users } = await listUsers('pending');
      say(pendingStatus, null);
      clear(pendingList);
      if (!users.length) pendingList.append(h('p', { class: 'notice-text empty', text: 'admin.none_pending' }));
      for (const u of users) pendingList.append(pendingRow(u));
    } catch (e) {
      showApiError(pendingStatus, e);
    }
  }

  /** @param {User} u */
  function pendingRow(u) {
    const prefix = `pending-${u.id}`;
    const role = roleSelect(prefix);
    const reason = field({ id: `${prefix}-reason`, label: 'admin.reason', attrs: { maxlength: REASON_MAX } });
    const error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    const approve = h('button', { class: 'button primary approve', attrs: { type: 'button' }, text: 'admin.approve' });
    const reject = h('button', { class: 'button danger reject', attrs: { type: 'button' }, text: 'admin.reject' });
    const row = h(
      'article',
      { class: 'user-row', data: { email: u.email, userId: String(u.id) }, attrs: { 'aria-label': u.email } },
      h('div', { class: 'user-who' }, h('strong', { raw: u.name }), h('span', { class: 'user-email', raw: u.email }), h('span', { class: 'user-meta', text: 'admin.signed_up', args: { when: when(u.created) } })),
      h('div', { class: 'row-action' }, role.wrap, approve),
      h('div', { class: 'row-action' }, reason.wrap, reject),
      error,
    );
    approve.addEventListener('click', () =>
      busy(approve, async () => {
        say(error, null);
        try {
          await approveUser(u.id, /** @type {HTMLSelectElement} */ (role.input).value);
          row.remove();
          if (!pendingList.querySelector('.user-row')) await loadPending();
          await loadUsers();
        } catch (e) {
          showApiError(error, e);
        }
      }),
    );
    reject.addEventListener('click', () => {
      const text = reason.input.value.trim();
      if (!text || Array.from(text).length > REASON_MAX) {
        reason.invalid('admin.reason_needed', { max: REASON_MAX });
        reason.input.focus();
        return;
      }
      reason.invalid(null);
      busy(reject, async () => {
        say(error, null);
        try {
          await rejectUser(u.id, text);
          row.remove();
          if (!pendingList.querySelector('.user-row')) await loadPending();
          await loadUsers();
        } catch (e) {
          showApiError(error, e);
        }
      });
    });
    return row;
  }

  async function loadUsers() {
    try {
      const [active, rejected] = await Promise.all([listUsers('active'), listUsers('rejected')]);
      say(usersStatus, null);
      clear(usersList);
      for (const u of [...active.users, ...rejected.users]) usersList.append(userRow(u));
    } catch (e) {
      showApiError(usersStatus, e);
    }
  }

  /** @param {User} u */
  function userRow(u) {
    const prefix = `user-${u.id}`;
    const role = roleSelect(prefix, u.role);
    const own = h('input', { attrs: { type: 'checkbox', id: `${prefix}-own-quota`, checked: Boolean(u.quota_override) } });
    const quota = quotaFields(prefix, u.quota_override);
    const setOwn = () => {
      for (const { f } of quota.fields) /** @type {HTMLInputElement} */ (f.input).disabled = !own.checked;
    };
    own.addEventListener('change', async () => {
      setOwn();
      // Own limits start from the role's.
      if (own.checked && quota.fields.every(({ f }) => !f.input.value)) {
        const base = (await roleQuotas.catch(() => null))?.[/** @type {HTMLSelectElement} */ (role.input).value];
        for (const { name, f } of quota.fields) {
          const value = base?.[name];
          if (!f.input.value && value !== null && value !== undefined) f.input.value = String(value);
        }
      }
    });
    setOwn();
    const error = h('p', { class: 'form-error', attrs: { role: 'alert' } });
    const status = h('p', { class: 'form-status', attrs: { role: 'status' } });
    const save = h('button', { class: 'button save-user', attrs: { type: 'button' }, text: 'admin.save' });
    const rejectedNote = u.status === 'rejected' ? h('span', { class: 'user-meta', text: 'admin.rejected_because', args: { reason: u.reject_reason ?? '' } }) : null;
    save.addEventListener('click', () => {
      say(error, null);
      say(status, null);
      const typed = own.checked ? quota.read() : null;
      if (own.checked && !typed) return;
      busy(save, async () => {
        try {
          await updateUser(u.id, { role: /** @type {HTMLSelectElement} */ (role.input).value, quota: typed });
          setText(status, 'admin.saved');
        } catch (e) {
          showApiError(error, e);
        }
      });
    });
    return h(
      'article',
      { class: 'user-row', data: { email: u.email, userId: String(u.id), status: u.status }, attrs: { 'aria-label': u.email } },
      h(
        'div',
        { class: 'user-who' },
        h('strong', { raw: u.name }),
        h('span', { class: 'user-email', raw: u.email }),
        h('span', { class: `status-badge status-${u.status}`, text: `status.${u.status}` }),
        u.id === self.id ? h('span', { class: 'user-meta', text: 'admin.you' }) : null,
        rejectedNote,
      ),
      role.wrap,
      h(
        'fieldset',
        { class: 'quota-box' },
        h('legend', { class: 'field-label' }, h('label', { class: 'check' }, own, h('span', { text: 'admin.own_quota' }))),
        quota.el,
      ),
      h('div', { class: 'row-action' }, save),
      error,
      status,
    );
  }

  async function loadDefaults() {
    clear(defaults);
    const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'defaults-error' } });
    let quotas;
    try {
      quotas = await roleQuotas;
    } catch (e) {
      showApiError(error, e);
      defaults.append(error);
      return;
    }
    const rows = ROLES.map((r) => ({ role: r, quota: quotaFields(`default-${r}`, quotas?.[r]) }));
    const status = h('p', { class: 'form-status', attrs: { role: 'status', id: 'defaults-status' } });
    const save = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'defaults-save' }, text: 'admin.save_defaults' });
    const form = h(
      'form',
      { class: 'stack-form', attrs: { novalidate: true } },
      ...rows.map(({ role, quota }) => h('fieldset', { class: 'quota-box', data: { role } }, h('legend', { class: 'field-label', text: `role.${role}` }), quota.el)),
      save,
      error,
      status,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      say(error, null);
      say(status, null);
      /** @type {Record<string, Quota>} */
      const typed = {};
      for (const { role, quota } of rows) {
        const q = quota.read();
        if (!q) return;
        typed[role] = q;
      }
      busy(save, async () => {
        try {
          await putQuotas(typed);
          setText(status, 'admin.saved');
        } catch (e) {
          showApiError(error, e);
        }
      });
    });
    defaults.append(h('p', { class: 'notice-text', text: 'admin.defaults_hint' }), form);
  }

  await Promise.all([loadPending(), loadUsers(), loadDefaults()]);
}
