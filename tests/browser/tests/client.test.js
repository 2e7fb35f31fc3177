// The browser client's pure logic, run in Node without a browser: where a pointer falls in a
// letterboxed video frame, paging and de-duplicating the coordinator's catalogue, picking a
// description's language, where a session's room page is, and the words for each failure.

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
  });
});
