// A browser without camera and microphone (Chromium without the fake device flag) is told so
// plainly, joins receive-only, and sees and hears the others.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createRoom,
  expectAudioFlowing,
  expectVideoFlowing,
  joinRoom,
  launchBrowser,
  newPerson,
  screenshot,
  selfId,
  startServer,
  stats,
} from './helpers.js';

describe('a browser with no devices', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let withDevices;
  /** @type {import('playwright-core').Browser} */
  let without;

  before(async () => {
    server = await startServer();
    withDevices = await launchBrowser();
    without = await launchBrowser({ devices: false });
  });

  after(async () => {
    await withDevices?.close();
    await without?.close();
    await server?.stop();
  });

  test('is told there is no camera or microphone, joins receive-only and sees the others', async () => {
    const { code } = await createRoom(server.base);
    const { page: host } = await newPerson(withDevices, server.base);
    await joinRoom(host, server.base, code, 'Teacher');
    const hostId = await selfId(host);

    const { page: guest } = await newPerson(without, server.base);
    await guest.goto(`${server.base}/r/${code}`);
    const problems = guest.locator('#device-problems');
    await problems.locator('[data-problem="prejoin.receive_only"]').waitFor({ timeout: 15_000 });
    const text = await problems.innerText();
    assert.match(text, /camera/i);
    assert.match(text, /microphone/i);
    assert.match(text, /You can still join/);
    assert.match(await guest.locator('.room-count').innerText(), /1 person is in the room/);
    await guest.locator('#name').fill('Student');
    await screenshot(guest, 'no-devices-prejoin');
    await guest.locator('#join-button').click();
    await guest.locator('.call #grid').waitFor({ timeout: 20_000 });
    const guestId = await selfId(guest);

    const seen = await expectVideoFlowing(guest, hostId);
    const heard = await expectAudioFlowing(guest, hostId);
    console.log(
      `no devices: the guest decoded ${seen.second.framesDecoded} frames (${seen.second.frameWidth}x${seen.second.frameHeight})`,
      `and ${heard.second.bytesReceived} audio bytes (level up to ${heard.maxLevel.toFixed(3)}) from the host`,
    );
    // The guest publishes nothing; the host shows the guest's tile with an avatar and muted.
    const guestStats = await stats(guest);
    assert.deepEqual(Object.keys(guestStats.outbound), []);
    const tile = host.locator(`.tile[data-participant="${guestId}"]`);
    await tile.waitFor({ timeout: 10_000 });
    assert.equal(await tile.getAttribute('data-video'), 'off');
    assert.equal(await tile.getAttribute('data-mic-muted'), 'true');
    // Chat works receive-only too.
    await guest.locator('#control-chat').click();
    await guest.locator('#chat-input').fill('I can see you but have no camera');
    await guest.locator('#chat-input').press('Enter');
    await host.locator('#control-chat').click();
    await host.locator('.chat-message', { hasText: 'I can see you but have no camera' }).waitFor({ timeout: 10_000 });
    // Trying the microphone says why it cannot.
    await guest.locator('#control-mic').click();
    await guest.locator('.toast-error').waitFor({ timeout: 10_000 });
    assert.match(await guest.locator('.toast-error').first().innerText(), /No microphone was found/);
    await screenshot(guest, 'no-devices-call');
    await screenshot(host, 'no-devices-host');
  });
});
