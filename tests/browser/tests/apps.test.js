// App sessions against `orbita serve` and its default catalogue (a plain video room and the
// demo app, which needs ffmpeg): the home page lists the coordinator's apps with descriptions
// in the page's language; starting the demo app opens its room with the app's video large and
// the starter holding control; the holder's pointer and keys reach the app (its JSON event
// lines on the server's stdout say so), a second person's do not, until the holder hands
// control over from the people list.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { expectVideoFlowing, launchBrowser, newPerson, screenshot, during, selfId, startServer, stats, waitFor } from './helpers.js';

/** A phone, for the second person. */
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36',
};

/**
 * The catalogue as the coordinator gives it, asked from inside the page (one entry per app).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{rc_name: string, info: {description: Record<string, string>[]}}[]>}
 */
function coordinatorCatalogue(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`ws://${location.host}/coordinator`);
        ws.onerror = () => reject(new Error('no coordinator'));
        ws.onmessage = (event) => {
          const msg = JSON.parse(event.data);
          if (msg.msg === 'WELCOME') ws.send(JSON.stringify({ verb: 'GET_SERVERS', range: '0-99' }));
          else if (msg.msg === 'SERVERS_FOUND') {
            ws.close();
            resolve(msg.servers.map((/** @type {any} */ s) => s.rc_info));
          } else reject(new Error(event.data));
        };
      }),
  );
}

/**
 * The description of an app in one language, from the coordinator's catalogue.
 * @param {{info: {description: Record<string, string>[]}}} rc
 * @param {string} lang
 */
function descriptionIn(rc, lang) {
  return rc.info.description.find((d) => lang in d)?.[lang];
}

/**
 * Where a point of the app's video frame (0..1) is on the page, the letterboxing of
 * `object-fit: contain` taken into account.
 * @param {import('playwright-core').Page} page
 * @param {number} fx
 * @param {number} fy
 */
async function framePoint(page, fx, fy) {
  const geometry = await page.locator('.tile.app video').evaluate((/** @type {HTMLVideoElement} */ v) => {
    const r = v.getBoundingClientRect();
    return { left: r.left, top: r.top, width: r.width, height: r.height, vw: v.videoWidth, vh: v.videoHeight, fit: getComputedStyle(v).objectFit };
  });
  assert.equal(geometry.fit, 'contain');
  const scale = Math.min(geometry.width / geometry.vw, geometry.height / geometry.vh);
  const w = geometry.vw * scale;
  const h = geometry.vh * scale;
  return { x: geometry.left + (geometry.width - w) / 2 + fx * w, y: geometry.top + (geometry.height - h) / 2 + fy * h };
}

/**
 * The process id of a child of `parent` whose command line contains `word` (from /proc).
 * @param {number} parent
 * @param {string} word
 */
function childProcess(parent, word) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(word)) return Number(entry);
    } catch {
      // It ended meanwhile.
    }
  }
  return null;
}

