// Checks of what people type into the account forms, before asking the server (which checks
// again): each answers the translation key of the problem, or null. Pure, tested in Node.

/** At most this many characters in a name (docs/accounts.md). */
export const NAME_MAX = 100;
/** At most this many bytes in an e-mail address. */
export const EMAIL_MAX = 254;
/** Passwords: 10 to 128 characters. */
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 128;

/** @param {string} email */
export function emailProblem(email) {
  const value = email.trim();
  if (!value) return 'signup.email_required';
  if (new TextEncoder().encode(value).length > EMAIL_MAX || !/^[^\s@]+@[^\s@]+$/.test(value)) return 'api.bad_email';
  return null;
}

/** @param {string} name */
export function nameProblem(name) {
  const value = name.trim();
  if (!value) return 'signup.name_required';
  if (Array.from(value).length > NAME_MAX) return 'signup.name_long';
  return null;
}

/** @param {string} password */
export function passwordProblem(password) {
  const length = Array.from(password).length;
  if (length < PASSWORD_MIN) return 'signup.password_short';
  if (length > PASSWORD_MAX) return 'signup.password_long';
  return null;
}

/**
 * A customer's phone: `+`, digits, spaces and `-()`, at most 32 characters; empty is fine.
 * @param {string} phone
 */
export function phoneProblem(phone) {
  const value = phone.trim();
  if (!value) return null;
  return /^[+0-9 ()-]{1,32}$/.test(value) && /\d/.test(value) ? null : 'plan.bad_phone';
}

/**
 * Where to go after logging in: the page's `?next=` when it is a path of this site, else home.
 * Resolved as the browser would resolve it (which drops tabs and newlines, so `/\t/evil.example`
 * is `//evil.example`) and kept only when it stays on this origin.
 * @param {string} search location.search
 */
export function nextPath(search) {
  const next = new URLSearchParams(search).get('next') ?? '';
  if (!next.startsWith('/')) return '/';
  const here = 'https://orbita.invalid';
  let url;
  try {
    url = new URL(next, here);
  } catch {
    return '/';
  }
  return url.origin === here ? `${url.pathname}${url.search}${url.hash}` : '/';
}
