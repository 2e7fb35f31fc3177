// The pages around the call: home (create a room, join by code), bad codes, a full room,
// languages (English, Russian, Kazakh) and a phone-sized screen.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createRoom,
  expectVideoFlowing,
  joinRoom,
  launchBrowser,
  newPerson,
  repoRoot,
  screenshot,
  selfId,
  startServer,
} from './helpers.js';

const webDir = join(repoRoot, 'web');
const LANGS = ['en', 'ru', 'kk'];
const tables = Object.fromEntries(LANGS.map((l) => [l, JSON.parse(readFileSync(join(webDir, 'i18n', `${l}.json`), 'utf8'))]));

/** @param {string} dir @returns {string[]} */
function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('translation tables', () => {
  test('have the same keys and plural forms in every language', () => {
    const keys = Object.keys(tables.en).sort();
    for (const lang of LANGS) {
      assert.deepEqual(Object.keys(tables[lang]).sort(), keys, `${lang}.json keys`);
      for (const [key, value] of Object.entries(tables[lang])) {
        if (typeof value === 'object') {
          const needed = new Intl.PluralRules(lang).resolvedOptions().pluralCategories;
          for (const form of needed) assert.ok(form in value || 'other' in value, `${lang} ${key} lacks ${form}`);
        } else {
          assert.ok(value.trim(), `${lang} ${key} is empty`);
          const params = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join();
          const en = tables.en[key];
          if (typeof en === 'string') assert.equal(params(value), params(en), `${lang} ${key} parameters`);
        }
      }
    }
  });

  test('cover every key the client uses', () => {
    const used = new Set();
    for (const file of filesUnder(join(webDir, 'js'))) {
      const source = readFileSync(file, 'utf8');
      const patterns = [
        /\btext: '([a-z_]+\.[a-z0-9_.]+)'/g,
        /\bt\('([a-z_]+\.[a-z0-9_.]+)'/g,
        /set(?:Text|AttrText|Attr)\([^,]+,\s*(?:'[a-z-]+',\s*)?'([a-z_]+\.[a-z0-9_.]+)'/g,
        /'(?:aria-label|title|placeholder)': '([a-z_]+\.[a-z0-9_.]+)'/g,
        /notice\('([a-z_]+\.[a-z0-9_.]+)'/g,
        /\? '([a-z_]+\.[a-z0-9_.]+)' : '([a-z_]+\.[a-z0-9_.]+)'/g,
        /key: '([a-z_]+\.[a-z0-9_.]+)'/g,
      ];
      for (const pattern of patterns) {
        for (const match of source.matchAll(pattern)) for (const key of match.slice(1)) if (key) used.add(key);
      }
    }
    assert.ok(used.size > 60, `found ${used.size} keys`);
    const missing = [...used].filter((key) => !(key in tables.en));
    assert.deepEqual(missing, [], 'keys used in web/js but missing from the tables');
    for (const family of ['device.camera', 'device.mic']) {
      for (const problem of ['not_found', 'denied', 'in_use', 'insecure', 'other']) assert.ok(`${family}.${problem}` in tables.en);
    }
    for (const code of ['unknown_code', 'room_full', 'unavailable', 'invalid_value', 'sdp_error', 'rate_limited', 'too_large']) {
      assert.ok(`error.${code}` in tables.en, `error.${code}`);
    }
  });
});

describe('pages', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer(['--max-participants-per-room', '2']);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('home: create a room, then its link opens the pre-join page', async () => {
    const { page, context } = await newPerson(browser, server.base);
    await page.goto(server.base);
    await page.locator('#create-room').waitFor();
    await screenshot(page, 'home');
    await page.locator('#create-room').click();
    await page.waitForURL(/\/r\/\d{4}$/);
    await page.locator('#join-button').waitFor();
    const code = page.url().split('/').pop();
    assert.match(await page.locator('.card-title').innerText(), new RegExp(`Join room ${code}`));
    assert.match(await page.locator('.room-count').innerText(), /Nobody is in the room yet/);
    // The camera preview is live and mirrored.
    await page.waitForFunction(() => {
      const v = document.querySelector('.preview-video');
      return v instanceof HTMLVideoElement && v.videoWidth > 0 && v.classList.contains('mirrored');
    });
    // An empty name is refused with a message.
    await page.locator('#name').fill('   ');
    await page.locator('#join-button').click();
    assert.match(await page.locator('#join-error').innerText(), /Please type your name/);
    await page.locator('#name').fill('Dana');
    await screenshot(page, 'prejoin');
    await context.close();
  });

  test('home: a wrong code is explained, a good one opens the room', async () => {
    const { page, context } = await newPerson(browser, server.base);
    await page.goto(server.base);
    await page.locator('#join-code').fill('0000');
    await page.locator('.join-form button[type=submit]').click();
    await page.locator('#join-error', { hasText: 'No room has the code 0000' }).waitFor();
    await page.locator('#join-code').fill('12ab');
    await page.locator('.join-form button[type=submit]').click();
    await page.locator('#join-error', { hasText: 'digits only' }).waitFor();
    await screenshot(page, 'home-bad-code');
    const { code } = await createRoom(server.base);
    await page.locator('#join-code').fill(code);
    await page.locator('.join-form button[type=submit]').click();
    await page.waitForURL(new RegExp(`/r/${code}$`));
    await page.locator('#join-button').waitFor();
    await context.close();
  });

  test('a link with an unknown code says so, with a way on', async () => {
    const { page, context } = await newPerson(browser, server.base);
    const response = await page.goto(`${server.base}/r/9999`);
    // The page is the same for every code (it does not tell which are live): its script's
    // lookup, a counted guess, finds out.
    assert.equal(response?.status(), 200);
    await page.locator('.card-title', { hasText: 'Room not found' }).waitFor();
    assert.match(await page.locator('.notice-text').innerText(), /No room has the code 9999/);
    await screenshot(page, 'unknown-room');
    await context.close();
  });

  test('a full room refuses plainly', async () => {
    const { code } = await createRoom(server.base);
    const people = [];
    for (const name of ['One', 'Two']) {
      const person = await newPerson(browser, server.base);
      await joinRoom(person.page, server.base, code, name);
      people.push(person);
    }
    const { page, context } = await newPerson(browser, server.base);
    await page.goto(`${server.base}/r/${code}`);
    await page.locator('#name').fill('Three');
    await page.locator('#join-button').click();
    await page.locator('#join-error', { hasText: 'The room is full' }).waitFor({ timeout: 15_000 });
    assert.match(await page.locator('#join-error').innerText(), /full/);
    await screenshot(page, 'room-full');
    await context.close();
    for (const person of people) await person.context.close();
  });

  test('languages: picked from the browser, switched in the page, remembered', async () => {
    // A Kazakh browser gets Kazakh.
    const kk = await newPerson(browser, server.base, { locale: 'kk-KZ' });
    await kk.page.goto(server.base);
    await kk.page.locator('#create-room', { hasText: tables.kk['home.create'] }).waitFor();
    assert.equal(await kk.page.evaluate(() => document.documentElement.lang), 'kk');
    assert.equal(await kk.page.title(), tables.kk['app.title']);
    await screenshot(kk.page, 'home-kazakh');
    await kk.context.close();

    // An English one switches to Russian, and the choice survives a reload.
    const { page, context } = await newPerson(browser, server.base);
    await page.goto(server.base);
    await page.locator('#create-room', { hasText: 'Create a room' }).waitFor();
    await page.locator('.lang-select').selectOption('ru');
    await page.locator('#create-room', { hasText: tables.ru['home.create'] }).waitFor();
    const text = await page.locator('body').innerText();
    for (const key of ['home.title', 'home.tagline', 'home.join_label', 'home.or']) assert.ok(text.includes(tables.ru[key]), key);
    assert.equal(await page.locator('#join-code').getAttribute('placeholder'), tables.ru['home.code_placeholder']);
    // No English left on the page (the brand name and language names aside).
    for (const [key, value] of Object.entries(tables.en)) {
      if (typeof value !== 'string' || key.startsWith('language.') || key === 'app.name') continue;
      assert.ok(!text.includes(value), `English "${value}" still shown`);
    }
    await page.reload();
    await page.locator('#create-room', { hasText: tables.ru['home.create'] }).waitFor();
    await screenshot(page, 'home-russian');

    // In a call, switching language changes the controls in place; video keeps playing.
    const { code } = await createRoom(server.base);
    await joinRoom(page, server.base, code, 'Айгүл');
    const other = await newPerson(browser, server.base);
    await joinRoom(other.page, server.base, code, 'Иван');
    await page.locator('#control-leave .control-label', { hasText: tables.ru['call.leave'] }).waitFor();
    assert.equal(await page.locator('.call-count').innerText(), '2 участника');
    await page.locator('.lang-select').selectOption('kk');
    await page.locator('#control-leave .control-label', { hasText: tables.kk['call.leave'] }).waitFor();
    for (const key of ['call.mic_off', 'call.camera_off', 'call.chat', 'call.people', 'call.quality']) {
      assert.equal(await page.locator('.controls').getByText(tables.kk[key], { exact: true }).count(), 1, key);
    }
    assert.equal(await page.locator('.tile[data-self="true"] .tile-name').innerText(), 'Айгүл (сіз)');
    await expectVideoFlowing(page, await selfId(other.page));
    await screenshot(page, 'call-kazakh');
    await other.context.close();
    await context.close();
  });

  test('a phone-sized screen (390x844) lays the call out to fit', async () => {
    const { code } = await createRoom(server.base);
    const phone = await newPerson(browser, server.base, {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
      userAgent:
        'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36',
    });
    await phone.page.goto(`${server.base}/r/${code}`);
    await phone.page.locator('#join-button').waitFor();
    await screenshot(phone.page, 'phone-prejoin');
    await phone.page.locator('#name').fill('Phone');
    await phone.page.locator('#join-button').click();
    await phone.page.locator('.call #grid').waitFor();
    const desk = await newPerson(browser, server.base);
    await joinRoom(desk.page, server.base, code, 'Desk');
    await expectVideoFlowing(phone.page, await selfId(desk.page));
    await phone.page.locator(`.tile[data-video="on"][data-self="false"]`).waitFor();

    const layout = await phone.page.evaluate(() => {
      const rect = (/** @type {string} */ sel) => document.querySelector(sel)?.getBoundingClientRect().toJSON();
      return {
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
        innerHeight: window.innerHeight,
        controls: rect('.controls'),
        buttons: [...document.querySelectorAll('.controls .control')].filter((b) => !b.hidden).map((b) => b.getBoundingClientRect().toJSON()),
        tiles: [...document.querySelectorAll('.tile')].map((t) => t.getBoundingClientRect().toJSON()),
        screenButton: !/** @type {HTMLElement} */ (document.querySelector('#control-screen')).hidden,
      };
    });
    assert.ok(layout.scrollWidth <= layout.innerWidth, `no sideways scrolling (${layout.scrollWidth} > ${layout.innerWidth})`);
    assert.ok(layout.controls.bottom <= layout.innerHeight + 1, 'the controls are on screen');
    for (const b of layout.buttons) {
      assert.ok(b.left >= 0 && b.right <= layout.innerWidth + 1, 'every control is on screen');
      assert.ok(b.width >= 40 && b.height >= 40, `controls are big enough to touch (${b.width}x${b.height})`);
    }
    assert.equal(layout.screenButton, false, 'no screen sharing on phones');
    assert.equal(layout.tiles.length, 2);
    // Two people on a tall screen: one above the other, each using the width.
    const [a, b] = layout.tiles;
    assert.ok(Math.abs(a.left - b.left) < 2 && a.width > 300, `tiles stacked: ${JSON.stringify(layout.tiles)}`);
    await screenshot(phone.page, 'phone-call');
    await phone.page.locator('#control-chat').click();
    await phone.page.locator('#chat-input').fill('Hello from the phone');
    await phone.page.locator('#chat-input').press('Enter');
    await phone.page.locator('.chat-message.own').waitFor();
    await screenshot(phone.page, 'phone-chat');
    await desk.context.close();
    await phone.context.close();
  });
});
