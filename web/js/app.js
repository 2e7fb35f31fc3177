// Orbita's browser client: the entry point. Shows the home page at `/`, and at `/r/{code}`
// the pre-join page, the call, and what follows it.

import { hostKey, rememberHostKey } from './host-key.js';
import { branding, loadBranding } from './branding.js';
import { ApiError, lookupRoom } from './api.js';
import { Launcher } from './launch.js';
import { initI18n, loadAll, has } from './i18n.js';
import { LocalMedia } from './media.js';
import { RoomSession } from './room.js';
import { watchSessionEnd } from './session-end.js';
import { ServerError } from './signaling.js';
import { CallView } from './ui/call.js';
import { clear, h } from './ui/dom.js';
import { pageHeader } from './ui/header.js';
import { renderAdmin } from './ui/admin.js';
import { renderLogin, renderSignup } from './ui/auth.js';
import { renderSetup } from './ui/setup.js';
import { renderHome, renderUnknownRoom } from './ui/home.js';
import { renderPlan } from './ui/plan.js';
import { renderAllPlans } from './ui/plans.js';
import { renderRecordings } from './ui/recordings.js';
import { renderCalls } from './ui/calls.js';
import { explainLaunchError } from './ui/launch-errors.js';
import { renderPrejoin } from './ui/prejoin.js';
import { offerSurvey } from './ui/survey.js';

const root = /** @type {HTMLElement} */ (document.getElementById('app'));

/**
 * Hooks for tests and for looking into a call from the console: `__orbita.session`,
 * `__orbita.stats()`, `__orbita.dropSignaling()`, `__orbita.simulateIceFailure()`.
 */
const debug = {
  /** @type {RoomSession | null} */
  session: null,
  /** @type {LocalMedia | null} */
  local: null,
  stats() {
    return debug.session ? debug.session.stats() : Promise.resolve(null);
  },
  /** Close the signalling socket as a network drop would. */
  dropSignaling() {
    debug.session?.signaling?.dropForTest();
  },
  /** Act as if ICE failed: the client restarts ICE. */
  simulateIceFailure() {
    debug.session?.restartIce();
  },
};
Object.assign(window, { __orbita: debug });

/** The account pages, by the page kind the server says (or the path). */
const ACCOUNT_PAGES = {
  signup: renderSignup,
  login: renderLogin,
  admin: renderAdmin,
  plan: renderPlan,
  plans: renderAllPlans,
  recordings: renderRecordings,
  calls: renderCalls,
  setup: renderSetup,
};

/** Where we are: the server says so in the page, else the path tells. */
function route() {
  const body = document.body.dataset;
  const match = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  if (body.page === 'room' || match) {
    const code = body.code && body.code !== '{{code}}' ? body.code : decodeURIComponent(match?.[1] ?? '');
    return { page: 'room', code };
  }
  const named = body.page && body.page in ACCOUNT_PAGES ? body.page : location.pathname.replace(/^\/|\/$/g, '');
  if (named in ACCOUNT_PAGES) return { page: named, code: '' };
  return { page: 'home', code: '' };
}

/**
 * A host key handed over in the address's fragment (`#key=...`, by the server that started the
 * session on this one): kept for the tab, and taken out of the address bar, which people copy
 * to their guests.
 * @param {string} code
 */
function takeHostKeyFromFragment(code) {
  const key = new URLSearchParams(location.hash.slice(1)).get('key');
  if (!key) return;
  rememberHostKey(code, key);
  history.replaceState(history.state, '', location.pathname + location.search);
}

async function main() {
  await initI18n();
  await loadAll();
  const { page, code } = route();
  clear(root);
  if (page === 'room') {
    takeHostKeyFromFragment(code);
    await showRoom(code);
  }
  else if (page in ACCOUNT_PAGES) await ACCOUNT_PAGES[/** @type {keyof typeof ACCOUNT_PAGES} */ (page)](root);
  else renderHome(root);
  document.body.dataset.ready = 'true';
}

/**
 * The room page: check the code, then pre-join.
 * @param {string} code
 */
async function showRoom(code) {
  // The organisation's look and consent text, before anything is shown.
  await loadBranding();
  let participants = null;
  let recorded = false;
  try {
    ({ participants, recording: recorded } = await lookupRoom(code));
  } catch (e) {
    if (e instanceof ApiError && e.code === 'unknown_code') {
      // Not on this server yet: a planned session in its slot starts when someone comes, so
      // ask the coordinator (it starts it, or says where it runs).
      const found = await findSession(code);
      if (found === null) {
        renderUnknownRoom(root, code);
        return;
      }
      if (found.elsewhere) {
        location.assign(found.url);
        return;
      }
      if (found.error) {
        renderUnknownRoom(root, code, found.error.key, found.error.args, found.error.detail);
        return;
      }
      ({ participants, recorded } = await lookupRoom(code).then(
        (r) => ({ participants: r.participants, recorded: r.recording }),
        () => ({ participants: null, recorded: false }),
      ));
    }
    // The lookup is a courtesy: joining will say what is wrong.
  }
  const local = new LocalMedia();
  debug.local = local;
  await local.start();
  showPrejoin(code, local, participants, recorded);
}

