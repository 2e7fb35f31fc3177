// The browser client's pure logic, run in Node without a browser: where a pointer falls in a
// letterboxed video frame, paging and de-duplicating the coordinator's catalogue, picking a
// description's language, where a session's room page is, the words for each failure; and for
// the account pages: dates and times in a time zone, slots grouped by part of the day, join
// links, quota limits, form checks and the words for each API error.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { repoRoot } from './helpers.js';

const web = (/** @type {string} */ path) => import(pathToFileURL(join(repoRoot, 'web', 'js', path)).href);
const { framePoint } = await web('app-input.js');
const { loadCatalogue, describe: describeApp, descriptions, PAGE_SIZE } = await web('catalogue.js');
const { placeUrl } = await web('launch.js');
const { CoordinatorError } = await web('coordinator.js');
const { ApiError } = await web('api.js');
const { explainLaunchError } = await web('ui/launch-errors.js');
const { localParts, todayIn, addDays, formatInstant, groupSlots, absoluteLink, parseLimit } = await web('plan-time.js');
const { explainApiError, API_ERRORS } = await web('ui/api-errors.js');
const { emailProblem, nameProblem, passwordProblem, phoneProblem, nextPath } = await web('validate.js');
const { durationOptions } = await web('ui/plan-list.js');
const en = JSON.parse(readFileSync(join(repoRoot, 'web', 'i18n', 'en.json'), 'utf8'));

describe('framePoint', () => {
  const box = { left: 100, top: 50, width: 800, height: 600 }; // 4:3 box
  test('contain: a 16:9 frame is letterboxed above and below', () => {
    // 640x360 scaled to 800x450, 75 px bars above and below.
    assert.deepEqual(framePoint(100, 125, box, 640, 360, 'contain'), { x: 0, y: 0 });
    assert.deepEqual(framePoint(500, 350, box, 640, 360, 'contain'), { x: 0.5, y: 0.5 });
    assert.deepEqual(framePoint(900, 575, box, 640, 360, 'contain'), { x: 1, y: 1 });
    assert.ok(framePoint(500, 60, box, 640, 360, 'contain').y < 0, 'the bar is outside the frame');
  });
  test('contain: a tall frame has bars left and right', () => {
    // 360x640 scaled to 337.5x600, bars of 231.25 px.
    const p = framePoint(100 + 231.25 + 337.5 / 4, 50 + 150, box, 360, 640, 'contain');
    assert.ok(Math.abs(p.x - 0.25) < 1e-9 && Math.abs(p.y - 0.25) < 1e-9, JSON.stringify(p));
  });
  test('cover crops, fill stretches, no frame yet uses the box', () => {
    // cover: 640x360 scaled to 1066.67x600, cropped 133.33 px each side.
    const c = framePoint(100, 350, box, 640, 360, 'cover');
    assert.ok(Math.abs(c.x - 0.125) < 1e-9 && c.y === 0.5, JSON.stringify(c));
    assert.deepEqual(framePoint(300, 200, box, 640, 360, 'fill'), { x: 0.25, y: 0.25 });
    assert.deepEqual(framePoint(300, 200, box, 0, 0, 'contain'), { x: 0.25, y: 0.25 });
  });
});

describe('the catalogue', () => {
  /** @param {number} count entries, apps a0..a4 on servers s0.. */
  function fakeCoordinator(count) {
    const entries = Array.from({ length: count }, (_, i) => ({
      server_name: `s${Math.floor(i / 5)}`,
      ip: '127.0.0.1',
      port: '1',
      rc_info: { rc_name: `a${i % 5}`, info: { description: [{ en: `app ${i % 5}` }, { ru: `прил ${i % 5}` }] } },
    }));
    const asked = [];
    return {
      asked,
      async getServers(/** @type {number} */ from, /** @type {number} */ to) {
        asked.push(`${from}-${to}`);
        return entries.slice(from, to + 1);
      },
    };
  }
  test('is read page by page and each app listed once', async () => {
    const c = fakeCoordinator(23);
    const apps = await loadCatalogue(c);
    assert.deepEqual(c.asked, ['0-9', '10-19', '20-29']);
    assert.deepEqual(apps.map((/** @type {any} */ a) => a.rcName), ['a0', 'a1', 'a2', 'a3', 'a4']);
    assert.equal(PAGE_SIZE, 10);
  });
  test('stops at an empty page', async () => {
    const c = fakeCoordinator(20);
    await loadCatalogue(c);
    assert.deepEqual(c.asked, ['0-9', '10-19', '20-29']);
    const none = fakeCoordinator(0);
    assert.deepEqual(await loadCatalogue(none), []);
  });
  test('descriptions: the page language, else English, else the first', () => {
    const app = { rcName: 'x', descriptions: descriptions([{ ru: 'Рус' }, { en: 'Eng' }, { kk: 'Қаз' }]) };
    assert.equal(describeApp(app, 'kk'), 'Қаз');
    assert.equal(describeApp(app, 'de'), 'Eng');
    assert.equal(describeApp({ rcName: 'y', descriptions: descriptions([{ ru: 'Только' }]) }, 'en'), 'Только');
    assert.equal(describeApp({ rcName: 'z', descriptions: descriptions(undefined) }, 'en'), '');
    assert.deepEqual(descriptions({ en: 'one object', ru: 'тоже' }), [['en', 'one object'], ['ru', 'тоже']]);
  });
});

