// Failures of the accounts and planning API in words for people: a translation key, its
// parameters, and the server's own message where it says more (which field, which limit).
// Pure (no DOM), tested in Node.

import { ApiError } from '../api.js';

/** @typedef {{key: string, args?: Record<string, string | number>, detail?: string}} Explained */

/**
 * Translation key of each error code, and whether the server's message is shown under it
 * (it names the field or the limit). Codes are compared in lower case: the planning API
 * answers the WebSocket's codes (`SLOT_TAKEN`) too.
 * @type {Record<string, [string, boolean]>}
 */
export const API_ERRORS = {
  network: ['error.network', false],
  timeout: ['error.timeout', false],
  not_logged_in: ['api.not_logged_in', false],
  login_required: ['api.not_logged_in', false],
  forbidden: ['api.forbidden', false],
  bad_request: ['api.bad_request', true],
  not_found: ['api.not_found', false],
  too_large: ['error.too_large', false],
  rate_limited: ['api.rate_limited', true],
  bad_email: ['api.bad_email', false],
  weak_password: ['api.weak_password', false],
  bad_name: ['api.bad_name', false],
  bad_time_zone: ['api.bad_time_zone', false],
  email_taken: ['api.email_taken', false],
  bad_setup_token: ['api.bad_setup_token', false],
  setup_done: ['api.setup_done', false],
  bad_credentials: ['api.bad_credentials', false],
  account_pending: ['api.account_pending', false],
  locked_out: ['api.locked_out', true],
  slot_taken: ['api.slot_taken', false],
  slot_in_past: ['api.slot_in_past', false],
  slot_too_far: ['api.slot_too_far', true],
  bad_duration: ['api.bad_duration', true],
  bad_date: ['api.bad_date', true],
  bad_time: ['api.bad_date', true],
  bad_field: ['api.bad_request', true],
  plan_started: ['api.plan_started', false],
  quota_exceeded: ['api.quota_exceeded', true],
  duration_over_quota: ['api.duration_over_quota', true],
  unknown_rc: ['home.unknown_app', false],
  servers_busy: ['home.servers_busy', false],
  codes_exhausted: ['home.servers_busy', false],
  unavailable: ['home.servers_busy', false],
};

/**
 * @param {unknown} error
 * @returns {Explained}
 */
export function explainApiError(error) {
  if (!(error instanceof ApiError)) {
    return { key: 'error.generic', detail: error instanceof Error ? error.message : String(error) };
  }
  const code = error.code.toLowerCase();
  const message = error.message && error.message.trim() ? error.message.trim() : undefined;
  if (code === 'account_rejected') return { key: 'api.account_rejected', args: { reason: message ?? '—' } };
  const known = API_ERRORS[code];
  if (known) return known[1] && message ? { key: known[0], detail: message } : { key: known[0] };
  if (error.status === 401) return { key: 'api.not_logged_in' };
  if (error.status === 403) return { key: 'api.forbidden', detail: message };
  return { key: 'error.generic', detail: message };
}
