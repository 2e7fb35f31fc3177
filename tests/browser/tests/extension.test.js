// The end of a planned session in the room page: an administrator plans a 5-minute call
// starting now (so it is at once inside the coordinator's 10-minute extension window); a guest
// opens its link and joins; the page is offered the extension (the time after the slot is
// free), extends it, and the plan's end moves 15 minutes later.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { joinRoom, launchBrowser, newPerson, screenshot, startServer, waitFor } from './helpers.js';

const ADMIN = { email: 'root@orbita.test', password: 'admin-password-1' };

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer([], {
    accounts: true,
    env: { ORBITA_ADMIN_EMAIL: ADMIN.email, ORBITA_ADMIN_PASSWORD: ADMIN.password },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * A request to the API from inside a page (with its cookie).
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
function api(page, method, path, body) {
  return page.evaluate(
    async ([m, p, b]) => {
      const response = await fetch(p, {
        method: m,
        headers: b === undefined ? {} : { 'content-type': 'application/json' },
        body: b === undefined ? undefined : JSON.stringify(b),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    [method, path, body],
  );
}

test('a guest in a planned session near its end is offered the extension and extends it', async () => {
  const admin = await newPerson(browser, server.base);
  await admin.page.goto(`${server.base}/`);
  const login = await api(admin.page, 'POST', '/api/auth/login', ADMIN);
  assert.equal(login.status, 200, JSON.stringify(login.body));

  // A 5-minute call from the current minute (UTC); again if the minute turned meanwhile.
  let planned;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const now = new Date().toISOString();
    planned = await api(admin.page, 'POST', '/api/plans', {
      rc_name: 'video-room',
      date: now.slice(0, 10),
      time: now.slice(11, 16),
      tz: 'UTC',
      duration_minutes: 5,
      customer_name: 'Late Guest',
    });
    if (planned.status !== 400 || planned.body?.error !== 'slot_in_past') break;
  }
  assert.equal(planned.status, 201, JSON.stringify(planned.body));
  const { code, end_utc: endBefore } = planned.body.plan ?? planned.body;
  assert.match(code, /^\d+$/);

  const guest = await newPerson(browser, server.base);
  await joinRoom(guest.page, server.base, code, 'Guest');
  const banner = guest.page.locator('[data-testid="session-end"]');
  await banner.waitFor({ timeout: 20_000 });
  const text = await banner.textContent();
  assert.match(text ?? '', /ends at/, text ?? '');
  await screenshot(guest.page, 'extension-offered');

  await banner.getByRole('button', { name: 'Extend' }).click();
  await guest.page.locator('.toast', { hasText: 'extended until' }).waitFor({ timeout: 10_000 });
  await waitFor(async () => !(await banner.isVisible()), { message: 'the offer goes away' });

  const plans = await api(admin.page, 'GET', '/api/plans?scope=all');
  assert.equal(plans.status, 200, JSON.stringify(plans.body));
  const plan = plans.body.plans.find((p) => p.code === code);
  assert.ok(plan, JSON.stringify(plans.body));
  assert.equal(Date.parse(plan.end_utc) - Date.parse(endBefore), 15 * 60_000, `${endBefore} -> ${plan.end_utc}`);
  await screenshot(guest.page, 'extension-granted');
  await guest.context.close();
  await admin.context.close();
});
