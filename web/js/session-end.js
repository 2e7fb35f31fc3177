// The end of a planned session, seen from its room page: the coordinator tells the session's
// participants when its slot enters the extension window (`SESSION_ENDING`, with whether the
// time after it is free), and anyone in the session may then ask for more time
// (`EXTEND_SESSION`); everyone is told the new end (`SESSION_EXTENDED`). docs/coordinator.md.

import { Coordinator, CoordinatorError } from './coordinator.js';
import { h } from './ui/dom.js';
import { toast } from './ui/toast.js';

/**
 * `day/month/year HH:MM` (UTC, the coordinator's format) as a Date; null if malformed.
 * @param {string} text
 * @returns {Date | null}
 */
export function parseCoordinatorTime(text) {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2})$/.exec(String(text ?? '').trim());
  if (!m) return null;
  const [, d, mo, y, hh, mm] = m.map(Number);
  const date = new Date(Date.UTC(y, mo - 1, d, hh, mm));
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * The local wall-clock time of a coordinator time, for people ("19:30").
 * @param {string} text
 */
export function localTime(text) {
  const date = parseCoordinatorTime(text);
  if (!date) return String(text ?? '');
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/**
 * Watch a session's end while its room page is open: shows a banner with "extend" when the
 * coordinator offers it. Returns a function that stops watching. Does nothing (and costs one
 * failed connection) on a server without a coordinator or for a code it does not know.
 * @param {string} code
 * @param {HTMLElement} host where the banner goes
 * @returns {() => void}
 */
export function watchSessionEnd(code, host) {
  const coordinator = new Coordinator();
  /** @type {HTMLElement | null} */
  let banner = null;
  let stopped = false;

  const removeBanner = () => {
    banner?.remove();
    banner = null;
  };

  /** @param {any} msg */
  const showEnding = (msg) => {
    removeBanner();
    const until = localTime(msg.ends_at);
    const extend = h('button', {
      class: 'button primary',
      text: 'session_end.extend',
      on: {
        click: async () => {
          extend.setAttribute('disabled', '');
          try {
            await coordinator.extendSession(code);
          } catch (e) {
            const error = e instanceof CoordinatorError ? e : new CoordinatorError('network', String(e));
            toast({ key: 'session_end.refused', level: 'error', detail: error.message || error.code });
            extend.removeAttribute('disabled');
          }
        },
      },
    });
    banner = h(
      'div',
      { class: 'session-end-banner', attrs: { role: 'status', 'data-testid': 'session-end' } },
      h('span', { text: msg.extendable ? 'session_end.ending_extendable' : 'session_end.ending', args: { time: until } }),
      msg.extendable ? extend : null,
      h('button', { class: 'button', text: 'action.close', on: { click: removeBanner } }),
    );
    host.prepend(banner);
  };

  coordinator.onNotice = (msg) => {
    if (stopped) return;
    if (msg.msg === 'SESSION_ENDING' && msg.code === code) showEnding(msg);
    if (msg.msg === 'SESSION_EXTENDED' && msg.code === code) {
      removeBanner();
      toast({ key: 'session_end.extended', args: { time: localTime(msg.until) } });
    }
  };

  (async () => {
    try {
      await coordinator.connect();
      // Registers this page with the session, so the coordinator's notices reach it.
      await coordinator.connectWithCode(code);
    } catch {
      coordinator.close();
    }
  })();

  return () => {
    stopped = true;
    removeBanner();
    coordinator.close();
  };
}
