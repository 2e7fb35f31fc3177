// The REST API (docs/protocol.md): make a room, look one up.

/** An error from the API, with the server's error code (`unknown_code`, `unavailable`, ...) or
 * `network` when the server could not be reached. */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} [status] the HTTP status (0 when the server was not reached)
   */
  constructor(code, message, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/**
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
async function request(path, init) {
  let response;
  try {
    response = await fetch(path, { ...init, headers: { accept: 'application/json' } });
  } catch (e) {
    throw new ApiError('network', String(e));
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  if (!response.ok) {
    throw new ApiError(body?.error ?? `http_${response.status}`, body?.message ?? response.statusText, response.status);
  }
  return body;
}

/**
 * Make a new room.
 * @returns {Promise<{code: string, link: string, host_key: string, record: boolean}>}
 */
export function createRoom() {
  return request('/api/rooms', { method: 'POST' });
}

/**
 * Look up a room by code; throws `ApiError('unknown_code')` when there is none.
 * @param {string} code
 * @returns {Promise<{code: string, participants: number, recording: boolean}>}
 */
export function lookupRoom(code) {
  return request(`/api/rooms/${encodeURIComponent(code)}`);
}

/**
 * Whether a string looks like a join code (digits only, after removing spaces and dashes).
 * @param {string} text
 */
export function normalizeCode(text) {
  return text.replace(/[\s-]/g, '');
}