describe('placeUrl', () => {
  const here = { protocol: 'http:', hostname: '127.0.0.1', port: '8080' };
  test('this server: the relative room path', () => {
    assert.equal(placeUrl({ ip: '127.0.0.1', port: '8080', code: '1234' }, 'http://ignored/r/1234', here), '/r/1234');
    assert.equal(placeUrl({ ip: 'example.org', port: '443', code: '55' }, null, { protocol: 'https:', hostname: 'example.org', port: '' }), '/r/55');
  });
  test('another server: the page its node gave, or one made from ip and port', () => {
    assert.equal(placeUrl({ ip: '10.0.0.2', port: '7000', code: '1234' }, 'https://node2.example/r/1234', here), 'https://node2.example/r/1234');
    assert.equal(placeUrl({ ip: '10.0.0.2', port: '7000', code: '1234' }, 'https://10.0.0.2:7000', here), 'https://10.0.0.2:7000/r/1234');
    assert.equal(placeUrl({ ip: '10.0.0.2', port: '7000', code: '1234' }, null, here), 'http://10.0.0.2:7000/r/1234');
    assert.equal(placeUrl({ ip: '::1', port: '7000', code: '9' }, 'not a url', here), 'http://[::1]:7000/r/9');
  });
});

describe('launch errors', () => {
  test('each failure has its own words, in the tables', () => {
    const cases = [
      [new CoordinatorError('SESSION_NOT_EXIST', ''), 'home.unknown_code'],
      [new ApiError('unknown_code', 'no room'), 'home.unknown_code'],
      [new CoordinatorError('LOCKED_OUT', 'too many', 900), 'home.locked_out'],
      [new CoordinatorError('RATE_LIMITED', 'slow', 2), 'home.rate_limited'],
      [new CoordinatorError('SERVERS_BUSY', ''), 'home.servers_busy'],
      [new CoordinatorError('BAD_CODE', ''), 'home.bad_code'],
      [new CoordinatorError('PLAN_NOT_STARTED', '', 125), 'home.plan_not_started'],
      [new CoordinatorError('network', ''), 'error.network'],
      [new CoordinatorError('LOGIN_REQUIRED', 'log in'), 'home.login_required'],
      [new CoordinatorError('QUOTA_EXCEEDED', 'at most 10 sessions per 24 h'), 'home.quota_exceeded'],
      [new CoordinatorError('DURATION_OVER_QUOTA', 'at most 120 minutes'), 'home.quota_exceeded'],
      [new CoordinatorError('FORBIDDEN', 'no'), 'api.forbidden'],
      [new Error('boom'), 'error.generic'],
    ];
    for (const [error, key] of cases) {
      const explained = explainLaunchError(error, '1234');
      assert.equal(explained.key, key, String(error));
      assert.ok(key in en, key);
    }
    assert.deepEqual(explainLaunchError(new CoordinatorError('LOCKED_OUT', '', 900)).args, { minutes: 15 });
    assert.deepEqual(explainLaunchError(new CoordinatorError('RATE_LIMITED', '', 1.2)).args, { seconds: 2 });
    assert.deepEqual(explainLaunchError(new CoordinatorError('PLAN_NOT_STARTED', '', 125)).args, { minutes: 3 });
    // A quota refusal keeps the server's words: they name the limit.
    assert.equal(explainLaunchError(new CoordinatorError('QUOTA_EXCEEDED', 'at most 10 sessions per 24 h')).detail, 'at most 10 sessions per 24 h');
  });
});

