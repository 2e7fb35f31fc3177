// The organisation's branding (docs/calls.md, "Branding, consent and feature switches"): the
// room page asks its media server (`GET /api/branding`) before it shows anything, then takes
// the company's name, colours and logo, the consent text guests accept before joining, and
// where customers go after the call.

/**
 * @typedef {{company: string, primary_color: string, accent_color: string, consent_text: string,
 *   consent_id: string | null, redirect_url: string, logo: string | null}} Branding
 */

/** @type {Branding} */
export const NO_BRANDING = Object.freeze({
  company: '',
  primary_color: '',
  accent_color: '',
  consent_text: '',
  consent_id: null,
  redirect_url: '',
  logo: null,
});

/** @type {Branding} */
let current = NO_BRANDING;

/** The branding in force (none until [`loadBranding`] ran). */
export function branding() {
  return current;
}

/**
 * Fetches the branding and applies it; without an answer, the page stays Orbita's.
 * @returns {Promise<Branding>}
 */
export async function loadBranding() {
  try {
    const response = await fetch('/api/branding', { credentials: 'omit' });
    if (response.ok) current = { ...NO_BRANDING, ...(await response.json()) };
  } catch {
    // Unbranded.
  }
  apply(current);
  return current;
}

const COLOR = /^#[0-9a-f]{6}$/i;

/**
 * A colour a little lighter (hover states).
 * @param {string} hex `#rrggbb`
 */
function lighter(hex) {
  const n = parseInt(hex.slice(1), 16);
  const mix = (/** @type {number} */ c) => Math.round(c + (255 - c) * 0.18);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255].map(mix);
  return `#${((r << 16) | (g << 8) | b).toString(16).padStart(6, '0')}`;
}

/** @param {Branding} b */
function apply(b) {
  const style = document.documentElement.style;
  if (COLOR.test(b.primary_color)) {
    style.setProperty('--accent', b.primary_color);
    style.setProperty('--accent-hover', lighter(b.primary_color));
  }
  if (COLOR.test(b.accent_color)) style.setProperty('--brand-band', b.accent_color);
  if (b.company) document.title = b.company;
  document.body.classList.toggle('branded', Boolean(b.company || b.logo));
}

/** Paragraphs of a plain text (blank lines part them). @param {string} text */
export function paragraphs(text) {
  return text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean);
}
