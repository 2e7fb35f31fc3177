// The host key of a room this browser created: joining with it makes the call's agent (who may
// record). Kept in sessionStorage for the tab's life, never in the address bar, which people
// copy to their guests.

/**
 * The host key this browser was given for room `code` when it created it (kept for the tab's
 * life, never in the address bar, which people copy to guests), or null.
 * @param {string} code
 */
export function hostKey(code) {
  try {
    return sessionStorage.getItem(`orbita.host.${code}`);
  } catch {
    return null;
  }
}

/**
 * Keep the host key of a room this browser created (see `hostKey`).
 * @param {string} code
 * @param {string} key
 */
export function rememberHostKey(code, key) {
  try {
    sessionStorage.setItem(`orbita.host.${code}`, key);
  } catch {
    // Storage off: the creator joins as a guest.
  }
}