describe('times of planning', () => {
  const instant = '2026-03-29T00:30:00Z'; // Europe/Berlin moves to summer time at 01:00 UTC
  test('an instant as wall-clock time in a time zone', () => {
    assert.deepEqual(localParts(instant, 'Europe/Moscow'), { date: '2026-03-29', time: '03:30' });
    assert.deepEqual(localParts(instant, 'Europe/Berlin'), { date: '2026-03-29', time: '01:30' });
    assert.deepEqual(localParts('2026-03-29T01:30:00Z', 'Europe/Berlin'), { date: '2026-03-29', time: '03:30' });
    assert.deepEqual(localParts(instant, 'America/Los_Angeles'), { date: '2026-03-28', time: '17:30' });
    assert.deepEqual(localParts('2026-01-01T00:00:00Z', 'UTC'), { date: '2026-01-01', time: '00:00' });
  });
  test('today in a time zone, and calendar days', () => {
    const late = new Date('2026-11-22T22:30:00Z');
    assert.equal(todayIn('UTC', late), '2026-11-22');
    assert.equal(todayIn('Asia/Tokyo', late), '2026-11-23');
    assert.equal(todayIn('America/New_York', new Date('2026-11-22T03:00:00Z')), '2026-11-21');
    assert.equal(addDays('2026-12-31', 1), '2027-01-01');
    assert.equal(addDays('2028-03-01', -1), '2028-02-29');
    assert.equal(addDays('2026-03-29', 1), '2026-03-30', 'a DST day is still one calendar day');
  });
  test('formatted in the page language, 24-hour clock, in the zone given', () => {
    assert.equal(formatInstant('2026-11-22T06:00:00Z', 'Europe/Moscow', 'en'), 'Nov 22, 2026, 09:00');
    assert.match(formatInstant('2026-11-22T06:00:00Z', 'Asia/Tokyo', 'ru'), /22 нояб\. 2026.*15:00/);
    assert.equal(formatInstant('not a date', 'UTC', 'en'), 'not a date');
  });
  test('slots are grouped by part of the day, in order, empty parts left out', () => {
    const slots = [
      { start: '05:45', free: true, now: true },
      { start: '06:00', free: false },
      { start: '11:30', free: true },
      { start: '18:00', free: true },
      { start: '23:30', free: true },
    ];
    const groups = groupSlots(slots);
    assert.deepEqual(groups.map((g) => g.part), ['night', 'morning', 'evening']);
    assert.deepEqual(groups.map((g) => g.slots.map((s) => s.start)), [['05:45'], ['06:00', '11:30'], ['18:00', '23:30']]);
    assert.equal(groups[0].slots[0], slots[0], 'the slots themselves are kept');
    assert.deepEqual(groupSlots([]), []);
    for (const part of ['night', 'morning', 'afternoon', 'evening']) assert.ok(`plan.part.${part}` in en, part);
  });
  test('join links are absolute on this origin', () => {
    assert.equal(absoluteLink('/r/4821', 'https://v.example.org'), 'https://v.example.org/r/4821');
    assert.equal(absoluteLink('/r/4821', 'http://127.0.0.1:8080'), 'http://127.0.0.1:8080/r/4821');
    assert.equal(absoluteLink('https://other.example/r/1', 'http://127.0.0.1:8080'), 'https://other.example/r/1');
  });
  test('quota limits: empty is unlimited, else a whole number from the minimum', () => {
    assert.equal(parseLimit(''), null);
    assert.equal(parseLimit('  '), null);
    assert.equal(parseLimit('10'), 10);
    assert.equal(parseLimit(' 0 '), 0);
    assert.ok(Number.isNaN(parseLimit('0', 1)));
    assert.ok(Number.isNaN(parseLimit('-3')));
    assert.ok(Number.isNaN(parseLimit('2.5')));
    assert.ok(Number.isNaN(parseLimit('ten')));
  });
  test('lengths offered stay within the quota, keeping a plan\'s own', () => {
    const values = (/** @type {any[]} */ options) => options.map((o) => Number(o.value));
    assert.deepEqual(values(durationOptions(null)), [15, 30, 45, 60, 90, 120, 180, 240]);
    assert.deepEqual(values(durationOptions(60)), [15, 30, 45, 60]);
    assert.deepEqual(values(durationOptions(60, 90)), [15, 30, 45, 60, 90]);
    assert.deepEqual(values(durationOptions(10)), [10]);
    assert.ok('plan.minutes' in en);
  });
});

