// The accounts and planning REST API (docs/accounts.md): sign-up and log-in, the
// administrator's pages, free slots and plans. The login session is the `orbita_session`
// cookie, sent by the browser with every same-origin request (and with the coordinator's
// WebSocket). Every failure is an ApiError with the server's code, message and status.

import { ApiError } from './api.js';

/**
 * @typedef {{id: number, email: string, name: string, role: string, status: string,
 *   reject_reason: string | null, time_zone: string | null, created: string,
 *   quota_override?: Quota | null}} User
 * @typedef {{sessions_per_period: number | null, period_hours: number | null, max_minutes: number | null, used?: number}} Quota
 * @typedef {{start: string, start_utc: string, free: boolean, now?: boolean}} Slot
 * @typedef {{code: string, link: string, rc_name: string, start_utc: string, end_utc: string,
 *   tz: string, start_local: string, duration_minutes: number,
 *   owner: {id: number, name: string, email: string} | null, customer_name: string | null,
 *   customer_phone: string | null, customer_email: string | null, note: string | null, record?: boolean,
 *   started?: boolean}} Plan
 */

/**
 * One JSON request; resolves with the answer's body (null for 204).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError('network', String(e), 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  if (!response.ok) {
    throw new ApiError(String(data?.error ?? `http_${response.status}`), String(data?.message ?? response.statusText), response.status);
  }
  return data;
}

/** @param {Record<string, string | number | undefined | null>} params */
function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * @param {{email: string, password: string, name: string, time_zone?: string}} fields
 * @returns {Promise<{user: User}>}
 */
export const signup = (fields) => call('POST', '/api/auth/signup', fields);

/** @returns {Promise<{open: boolean}>} whether this server's first-run link is still open */
export const setupState = () => call('GET', '/api/setup');

/**
 * The first administrator, with the server's one-time setup token; logs in.
 * @param {{token: string, email: string, password: string}} fields
 * @returns {Promise<{user: User}>}
 */
export const finishSetup = (fields) => call('POST', '/api/setup', fields);

/**
 * @param {string} email
 * @param {string} password
 * @returns {Promise<{user: User}>}
 */
export const login = (email, password) => call('POST', '/api/auth/login', { email, password });

export const logout = () => call('POST', '/api/auth/logout');

/**
 * Who is logged in: `{user, quota}`, null when nobody is, or `undefined` when this server
 * has no accounts (no coordinator answers `/api/auth`).
 * @returns {Promise<{user: User, quota: Quota} | null | undefined>}
 */
export async function me() {
  try {
    return await call('GET', '/api/auth/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return undefined;
    throw e;
  }
}

/**
 * @param {string} oldPassword
 * @param {string} newPassword
 */
export const changePassword = (oldPassword, newPassword) =>
  call('POST', '/api/auth/password', { old_password: oldPassword, new_password: newPassword });

/**
 * @param {'pending' | 'active' | 'rejected'} status
 * @returns {Promise<{users: User[]}>}
 */
export const listUsers = (status) => call('GET', `/api/admin/users${query({ status })}`);

/** @param {number} id @param {string} role @returns {Promise<{user: User}>} */
export const approveUser = (id, role) => call('POST', `/api/admin/users/${id}/approve`, { role });

/** @param {number} id @param {string} reason @returns {Promise<{user: User}>} */
export const rejectUser = (id, reason) => call('POST', `/api/admin/users/${id}/reject`, { reason });

/**
 * @param {number} id
 * @param {{role?: string, quota?: Quota | null}} change
 * @returns {Promise<{user: User}>}
 */
export const updateUser = (id, change) => call('PUT', `/api/admin/users/${id}`, change);

/** @returns {Promise<{quotas: Record<string, Quota>}>} */
export const getQuotas = () => call('GET', '/api/admin/quotas');

/** @param {Record<string, Quota>} quotas @returns {Promise<{quotas: Record<string, Quota>}>} */
export const putQuotas = (quotas) => call('PUT', '/api/admin/quotas', { quotas });

/**
 * The slots of a local day.
 * @param {{rcName: string, date: string, tz: string, durationMinutes: number, stepMinutes?: number}} ask
 * @returns {Promise<{rc_name: string, tz: string, date: string, slots: Slot[]}>}
 */
export const getSlots = ({ rcName, date, tz, durationMinutes, stepMinutes }) =>
  call('GET', `/api/slots${query({ rc_name: rcName, date, tz, duration_minutes: durationMinutes, step_minutes: stepMinutes })}`);

/**
 * @param {{rc_name: string, date: string, time: string, tz: string, duration_minutes: number,
 *   customer_name?: string, customer_phone?: string, customer_email?: string, note?: string,
 *   record?: boolean}} plan
 * @returns {Promise<{plan: Plan}>}
 */
export const createPlan = (plan) => call('POST', '/api/plans', plan);

/**
 * @param {'mine' | 'all'} scope
 * @param {{from?: string, to?: string}} [range] UTC ISO-8601
 * @returns {Promise<{plans: Plan[]}>}
 */
export const listPlans = (scope, range = {}) => call('GET', `/api/plans${query({ scope, from: range.from, to: range.to })}`);

/**
 * @param {string} code
 * @param {{date: string, time: string, tz: string, duration_minutes?: number}} to
 * @returns {Promise<{plan: Plan}>}
 */
export const movePlan = (code, to) => call('PATCH', `/api/plans/${encodeURIComponent(code)}`, to);

/** @param {string} code */
export const cancelPlan = (code) => call('DELETE', `/api/plans/${encodeURIComponent(code)}`);