describe('app sessions', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let alice;
  /** @type {import('playwright-core').Page} */
  let bob;
  let code = '';
  let appId = '';
  let bobId = '';

  /**
   * The demo app's `input_applied` events so far (its JSON lines on the server's stdout).
   * @returns {{event: string, input: any, frame: number}[]}
   */
  function applied() {
    return server
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"input_applied"'))
      .map((line) => JSON.parse(line));
  }

  /**
   * Wait until the app applied an input matching `match` after the first `since` events.
   * @param {number} since
   * @param {(input: any) => boolean} match
   * @param {string} message
   */
  function expectApplied(since, match, message) {
    return waitFor(() => applied().slice(since).find((e) => match(e.input)), { timeout: 30_000, message });
  }

  /** @param {number} a @param {number} b */
  const near = (a, b) => Math.abs(a - b) < 0.02;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the home page lists the apps, described in the page\'s language', async () => {
    const { page, context } = await newPerson(browser, server.base);
    await page.goto(server.base);
    const catalogue = await coordinatorCatalogue(page);
    const names = catalogue.map((rc) => rc.rc_name).sort();
    assert.deepEqual(names, ['demo', 'video-room']);
    await waitFor(async () => (await page.locator('#app-list .app-option').count()) === 2, { message: 'two apps listed' });
    const described = async (/** @type {string} */ lang) => {
      for (const rc of catalogue) {
        const text = descriptionIn(rc, lang);
        assert.ok(text, `${rc.rc_name} has a ${lang} description`);
        await page.locator(`.app-option[data-app="${rc.rc_name}"] .app-description`, { hasText: text }).waitFor({ timeout: 5_000 });
      }
    };
    await described('en');
    await page.locator('.app-option[data-app="demo"] .app-name', { hasText: 'Demo app' }).waitFor();
    // The plain room is picked first: the button makes a room, as before.
    assert.equal(await page.locator('.app-option[data-app="video-room"] input').isChecked(), true);
    await page.locator('#create-room', { hasText: 'Create a room' }).waitFor();
    await page.locator('.app-option[data-app="demo"]').click();
    await page.locator('#create-room', { hasText: 'Start now' }).waitFor();
    await screenshot(page, 'apps-home');

    await page.locator('.lang-select').selectOption('ru');
    await described('ru');
    await page.locator('#create-room', { hasText: 'Запустить' }).waitFor();
    await page.locator('.lang-select').selectOption('kk');
    await described('kk');
    await screenshot(page, 'apps-home-kazakh');
    await context.close();

    const phone = await newPerson(browser, server.base, PHONE);
    await phone.page.goto(server.base);
    await phone.page.locator('.app-option[data-app="demo"]').waitFor();
    const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling on a phone (${width})`);
    await screenshot(phone.page, 'apps-home-phone');
    await phone.context.close();
  });

  test('starting the demo app: its video plays large, and the starter holds control', async () => {
    ({ page: alice } = await newPerson(browser, server.base));
    await alice.goto(server.base);
    await alice.locator('.app-option[data-app="demo"]').click();
    await alice.locator('#create-room', { hasText: 'Start now' }).click();
    await alice.waitForURL(/\/r\/\d+$/, { timeout: 30_000 });
    code = alice.url().split('/').pop() ?? '';
    await alice.locator('#name').fill('Alice');
    await alice.locator('#join-button').click();
    await alice.locator('.call #grid').waitFor({ timeout: 30_000 });
    await waitFor(() => alice.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'Alice connected' });

    appId = await waitFor(
      () => alice.evaluate(() => [...(window.__orbita.session?.participants.values() ?? [])].find((p) => p.ingest)?.id ?? null),
      { timeout: 60_000, message: 'the app in the room' },
    );
    const seen = await expectVideoFlowing(alice, appId);
    console.log(`app video: ${seen.first.framesDecoded} -> ${seen.second.framesDecoded} frames decoded (${seen.second.frameWidth}x${seen.second.frameHeight})`);
    await waitFor(
      () => alice.locator('.tile.app video').evaluate((/** @type {HTMLVideoElement} */ v) => v.videoWidth === 640 && v.videoHeight === 360),
      { timeout: 30_000, message: 'the app video element at 640x360' },
    );

    // The app is the large tile, labelled as the app; the starter holds control.
    const sizes = await alice.evaluate(() => {
      const area = (/** @type {string} */ sel) => {
        const r = document.querySelector(sel)?.getBoundingClientRect();
        return r ? r.width * r.height : 0;
      };
      return { app: area('.tile.app'), self: area('.tile[data-self="true"]') };
    });
    assert.ok(sizes.app > sizes.self * 2, `the app tile is the large one (${JSON.stringify(sizes)})`);
    assert.equal(await alice.locator('.tile.app .tile-name').innerText(), 'App');
    assert.equal(await alice.locator('.tile.app').getAttribute('tabindex'), '0');
    await alice.locator('#control-status', { hasText: 'You have control' }).waitFor({ timeout: 10_000 });
    await alice.locator('.tile.app[data-control="you"]').waitFor();
    assert.equal(await alice.locator('.call-count').innerText(), '1 person');
    await screenshot(alice, 'apps-room');
  });

  test('the holder\'s pointer and keys reach the app', async () => {
    let since = applied().length;
    const target = await framePoint(alice, 0.25, 0.75);
    await alice.mouse.move(target.x - 40, target.y - 20);
    await alice.mouse.move(target.x, target.y, { steps: 8 });
    const moved = await expectApplied(since, (i) => i.type === 'pointer' && near(i.x, 0.25) && near(i.y, 0.75), 'the pointer at (0.25, 0.75) applied');
    console.log(`input applied: ${JSON.stringify(moved)}`);

    since = applied().length;
    await alice.mouse.down();
    await expectApplied(since, (i) => i.type === 'pointer' && i.buttons === 1, 'a button press applied');
    await alice.mouse.up();
    await expectApplied(since, (i) => i.type === 'pointer' && i.buttons === 0, 'the release applied');
    // The press focused the tile: keys go to the app.
    assert.ok(await alice.locator('.tile.app').evaluate((el) => el === document.activeElement));
    since = applied().length;
    await alice.keyboard.press('ArrowLeft');
    await expectApplied(since, (i) => i.type === 'key' && i.key === 'ArrowLeft' && i.down === true, 'a key press applied');
    await expectApplied(since, (i) => i.type === 'key' && i.key === 'ArrowLeft' && i.down === false, 'the key release applied');

    // Moves are throttled: at most one per 50 ms, however many the mouse makes.
    const start = await framePoint(alice, 0.1, 0.1);
    const end = await framePoint(alice, 0.9, 0.9);
    since = applied().length;
    await alice.mouse.move(start.x, start.y);
    await expectApplied(since, (i) => i.type === 'pointer' && near(i.x, 0.1) && near(i.y, 0.1), 'the start of the sweep applied');
    const sent = (await stats(alice)).inputsSent;
    const began = Date.now();
    await alice.mouse.move(end.x, end.y, { steps: 60 });
    // The last position goes out too (at the end of its throttle window) and is applied.
    await expectApplied(since, (i) => i.type === 'pointer' && near(i.x, 0.9) && near(i.y, 0.9), 'the last position of the sweep applied');
    const elapsed = Date.now() - began;
    const sweep = (await stats(alice)).inputsSent - sent;
    console.log(`a 60-step sweep in ${elapsed} ms sent ${sweep} moves`);
    assert.ok(sweep >= 1 && sweep <= Math.ceil(elapsed / 50) + 1, `the sweep sent ${sweep} moves in ${elapsed} ms`);
    // Off the app, nothing more is sent.
    await alice.mouse.move(5, 5);
  });

  test('a second person joins by code without control: their pointer sends nothing', async () => {
    ({ page: bob } = await newPerson(browser, server.base, PHONE));
    await bob.goto(server.base);
    await bob.locator('#join-code').fill(code);
    await bob.locator('.join-form button[type=submit]').click();
    await bob.waitForURL(new RegExp(`/r/${code}$`), { timeout: 30_000 });
    await bob.locator('#name').fill('Bob');
    await bob.locator('#join-button').click();
    await bob.locator('.call #grid').waitFor({ timeout: 30_000 });
    await waitFor(() => bob.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'Bob connected' });
    bobId = await selfId(bob);
    await expectVideoFlowing(bob, appId);

    await bob.locator('.tile.app[data-control="other"] .app-control-text', { hasText: 'Alice has control' }).waitFor({ timeout: 10_000 });
    await alice.locator('#control-status', { hasText: 'You have control' }).waitFor();
    const before = applied().length;
    for (const [fx, fy] of [[0.2, 0.2], [0.5, 0.5], [0.8, 0.3]]) {
      const p = await framePoint(bob, fx, fy);
      await bob.mouse.move(p.x, p.y, { steps: 4 });
    }
    await bob.mouse.down();
    await bob.mouse.up();
    // Nothing goes out, not even at the end of a throttle window (50 ms).
    await during(300);
    assert.equal((await stats(bob)).inputsSent, 0, 'Bob sent no input');
    assert.equal(applied().length, before, 'no input applied from Bob');
    await screenshot(bob, 'apps-room-phone');
  });

  test('the holder gives control from the people list; then the other\'s input is applied', async () => {
    await alice.locator('#control-people').click();
    // The app is listed, but cannot be given control.
    await alice.locator(`.person[data-participant="${appId}"]`).waitFor();
    assert.equal(await alice.locator(`.person[data-participant="${appId}"] .give-control`).count(), 0);
    const give = alice.locator(`.person[data-participant="${bobId}"] .give-control`);
    assert.equal(await give.getAttribute('type'), 'button');
    assert.match(await give.innerText(), /Give control/);
    await screenshot(alice, 'apps-people');
    await give.click();

    await bob.locator('.tile.app[data-control="you"]').waitFor({ timeout: 10_000 });
    await alice.locator('#control-status', { hasText: 'Bob has control' }).waitFor({ timeout: 10_000 });
    await alice.locator(`.person[data-participant="${bobId}"][data-control="true"]`).waitFor();
    assert.equal(await alice.locator('.give-control').count(), 0, 'no "Give control" once given');

    let since = applied().length;
    const p = await framePoint(bob, 0.6, 0.4);
    await bob.mouse.move(p.x - 10, p.y + 10);
    await bob.mouse.move(p.x, p.y, { steps: 5 });
    await expectApplied(since, (i) => i.type === 'pointer' && near(i.x, 0.6) && near(i.y, 0.4), 'Bob\'s pointer at (0.6, 0.4) applied');
    since = applied().length;
    const t = await framePoint(bob, 0.3, 0.6);
    await bob.touchscreen.tap(t.x, t.y);
    await expectApplied(since, (i) => i.type === 'touch' && near(i.x, 0.3) && near(i.y, 0.6), 'Bob\'s touch applied');

    // Alice no longer sends anything.
    const aliceSent = (await stats(alice)).inputsSent;
    since = applied().length;
    const q = await framePoint(alice, 0.5, 0.5);
    await alice.mouse.move(q.x, q.y, { steps: 4 });
    await during(300); // longer than a throttle window (50 ms): a late send would show
    assert.equal((await stats(alice)).inputsSent, aliceSent, 'Alice sent no input after giving control');
    assert.ok(!applied().slice(since).some((e) => e.input.type === 'pointer' && near(e.input.x, 0.5) && near(e.input.y, 0.5)));
    await screenshot(bob, 'apps-room-phone-control');
  });

  test('when the app stops, the people in its session are told why', async () => {
    const app = childProcess(server.pid, 'demo-app');
    assert.ok(app, 'the demo app runs as a child of the server');
    process.kill(app, 'SIGKILL'); // the app crashes: its session ends (app_exit "end")
    for (const page of [alice, bob]) {
      await page.locator('#end-screen', { hasText: `The app stopped, so the session ${code} has ended.` }).waitFor({ timeout: 30_000 });
      const reason = await page.evaluate(() => window.__orbita.session?.appStopped);
      assert.ok(typeof reason === 'string' && reason.length > 0, `the reason is kept (${reason})`);
      await page.locator('#end-screen .error-detail', { hasText: reason }).waitFor();
    }
    await screenshot(bob, 'apps-ended-phone');
  });
});