describe('account forms', () => {
  test('e-mail, name, password and phone are checked before sending', () => {
    assert.equal(emailProblem('ann@example.org'), null);
    assert.equal(emailProblem('  '), 'signup.email_required');
    assert.equal(emailProblem('ann.example.org'), 'api.bad_email');
    assert.equal(emailProblem('a b@example.org'), 'api.bad_email');
    assert.equal(emailProblem(`${'a'.repeat(250)}@b.cd`), 'api.bad_email');
    assert.equal(nameProblem('Ann'), null);
    assert.equal(nameProblem(' '), 'signup.name_required');
    assert.equal(nameProblem('я'.repeat(100)), null, 'characters, not bytes');
    assert.equal(nameProblem('я'.repeat(101)), 'signup.name_long');
    assert.equal(passwordProblem('123456789'), 'signup.password_short');
    assert.equal(passwordProblem('1234567890'), null);
    assert.equal(passwordProblem('x'.repeat(129)), 'signup.password_long');
    assert.equal(phoneProblem(''), null);
    assert.equal(phoneProblem('+7 (700) 123-45-67'), null);
    assert.equal(phoneProblem('call me'), 'plan.bad_phone');
    assert.equal(phoneProblem('+'.padEnd(33, '1')), 'plan.bad_phone');
    for (const key of ['signup.email_required', 'api.bad_email', 'signup.name_required', 'signup.name_long', 'signup.password_short', 'signup.password_long', 'plan.bad_phone']) {
      assert.ok(key in en, key);
    }
  });
  test('after logging in, only a path of this site is followed', () => {
    assert.equal(nextPath('?next=%2Fadmin'), '/admin');
    assert.equal(nextPath('?next=/plan'), '/plan');
    assert.equal(nextPath(''), '/');
    assert.equal(nextPath('?next=https://evil.example/'), '/');
    assert.equal(nextPath('?next=//evil.example/'), '/');
    assert.equal(nextPath('?next=/\\evil.example/'), '/');
    // What the URL parser drops or folds must not turn a path into another host.
    assert.equal(nextPath('?next=%2F%09%2Fevil.example%2F'), '/');
    assert.equal(nextPath('?next=%2F%0A%2Fevil.example%2F'), '/');
    assert.equal(nextPath('?next=%2F%5C%09evil.example%2F'), '/');
    assert.equal(nextPath('?next=/plans?day=2026-12-07#top'), '/plans?day=2026-12-07#top');
  });
});

describe('API errors', () => {
  test('every code has words in the tables; the server\'s message is kept where it says more', () => {
    for (const [code, [key]] of Object.entries(API_ERRORS)) assert.ok(key in en, `${code}: ${key}`);
    assert.deepEqual(explainApiError(new ApiError('bad_credentials', 'wrong', 401)), { key: 'api.bad_credentials' });
    assert.deepEqual(explainApiError(new ApiError('account_rejected', 'Not one of ours.', 403)), {
      key: 'api.account_rejected',
      args: { reason: 'Not one of ours.' },
    });
    assert.deepEqual(explainApiError(new ApiError('quota_exceeded', 'at most 10 sessions per 24 hours', 403)), {
      key: 'api.quota_exceeded',
      detail: 'at most 10 sessions per 24 hours',
    });
    assert.deepEqual(explainApiError(new ApiError('bad_request', 'customer_phone: not a phone number', 400)).detail, 'customer_phone: not a phone number');
    // The WebSocket's codes, upper case, are understood too.
    assert.equal(explainApiError(new ApiError('SLOT_TAKEN', 'taken', 409)).key, 'api.slot_taken');
    // Unknown codes: by status, else generic, always with the server's words.
    assert.deepEqual(explainApiError(new ApiError('weird', 'who knows', 401)), { key: 'api.not_logged_in' });
    assert.deepEqual(explainApiError(new ApiError('weird', 'not yours', 403)), { key: 'api.forbidden', detail: 'not yours' });
    assert.deepEqual(explainApiError(new ApiError('http_502', 'Bad Gateway', 502)), { key: 'error.generic', detail: 'Bad Gateway' });
    assert.deepEqual(explainApiError(new Error('boom')), { key: 'error.generic', detail: 'boom' });
    assert.equal(explainApiError(new ApiError('network', 'TypeError: failed to fetch', 0)).key, 'error.network');
  });
});
