// The first run: `orbita serve` with no administrator prints a one-time setup link on its
// console; opening it in a browser creates the administrator, who lands logged in on the
// administration page. The link never works again.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, newPerson, screenshot, startServer } from './helpers.js';

describe('the first run', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer([], { accounts: true });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the printed link creates the administrator, once', async () => {
    const match = server.stdout().match(/No administrator yet\. Open this link to create one \(it works once\):\n\s+(http:\/\/\S+\/setup\?token=([0-9a-f]{64}))\n/);
    assert.ok(match, `the console shows the setup link:\n${server.stdout()}`);
    const [, link, token] = match;
    assert.ok(link.startsWith(server.base), link);
    const post = (body) => fetch(`${server.base}/api/setup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    // Without the token, or with another, nothing is made.
    const wrong = await post({ token: 'a'.repeat(64), email: 'eve@example.com', password: 'eve wants in, badly' });
    assert.equal(wrong.status, 403);
    assert.equal((await wrong.json()).error, 'bad_setup_token');
    const { page } = await newPerson(browser, server.base);
    await page.goto(`${server.base}/setup`);
    await page.locator('#setup-no-token').waitFor();

    await page.goto(link);
    await page.locator('#setup-form').waitFor();
    await page.locator('#setup-email').fill('root@example.com');
    await page.locator('#setup-password').fill('short');
    await page.locator('#setup-password-again').fill('short');
    await page.locator('#setup-submit').click();
    assert.equal(await page.locator('#setup-password').getAttribute('aria-invalid'), 'true', 'a short password is refused in the page');
    await page.locator('#setup-password').fill('the first administrator');
    await page.locator('#setup-password-again').fill('the first administrator');
    await screenshot(page, 'setup-form');
    await page.locator('#setup-submit').click();
    await page.waitForURL(`${server.base}/admin`, { timeout: 15_000 });
    // Logged in as the administrator: the administration page shows, and the login says who.
    await page.locator('#admin-users, .admin-page, main h1').first().waitFor({ timeout: 10_000 });
    const me = await page.evaluate(() => fetch('/api/auth/me').then((r) => r.json()));
    assert.equal(me.user.role, 'admin');
    assert.equal(me.user.email, 'root@example.com');
    await screenshot(page, 'setup-admin');

    // The link is spent: the page says so, and the API refuses it.
    const { page: later } = await newPerson(browser, server.base);
    await later.goto(link);
    await later.locator('#setup-done').waitFor();
    assert.equal(await later.locator('#setup-form').count(), 0);
    await screenshot(later, 'setup-done');
    const again = await post({ token, email: 'second@example.com', password: 'another administrator' });
    assert.equal(again.status, 410);
    assert.equal((await again.json()).error, 'setup_done');
    const login = await fetch(`${server.base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'second@example.com', password: 'another administrator' }) });
    assert.equal(login.status, 401, 'no second administrator was made');
  });
});
