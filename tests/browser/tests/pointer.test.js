// The agent's pointer on the customer's video, in Chromium: the agent clicks at known places
// of the customer's picture on the agent's tile (cropped to fill it); the customer sees the
// pointer at the same place of their own camera picture, on their mirrored self view, within
// 2 % of the frame, with a ripple for the click. The places are worked out here from the
// elements' boxes and the frames' sizes, not by the client's code.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { agentInCall, joinRoom, launchBrowser, newPerson, screenshot, startServerWithAdmin, waitFor } from './helpers.js';

const AGENT = { email: 'pointer-admin@orbita.test', password: 'pointer-admin-password-1' };

/**
 * In the page: the picture's box of `video` on the page, as CSS object-fit lays it out.
 * @param {HTMLVideoElement} video
 */
function box(video) {
  const rect = video.getBoundingClientRect();
  const fit = getComputedStyle(video).objectFit;
  const scale = (fit === 'cover' ? Math.max : Math.min)(rect.width / video.videoWidth, rect.height / video.videoHeight);
  const width = video.videoWidth * scale;
  const height = video.videoHeight * scale;
  return {
    left: rect.left + (rect.width - width) / 2,
    top: rect.top + (rect.height - height) / 2,
    width,
    height,
    mirrored: getComputedStyle(video).transform.startsWith('matrix(-1'),
    rect: { left: rect.left, top: rect.top, right: rect.right, bottom: rect.bottom },
  };
}

describe("the agent's pointer", { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServerWithAdmin>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServerWithAdmin(AGENT);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('points clicked on the customer tile show at the same places of the customer picture', async () => {
    const { page: agent, code } = await agentInCall(browser, server.base, AGENT, 'Agent');
    const { page: customer } = await newPerson(browser, server.base);
    await joinRoom(customer, server.base, code, 'Customer');
    const customerId = await customer.evaluate(() => window.__orbita.session.selfId);

    // The customer's picture on the agent's side, playing.
    const remote = agent.locator(`.tile[data-participant="${customerId}"][data-source="camera"] video`);
    await waitFor(() => remote.evaluate((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0), { timeout: 30_000, message: 'the agent sees the customer' });
    const own = customer.locator('.tile.self[data-source="camera"] video');
    await waitFor(() => own.evaluate((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0), { message: 'the self view plays' });
    const ownBox = await own.evaluate(box);
    assert.ok(ownBox.mirrored, 'the self view is mirrored');

    for (const [x, y] of [
      [0.25, 0.3],
      [0.8, 0.65],
      [0.5, 0.5],
    ]) {
      // The page point showing frame place (x, y) on the agent's tile.
      const theirs = await remote.evaluate(box);
      const px = theirs.left + (theirs.mirrored ? 1 - x : x) * theirs.width;
      const py = theirs.top + y * theirs.height;
      assert.ok(px > theirs.rect.left && px < theirs.rect.right && py > theirs.rect.top && py < theirs.rect.bottom, 'a place not cropped away');
      await agent.mouse.move(px - 20, py - 10);
      await agent.mouse.move(px, py, { steps: 4 });
      await agent.mouse.click(px, py);

      // On the customer's self view: the dot at that place of their frame (mirrored back).
      await waitFor(
        async () => {
          const place = await customer.evaluate(
            ({ boxSource }) => {
              const dot = document.querySelector('.tile.self .pointer-dot');
              const video = /** @type {HTMLVideoElement | null} */ (document.querySelector('.tile.self[data-source="camera"] video'));
              if (!dot || !video) return null;
              const b = new Function(`return (${boxSource})`)()(video);
              const r = dot.getBoundingClientRect();
              const fx = (r.left + r.width / 2 - b.left) / b.width;
              return { x: b.mirrored ? 1 - fx : fx, y: (r.top + r.height / 2 - b.top) / b.height };
            },
            { boxSource: box.toString() },
          );
          return place && Math.abs(place.x - x) <= 0.02 && Math.abs(place.y - y) <= 0.02;
        },
        { timeout: 10_000, interval: 100, message: `the pointer at (${x}, ${y}) on the customer's picture` },
      );
    }
    await screenshot(customer, 'pointer-customer');
    // The click's ripple was drawn (it fades in 0.7 s: clicked again to catch it).
    const theirs = await remote.evaluate(box);
    await agent.mouse.click(theirs.left + theirs.width / 2, theirs.top + theirs.height / 2);
    await customer.locator('.tile.self .pointer-ripple').first().waitFor({ timeout: 5_000 });

    // Leaving the tile takes the pointer away.
    await agent.mouse.move(2, 2);
    await customer.locator('.tile.self .pointer-dot').waitFor({ state: 'detached', timeout: 5_000 });
    await Promise.all([agent.context().close(), customer.context().close()]);
  });
});