/**
 * Ask the coordinator for the session with this code (starting a planned one): null when
 * there is no coordinator or no such session; else where it is, or why it cannot be joined
 * now (a plan whose slot has not begun, ...).
 * @param {string} code
 * @returns {Promise<{elsewhere: boolean, url: string, error?: {key: string, args?: Record<string, string | number>, detail?: string}} | null>}
 */
async function findSession(code) {
  const launcher = new Launcher();
  try {
    const url = await launcher.find(code);
    if (url === null) return null;
    return { elsewhere: new URL(url, location.href).href !== new URL(location.pathname, location.href).href, url };
  } catch (e) {
    const error = explainLaunchError(e, code);
    if (error.key === 'home.unknown_code') return null;
    return { elsewhere: false, url: '', error };
  } finally {
    launcher.close();
  }
}

/**
 * @param {string} code
 * @param {LocalMedia} local
 * @param {number | null} participants
 * @param {boolean} recorded whether the call is recorded (the guest is told before joining)
 * @param {{key: string, args?: Record<string, string | number>, detail?: string}} [error]
 */
function showPrejoin(code, local, participants, recorded, error) {
  clear(root);
  const view = renderPrejoin(root, {
    code,
    local,
    participants,
    recorded,
    askConsent: hostKey(code) === null,
    onJoin: async ({ name, micMuted, cameraOff, consent }) => {
      view.setBusy(true);
      const session = new RoomSession({ code, name, local, micMuted, cameraOff, consent });
      debug.session = session;
      try {
        await session.join();
      } catch (e) {
        view.setBusy(false);
        const { key, detail } = describeError(e);
        if (e instanceof ServerError && e.code === 'unknown_code') {
          view.destroy();
          clear(root);
          renderUnknownRoom(root, code, 'room.ended');
          return;
        }
        view.showError(key, { code }, detail);
        return;
      }
      view.destroy();
      // A planned session's end: offer to extend it when the coordinator says it may be.
      const stopWatching = watchSessionEnd(code, root);
      new CallView(root, session, {
        onLeave: () => {
          stopWatching();
          showLeft(code);
          // The survey of the call, when its app has one (not for the agent).
          // Then on to the organisation's page, when it set one.
          const info = session.callInfo;
          const card = document.getElementById('end-screen');
          if (card && session.role !== 'agent') afterCall(card, info);
        },
        onFailed: (failure) => {
          stopWatching();
          showFailed(code, failure, session.appStopped);
        },
      });
    },
  });
  if (error) view.showError(error.key, error.args, error.detail);
}

/** How long the end screen shows before a customer is sent on (with a link to go at once). */
const REDIRECT_DELAY_MS = 3000;

/**
 * What a customer gets when they left: the survey when there is one, then the organisation's
 * page (`redirect_url`), once the survey is answered or at once without one.
 * @param {HTMLElement} card
 * @param {{callId: string, token: string, participant: string} | null} info
 */
async function afterCall(card, info) {
  const url = branding().redirect_url;
  const goOn = () => {
    if (!url) return;
    card.append(h('a', { class: 'button primary wide', attrs: { href: url, id: 'redirect-link' }, text: 'left.continue' }));
    setTimeout(() => location.assign(url), REDIRECT_DELAY_MS);
  };
  const shown = info ? await offerSurvey(card, info, goOn) : false;
  if (!shown) goOn();
}

/**
 * The translation key (and the server's words) for a join failure.
 * @param {unknown} error
 * @returns {{key: string, detail?: string}}
 */
function describeError(error) {
  if (error instanceof ServerError || error instanceof ApiError) {
    const key = `error.${error.code}`;
    return { key: has(key) ? key : 'error.generic', detail: error.message };
  }
  return { key: 'error.generic', detail: String(error) };
}

/** After leaving: rejoin or go home. @param {string} code */
function showLeft(code) {
  endScreen('left.title', 'left.text', code);
}

/**
 * The call could not go on (the room ended, its app stopped, ...).
 * @param {string} code
 * @param {unknown} error
 * @param {string | null} appStopped why the session's app stopped, if it did
 */
function showFailed(code, error, appStopped) {
  if (appStopped !== null) {
    endScreen('failed.title', 'session.app_ended', code, appStopped, false);
    return;
  }
  const { key, detail } = describeError(error);
  endScreen('failed.title', key, code, detail);
}

/**
 * @param {string} titleKey
 * @param {string} textKey
 * @param {string} code
 * @param {string} [detail]
 * @param {boolean} [canRejoin] whether to offer joining again
 */
function endScreen(titleKey, textKey, code, detail, canRejoin = true) {
  clear(root);
  root.append(
    pageHeader(),
    h(
      'main',
      { class: 'home' },
      h(
        'section',
        { class: 'card home-card notice-card', attrs: { id: 'end-screen' } },
        h('h1', { class: 'card-title', text: titleKey }),
        h('p', { class: 'notice-text', text: textKey, args: { code } }),
        detail ? h('p', { class: 'error-detail', raw: detail }) : null,
        canRejoin ? h('a', { class: 'button primary wide', attrs: { href: `/r/${encodeURIComponent(code)}` }, text: 'left.rejoin' }) : null,
        h('a', { class: `button ${canRejoin ? 'ghost' : 'primary'} wide`, attrs: { href: '/' }, text: 'room.go_home' }),
      ),
    ),
  );
}

main().catch((error) => {
  console.error(error);
  clear(root);
  root.append(h('p', { class: 'fatal', raw: `Orbita: ${String(error)}` }));
});
