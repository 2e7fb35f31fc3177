// Recording a call in the browser: the agent (who created the room from the home page) starts
// recording; the guest is told before joining and sees the mark in the call; the agent stops;
// the post-processing's merged file appears in the server's recordings folder and plays.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { joinRoom, launchBrowser, newPerson, screenshot, startServer, waitFor } from './helpers.js';

describe('recording a call', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the agent records, the guest is told before and during the call, the merged file is made', async () => {
    // The agent creates the room from the home page: their tab holds the host key.
    const { page: agent } = await newPerson(browser, server.base);
    await agent.goto(server.base);
    await agent.locator('#create-room').click();
    await agent.waitForURL(/\/r\/\d+$/, { timeout: 20_000 });
    const code = new URL(agent.url()).pathname.split('/').pop() ?? '';
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

    // The post-processing makes the merged file in the recordings folder.
    const root = join(server.dataDir, 'recordings');
    const merged = await waitFor(
      () => {
        if (!existsSync(root)) return null;
        for (const dir of readdirSync(root)) {
          const file = join(root, dir, 'merged.mp4');
          if (existsSync(file)) return file;
        }
        return null;
      },
      { timeout: 120_000, interval: 500, message: 'merged.mp4' },
    );
    const streams = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'csv=p=0', merged]).toString().trim().split('\n');
    assert.deepEqual(streams, ['video', 'audio'], `${merged}: ${streams}`);
    const duration = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', merged]).toString());
    assert.ok(duration > 2, `merged.mp4 lasts ${duration} s`);
  });
});
