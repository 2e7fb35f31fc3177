// Recording a call in the browser: the agent (logged in, who created the room from the home
// page) starts recording; the guest is told before joining and sees the mark in the call; the
// agent stops; the merged file appears in the agent's list of recordings and downloads.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { joinRoom, launchBrowser, loginAndCreateRoom, newPerson, screenshot, startServer, waitFor } from './helpers.js';

const AGENT = { email: 'agent-admin@orbita.test', password: 'agent-admin-password-1' };

describe('recording a call', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    // Accounts on: the first administrator is the agent who creates the call.
    server = await startServer([], {
      accounts: true,
      env: { ORBITA_ADMIN_EMAIL: AGENT.email, ORBITA_ADMIN_PASSWORD: AGENT.password },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the agent records, the guest is told before and during the call, the merged file is listed and downloads', async () => {
    // The agent logs in and creates the room from the home page: their tab holds the host key.
    const { page: agent } = await newPerson(browser, server.base);
    const code = await loginAndCreateRoom(agent, server.base, AGENT);
    assert.ok(!agent.url().includes('key'), 'the address bar never shows the host key');
    await agent.locator('#name').fill('Agent');
    await agent.locator('#join-button').click();
    await agent.locator('.call #grid').waitFor({ timeout: 20_000 });
    await waitFor(() => agent.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'agent connected' });
    assert.equal(await agent.evaluate(() => window.__orbita.session.role), 'agent');
    assert.equal(await agent.locator('#recording-status').isHidden(), true, 'not recorded yet');

    // Record.
    await agent.locator('#control-record').click();
    await agent.locator('#recording-status', { hasText: 'Recording' }).waitFor({ timeout: 20_000 });
    await agent.locator('#control-record[aria-pressed="true"]').waitFor();

    // The guest learns it on the pre-join page, then sees the mark in the call, and has no
    // record button.
    const { page: guest } = await newPerson(browser, server.base, { locale: 'ru-RU' });
    await guest.goto(`${server.base}/r/${code}`);
    await guest.locator('#recorded-notice', { hasText: 'записывается' }).waitFor({ timeout: 20_000 });
    await screenshot(guest, 'recording-prejoin-guest');
    await joinRoom(guest, server.base, code, 'Guest');
    await guest.locator('#recording-status').waitFor({ state: 'visible' });
    assert.equal(await guest.evaluate(() => window.__orbita.session.role), 'customer');
    assert.equal(await guest.locator('#control-record').isHidden(), true, 'only the agent records');
    // Some seconds of call: until the agent has decoded the guest's video for a while.
    await waitFor(
      async () => {
        const frames = await agent.evaluate(async () => {
          const pc = window.__orbita.session?.subscriber?.pc;
          if (!pc) return 0;
          let n = 0;
          for (const s of (await pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') n += s.framesDecoded ?? 0;
          return n;
        });
        return frames >= 90;
      },
      { timeout: 30_000, message: 'the agent decodes the guest' },
    );
    await screenshot(agent, 'recording-call-agent');

    // Stop: both are told.
    await agent.locator('#control-record').click();
    await agent.locator('#recording-status').waitFor({ state: 'hidden', timeout: 20_000 });
    await guest.locator('#recording-status').waitFor({ state: 'hidden', timeout: 20_000 });

    // Both leave; the agent's list of recordings shows the call, ready, with its merged file.
    await guest.locator('#control-leave').click();
    await agent.locator('#control-leave').click();
    const page = agent;
    const item = page.locator(`.recording-item[data-state="ready"]`);
    await waitFor(
      async () => {
        await page.goto(`${server.base}/recordings`);
        // Loaded: a row, or the status line saying there is none (or why not).
        await page.waitForFunction(
          () => Boolean(document.querySelector('#recording-list')?.children.length || document.querySelector('#recordings-status')?.textContent),
          null,
          { timeout: 10_000 },
        );
        return (await item.count()) === 1;
      },
      { timeout: 120_000, interval: 1_000, message: 'the recording listed, ready' },
    );
    assert.match(await item.locator('.recording-room').innerText(), new RegExp(code));
    // The agent here is the administrator: the disk the recordings take is shown.
    assert.match(await page.locator('#recordings-usage').innerText(), /Recordings take \d.* of disk\. Recorders in use: 0 of 4\./);
    await screenshot(page, 'recording-list-agent');
    // The merged file is listed; when it is not, the post-processing's notes say why.
    const files = await item.locator('a.recording-file').evaluateAll((links) => links.map((a) => new URL(a.href).pathname.split('/').pop()));
    if (!files.includes('merged.mp4')) {
      const recordings = join(server.dataDir, 'recordings');
      const jobs = readdirSync(recordings).map((d) => {
        const folder = join(recordings, d);
        return { folder: readdirSync(folder), job: existsSync(join(folder, 'job.json')) ? readFileSync(join(folder, 'job.json'), 'utf8') : null };
      });
      assert.fail(`no merged.mp4 listed (files: ${files}); the recordings: ${JSON.stringify(jobs)}`);
    }
    const [download] = await Promise.all([page.waitForEvent('download'), item.locator('a[href*="/merged.mp4?grant="]').click()]);
    const merged = join(tmpdir(), `orbita-${process.pid}-${download.suggestedFilename()}`);
    await download.saveAs(merged);
    assert.match(download.suggestedFilename(), /merged\.mp4$/);
    const streams = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', merged]).toString().trim().split('\n');
    assert.deepEqual(streams, ['video', 'audio'], `${merged}: ${streams}`);
    const duration = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', merged]).toString());
    assert.ok(duration > 2, `merged.mp4 lasts ${duration} s`);

    // Another server of a cluster is opened with the coordinator's grant in the link's fragment
    // (a page may fetch only from its own server): no login there, the same list, the grant
    // gone from the address at once.
    const grant = await page.evaluate(async () => (await (await fetch('/api/recordings/grant')).json()).grant);
    const { page: elsewhere } = await newPerson(browser, server.base);
    await elsewhere.goto(`${server.base}/recordings#grant=${encodeURIComponent(grant)}`);
    await elsewhere.locator('.recording-item[data-state="ready"] a[href*="merged.mp4?grant="]').waitFor({ timeout: 15_000 });
    assert.equal(new URL(elsewhere.url()).hash, '', 'the grant is not kept in the address');
    assert.equal(await elsewhere.locator('#page-refused').count(), 0, 'no login asked');
  });
});
