// Why starting or joining a session failed, in words for people (a translation key and its
// parameters), from the coordinator's or the REST API's error codes.

import { ApiError } from '../api.js';
import { CoordinatorError } from '../coordinator.js';

/**
 * @typedef {{key: string, args?: Record<string, string | number>, detail?: string}} Explained
 */

/**
 * @param {unknown} error
 * @param {string} [code] the join code typed, if any
 * @returns {Explained}
 */
export function explainLaunchError(error, code = '') {
  const id = error instanceof CoordinatorError || error instanceof ApiError ? error.code : 'other';
  const wait = error instanceof CoordinatorError ? (error.retryAfter ?? 0) : 0;
  const detail = error instanceof Error && error.message ? error.message : undefined;
  switch (id) {
    case 'SESSION_NOT_EXIST':
    case 'unknown_code':
      return { key: 'home.unknown_code', args: { code } };
    case 'BAD_CODE':
      return { key: 'home.bad_code', args: { code } };
    case 'LOCKED_OUT':
      return { key: 'home.locked_out', args: { minutes: Math.max(1, Math.ceil(wait / 60)) } };
    case 'RATE_LIMITED':
      return { key: 'home.rate_limited', args: { seconds: Math.max(1, Math.ceil(wait)) } };
    case 'PLAN_NOT_STARTED':
      return { key: 'home.plan_not_started', args: { minutes: Math.max(1, Math.ceil(wait / 60)) } };
    case 'SESSION_STARTING':
      return { key: 'home.session_starting' };
    case 'SERVERS_BUSY':
    case 'CODES_EXHAUSTED':
    case 'unavailable':
      return { key: 'home.servers_busy' };
    case 'NO_FREE_RECORDER':
      return { key: 'home.no_free_recorder' };
    case 'NODE_TIMEOUT':
    case 'timeout':
      return { key: 'error.timeout' };
    case 'UNKNOWN_RC':
      return { key: 'home.unknown_app' };
    case 'network':
      return { key: 'error.network' };
    case 'LOGIN_REQUIRED':
      return { key: 'home.login_required' };
    case 'QUOTA_EXCEEDED':
    case 'DURATION_OVER_QUOTA':
      return { key: 'home.quota_exceeded', detail };
    case 'FORBIDDEN':
      return { key: 'api.forbidden', detail };
    default:
      return { key: 'error.generic', detail };
  }
}
