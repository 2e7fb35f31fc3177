// Files in the call's chat, in Chromium: a customer sends a 100 MB file to the agent with the
// progress shown; its upload is cut halfway and resumes from what arrived; the agent downloads
// the same bytes (SHA-256). A file one byte over the limit is refused with a message. A picture
// shows as a thumbnail. Someone in another call cannot fetch the file.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRoom, joinRoom, launchBrowser, newPerson, screenshot, startServer, waitFor } from './helpers.js';

const MB = 1024 * 1024;
/** The server's default limit: 100 MB. */
const LIMIT = 100 * MB;

/** @param {Buffer} bytes */
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

describe('files in the chat', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  const dir = mkdtempSync(join(tmpdir(), 'orbita-files-test-'));
  const big = join(dir, 'site-survey.bin');
  const tooBig = join(dir, 'too-big.bin');
  const picture = join(dir, 'meter.png');
  /** @type {string} */
  let bigHash;

  before(async () => {
    const bytes = randomBytes(LIMIT);
    writeFileSync(big, bytes);
    bigHash = sha256(bytes);
    // One byte over the limit (sparse: it is never read).
    closeSync(openSync(tooBig, 'w'));
    truncateSync(tooBig, LIMIT + 1);
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a 100 MB file goes to the agent with progress, resumes after a cut and arrives whole', async () => {
    const { code } = await createRoom(server.base);
    const { page: agent } = await newPerson(browser, server.base);
    const { page: customer } = await newPerson(browser, server.base);
    await joinRoom(agent, server.base, code, 'Agent');
    await joinRoom(customer, server.base, code, 'Customer');
    await customer.locator('#control-chat').click();
    await agent.locator('#control-chat').click();

    // The customer's browser loses its connection in the middle of the upload: the seventh
    // piece (8 MB each) never reaches the server.
    /** @type {{method: string, offset: string | null}[]} */
    const requests = [];
    let patches = 0;
    await customer.route('**/api/uploads/**', async (route) => {
      const request = route.request();
      requests.push({ method: request.method(), offset: request.headers()['upload-offset'] ?? null });
      if (request.method() === 'PATCH' && ++patches === 7) await route.abort('connectionreset');
      else await route.continue();
    });

    await customer.locator('#chat-file').setInputFiles(big);
    // The progress is shown as it goes.
    const line = customer.locator('.chat-upload');
    await waitFor(async () => Number(await line.locator('progress').getAttribute('value').catch(() => 0)) > 0 || (await agent.locator('.chat-file').count()) > 0, {
      timeout: 60_000,
      interval: 50,
      message: 'the progress bar moves',
    });
    await screenshot(customer, 'files-upload-progress');

    // The agent gets it in the chat, and downloads the same bytes.
    const item = agent.locator('.chat-file');
    await item.waitFor({ timeout: 120_000 });
    assert.equal(await item.getAttribute('data-sha256'), bigHash, 'the server hashed the same bytes');
    assert.equal(await item.getAttribute('data-size'), String(LIMIT));
    assert.match(await item.locator('.chat-file-name').innerText(), /site-survey\.bin/);
    assert.match(await item.locator('.chat-file-about').innerText(), /100 MB/);
    await screenshot(agent, 'files-received-agent');
    const [download] = await Promise.all([agent.waitForEvent('download'), item.locator('.chat-file-link').click()]);
    const saved = join(dir, 'downloaded.bin');
    await download.saveAs(saved);
    assert.equal(download.suggestedFilename(), 'site-survey.bin');
    assert.equal(sha256(readFileSync(saved)), bigHash, 'the agent has the same bytes');
    rmSync(saved);

    // It resumed where the cut left it: a HEAD, then the rest from 48 MB, not from 0.
    const cut = requests.findIndex((r, i) => r.method === 'PATCH' && requests.slice(0, i + 1).filter((q) => q.method === 'PATCH').length === 7);
    assert.ok(cut > 0, JSON.stringify(requests));
    const after = requests.slice(cut + 1);
    assert.equal(after[0]?.method, 'HEAD', JSON.stringify(requests));
    assert.equal(after.find((r) => r.method === 'PATCH')?.offset, String(6 * 8 * MB), JSON.stringify(requests));
    assert.equal(await customer.evaluate(() => window.__orbita.session.files.uploads[0].resumes), 1);
    // The customer's own line is the file now, not the upload.
    await customer.locator('.chat-file').waitFor();
    assert.equal(await line.count(), 0);

    // Someone in another call cannot fetch it: not with their call's key, not without one.
    const url = await item.locator('.chat-file-link').getAttribute('href');
    const other = await createRoom(server.base);
    const { page: stranger } = await newPerson(browser, server.base);
    await joinRoom(stranger, server.base, other.code, 'Stranger');
    const path = new URL(url ?? '', server.base).pathname;
    const statuses = await stranger.evaluate(async (path) => {
      const key = window.__orbita.session.callInfo?.filesKey ?? '';
      return [(await fetch(`${path}?key=${key}`)).status, (await fetch(path)).status];
    }, path);
    assert.deepEqual(statuses, [404, 404]);
    await Promise.all([agent.context().close(), customer.context().close(), stranger.context().close()]);
  });

  test('a file over the limit is refused with a message; a picture shows as a thumbnail', async () => {
    const { code } = await createRoom(server.base);
    const { page: agent } = await newPerson(browser, server.base);
    const { page: customer } = await newPerson(browser, server.base, { locale: 'ru-RU' });
    await joinRoom(agent, server.base, code, 'Agent');
    await joinRoom(customer, server.base, code, 'Клиент');
    await customer.locator('#control-chat').click();
    await agent.locator('#control-chat').click();
    assert.equal(await customer.evaluate(() => window.__orbita.session.limits.max_file_bytes), LIMIT);

    // 100 MB and one byte: refused before any byte is sent, saying the limit.
    await customer.locator('#chat-file').setInputFiles(tooBig);
    const refused = customer.locator('.chat-upload[data-state="failed"] .upload-status');
    await refused.waitFor();
    assert.match(await refused.innerText(), /больше 100 MB — это наибольший размер файла/);
    await screenshot(customer, 'files-too-large-ru');

    // The server refuses it too, whatever a page says of the size.
    const answer = await customer.evaluate(
      () =>
        new Promise((resolve) => {
          const session = window.__orbita.session;
          session.signaling.send({ type: 'file_upload', name: 'x.bin', size: 100 * 1024 * 1024 + 1 });
          session.addEventListener('notice', (event) => resolve(/** @type {CustomEvent} */ (event).detail.detail ?? ''), { once: true });
        }),
    );
    assert.match(String(answer), /104857600/);

    // A picture: the agent sees its thumbnail, drawn.
    const png = await agent.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 200;
      const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      g.fillStyle = '#2a7';
      g.fillRect(0, 0, 320, 200);
      return canvas.toDataURL('image/png').split(',')[1];
    });
    writeFileSync(picture, Buffer.from(png, 'base64'));
    await customer.locator('#chat-file').setInputFiles(picture);
    const thumb = agent.locator('.chat-file[data-mime="image/png"] img.chat-thumb');
    await thumb.waitFor({ timeout: 20_000 });
    await waitFor(() => thumb.evaluate((img) => /** @type {HTMLImageElement} */ (img).complete && /** @type {HTMLImageElement} */ (img).naturalWidth === 320), {
      message: 'the thumbnail is drawn',
    });
    await screenshot(agent, 'files-thumbnail-agent');
    await Promise.all([agent.context().close(), customer.context().close()]);
  });
});
