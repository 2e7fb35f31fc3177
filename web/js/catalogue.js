// The catalogue of apps the coordinator offers (GET_SERVERS, one entry per app per server):
// fetched page by page, one entry per app, with its description in the page's language.

/** @typedef {import('./coordinator.js').Coordinator} Coordinator */

/** Entries asked for per GET_SERVERS. */
export const PAGE_SIZE = 10;
/** At most this many pages are read (a catalogue of 500 servers x apps). */
const MAX_PAGES = 50;
/** The app of the default catalogue that is a plain video room (no program streams into it). */
export const PLAIN_ROOM_APP = 'video-room';

/**
 * An app on offer.
 * @typedef {object} App
 * @property {string} rcName
 * @property {[string, string][]} descriptions [language, text] in the coordinator's order
 */

/**
 * Every app on offer, in the coordinator's order, each once (several servers may offer one).
 * @param {Coordinator} coordinator
 * @returns {Promise<App[]>}
 */
export async function loadCatalogue(coordinator) {
  /** @type {Map<string, App>} */
  const apps = new Map();
  for (let page = 0; page < MAX_PAGES; page++) {
    const from = page * PAGE_SIZE;
    const entries = await coordinator.getServers(from, from + PAGE_SIZE - 1);
    for (const entry of entries) {
      const rcName = entry?.rc_info?.rc_name;
      if (typeof rcName !== 'string' || !rcName || apps.has(rcName)) continue;
      apps.set(rcName, { rcName, descriptions: descriptions(entry.rc_info.info?.description) });
    }
    if (entries.length < PAGE_SIZE) break;
  }
  return [...apps.values()];
}

/**
 * The [language, text] pairs of a description: `[{"en": ...}, {"ru": ...}]` as the spec has
 * it, or one object `{"en": ..., "ru": ...}`.
 * @param {unknown} value
 * @returns {[string, string][]}
 */
export function descriptions(value) {
  const objects = Array.isArray(value) ? value : value && typeof value === 'object' ? [value] : [];
  /** @type {[string, string][]} */
  const pairs = [];
  for (const object of objects) {
    if (!object || typeof object !== 'object') continue;
    for (const [lang, text] of Object.entries(object)) {
      if (typeof text === 'string' && text.trim()) pairs.push([lang.toLowerCase(), text]);
    }
  }
  return pairs;
}

/**
 * An app's description in `lang`, else in English, else the first one; empty if none.
 * @param {App} app
 * @param {string} lang
 */
export function describe(app, lang) {
  const find = (/** @type {string} */ wanted) => app.descriptions.find(([l]) => l === wanted || l.split('-')[0] === wanted)?.[1];
  return find(lang) ?? find('en') ?? app.descriptions[0]?.[1] ?? '';
}
