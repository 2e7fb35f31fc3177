// Screenshots in the call, in Chromium: the customer shares their location (set by the test);
// the agent takes a still of the customer's video at the frame's full size, draws on it (a red
// pen stroke, a rectangle, a text taken back with undo) and sends it; the customer gets it in
// the chat, the drawing in its pixels, and the stored JPEG's EXIF GPS tags (read with exifr)
// hold the position the browser gave.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import exifr from 'exifr';
import { agentInCall, joinRoom, launchBrowser, newPerson, screenshot, startServerWithAdmin, waitFor } from './helpers.js';

const AGENT = { email: 'snapshot-admin@orbita.test', password: 'snapshot-admin-password-1' };
const HERE = { latitude: -33.856784, longitude: 151.215297, accuracy: 12 };

describe('screenshots', { concurrency: false }, () => {
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

  test("the agent's drawing on a still of the customer's video reaches the customer, with the call's place in its EXIF", async () => {
    const { page: agent, code } = await agentInCall(browser, server.base, AGENT, 'Agent');
    const { context, page: customer } = await newPerson(browser, server.base, { geolocation: HERE });
    await context.grantPermissions(['geolocation'], { origin: server.base });
    await joinRoom(customer, server.base, code, 'Customer');
    const customerId = await customer.evaluate(() => window.__orbita.session.selfId);

    // The customer shares their location: the call has a place.
    await customer.locator('#control-chat').click();
    await customer.locator('#chat-location').click();
    await customer.locator('.chat-location').waitFor({ timeout: 20_000 });

    // The agent takes a still of the customer's picture.
    const tile = agent.locator(`.tile[data-participant="${customerId}"][data-source="camera"]`);
    await waitFor(() => tile.locator('video').evaluate((v) => /** @type {HTMLVideoElement} */ (v).videoWidth > 0), { timeout: 30_000, message: 'the agent sees the customer' });
    await tile.hover();
    await tile.locator('.tile-snap').click();
    const canvas = agent.locator('#snap-canvas');
    await canvas.waitFor();
    // The frame's size as it arrives (read once the still is taken: the simulcast layer the
    // agent receives may have moved up a moment before).
    const frame = await tile.locator('video').evaluate((v) => [/** @type {HTMLVideoElement} */ (v).videoWidth, /** @type {HTMLVideoElement} */ (v).videoHeight]);
    assert.deepEqual(await canvas.evaluate((c) => [/** @type {HTMLCanvasElement} */ (c).width, /** @type {HTMLCanvasElement} */ (c).height]), frame, 'the frame at its full size');

    // Draws: a red pen stroke across the top, a rectangle, a text it takes back.
    const box = await canvas.boundingBox();
    assert.ok(box);
    const at = (/** @type {number} */ fx, /** @type {number} */ fy) => [box.x + fx * box.width, box.y + fy * box.height];
    await agent.locator('#snap-tool-pen').click();
    await agent.locator('#snap-colour-0').click();
    await agent.mouse.move(...at(0.2, 0.25));
    await agent.mouse.down();
    for (let i = 1; i <= 10; i++) await agent.mouse.move(...at(0.2 + i * 0.05, 0.25));
    await agent.mouse.up();
    await agent.locator('#snap-tool-rect').click();
    await agent.mouse.move(...at(0.1, 0.5));
    await agent.mouse.down();
    await agent.mouse.move(...at(0.4, 0.8), { steps: 5 });
    await agent.mouse.up();
    await agent.locator('#snap-tool-text').click();
    await agent.locator('#snap-text').fill('Meter');
    await agent.mouse.click(...at(0.6, 0.6));
    assert.equal(await canvas.getAttribute('data-marks'), '3');
    await agent.locator('#snap-undo').click();
    assert.equal(await canvas.getAttribute('data-marks'), '2');
    await screenshot(agent, 'screenshot-editor-agent');
    await agent.locator('#snap-send').click();

    // The customer has it in the chat, marked as a screenshot.
    const item = customer.locator('.chat-file[data-mime="image/jpeg"]');
    await item.waitFor({ timeout: 30_000 });
    assert.ok(await item.locator('.chat-screenshot').count());
    await screenshot(customer, 'screenshot-received-customer');

    // The drawing is in its pixels: red along the stroke, the picture's own colours elsewhere.
    const href = await item.locator('.chat-file-link').getAttribute('href');
    const pixels = await customer.evaluate(async (href) => {
      const image = await createImageBitmap(await (await fetch(href)).blob());
      const c = new OffscreenCanvas(image.width, image.height);
      const g = /** @type {OffscreenCanvasRenderingContext2D} */ (c.getContext('2d'));
      g.drawImage(image, 0, 0);
      const px = (/** @type {number} */ fx, /** @type {number} */ fy) => [...g.getImageData(Math.round(fx * image.width), Math.round(fy * image.height), 1, 1).data.slice(0, 3)];
      return { size: [image.width, image.height], stroke: px(0.45, 0.25), rectEdge: px(0.25, 0.5), inside: px(0.25, 0.65) };
    }, href ?? '');
    assert.deepEqual(pixels.size, frame);
    const red = (/** @type {number[]} */ [r, g, b]) => r > 160 && g < 110 && b < 110;
    assert.ok(red(pixels.stroke), `the pen stroke: ${pixels.stroke}`);
    assert.ok(red(pixels.rectEdge), `the rectangle's edge: ${pixels.rectEdge}`);
    assert.ok(!red(pixels.inside), `inside the rectangle, the picture: ${pixels.inside}`);

    // The stored JPEG's EXIF holds the place the customer's browser gave.
    const bytes = await customer.evaluate(async (href) => Array.from(new Uint8Array(await (await fetch(href)).arrayBuffer())), href ?? '');
    const gps = await exifr.gps(Buffer.from(bytes));
    assert.ok(gps, 'EXIF GPS tags');
    assert.ok(Math.abs(gps.latitude - HERE.latitude) < 1e-5, `latitude ${gps.latitude}`);
    assert.ok(Math.abs(gps.longitude - HERE.longitude) < 1e-5, `longitude ${gps.longitude}`);
    await Promise.all([agent.context().close(), context.close()]);
  });
});
