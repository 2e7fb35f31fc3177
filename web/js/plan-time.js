// Dates and times of planning, in the browser's time zone: today's date there, a UTC instant
// as local wall-clock time, the day's slots grouped by part of the day, and a plan's join link
// as an absolute address. Pure functions (no DOM), tested in Node.

/** The browser's IANA time zone (`Europe/Moscow`), UTC if it does not say. */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/**
 * The wall-clock date and time of an instant in a time zone.
 * @param {Date | string} instant a Date or an ISO-8601 string
 * @param {string} tz
 * @returns {{date: string, time: string}} `YYYY-MM-DD` and `HH:MM`
 */
export function localParts(instant, tz) {
  const when = typeof instant === 'string' ? new Date(instant) : instant;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(when)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

/**
 * Today's date in a time zone, `YYYY-MM-DD`.
 * @param {string} tz
 * @param {Date} [now]
 */
export function todayIn(tz, now = new Date()) {
  return localParts(now, tz).date;
}

/**
 * A date `days` later (or earlier), `YYYY-MM-DD` (calendar arithmetic, no time zone).
 * @param {string} date
 * @param {number} days
 */
export function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + days));
  return next.toISOString().slice(0, 10);
}

/**
 * An instant for people, in the page's language and a time zone: "22 Nov 2026, 09:00".
 * @param {string} iso UTC ISO-8601
 * @param {string} tz
 * @param {string} lang
 */
export function formatInstant(iso, tz, lang) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  return new Intl.DateTimeFormat(lang, { timeZone: tz, dateStyle: 'medium', timeStyle: 'short', hourCycle: 'h23' }).format(when);
}

/**
 * The time of day of an instant in a time zone, for people: "09:00".
 * @param {string} iso
 * @param {string} tz
 * @param {string} lang
 */
export function formatTime(iso, tz, lang) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  return new Intl.DateTimeFormat(lang, { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(when);
}

/** The parts of a day, by the hour they begin. */
export const DAY_PARTS = /** @type {const} */ ([
  ['night', 0],
  ['morning', 6],
  ['afternoon', 12],
  ['evening', 18],
]);

/**
 * The day's slots grouped by part of the day (night, morning, afternoon, evening), in order,
 * each part only if it has slots; slots keep their order. The hour is the slot's local
 * `start` ("HH:MM").
 * @template {{start: string}} S
 * @param {S[]} slots
 * @returns {{part: string, slots: S[]}[]}
 */
export function groupSlots(slots) {
  /** @type {Map<string, S[]>} */
  const groups = new Map();
  for (const slot of slots) {
    const hour = Number(String(slot.start).split(':')[0]);
    let part = DAY_PARTS[0][0];
    for (const [name, from] of DAY_PARTS) if (Number.isFinite(hour) && hour >= from) part = name;
    const list = groups.get(part) ?? [];
    list.push(slot);
    groups.set(part, list);
  }
  return DAY_PARTS.filter(([name]) => groups.has(name)).map(([name]) => ({ part: name, slots: /** @type {S[]} */ (groups.get(name)) }));
}

/**
 * The absolute join address of a plan: its `link` (`/r/4821`) on this page's origin; a link
 * that already is absolute is kept.
 * @param {string} link
 * @param {string} origin e.g. `https://v.example.org`
 */
export function absoluteLink(link, origin) {
  try {
    return new URL(link, origin).href;
  } catch {
    return link;
  }
}

/**
 * A quota limit from a form field: empty means unlimited (null); otherwise a whole number
 * from `min`; anything else is `NaN` (the caller says so).
 * @param {string} text
 * @param {number} [min]
 * @returns {number | null}
 */
export function parseLimit(text, min = 0) {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  if (!/^\d{1,9}$/.test(trimmed)) return NaN;
  const value = Number(trimmed);
  return value >= min ? value : NaN;
}
