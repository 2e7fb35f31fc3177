// Two (then three) people in one room: media both ways, chat, mute, screen share, quality,
// joins and leaves, and reconnecting after the network drops.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createRoom,
  during,
  expectAudioFlowing,
  expectVideoFlowing,
  inbound,
  joinRoom,
  launchBrowser,
  newPerson,
  screenshot,
  selfId,
  settled,
  startServer,
  stats,
  waitFor,
} from './helpers.js';

describe('a call between browsers', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {import('playwright-core').Page} */
  let alice;
  /** @type {import('playwright-core').Page} */
  let bob;
  let aliceId = '';
  let bobId = '';
  let code = '';

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    ({ code } = await createRoom(server.base));
    ({ page: alice } = await newPerson(browser, server.base));
    ({ page: bob } = await newPerson(browser, server.base));
    await joinRoom(alice, server.base, code, 'Alice');
    await joinRoom(bob, server.base, code, 'Bob');
    aliceId = await selfId(alice);
    bobId = await selfId(bob);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('each decodes the other\'s video and hears the other\'s audio', async () => {
    const bobSees = await expectVideoFlowing(bob, aliceId);
    const aliceSees = await expectVideoFlowing(alice, bobId);
    const bobHears = await expectAudioFlowing(bob, aliceId);
    const aliceHears = await expectAudioFlowing(alice, bobId);
    console.log(
      `video: Bob decoded ${bobSees.first.framesDecoded} -> ${bobSees.second.framesDecoded} frames of Alice (${bobSees.second.frameWidth}x${bobSees.second.frameHeight}),`,
      `Alice ${aliceSees.first.framesDecoded} -> ${aliceSees.second.framesDecoded} of Bob (${aliceSees.second.frameWidth}x${aliceSees.second.frameHeight});`,
      `audio: Bob got ${bobHears.second.bytesReceived} bytes (level up to ${bobHears.maxLevel.toFixed(3)}),`,
      `Alice ${aliceHears.second.bytesReceived} bytes (level up to ${aliceHears.maxLevel.toFixed(3)})`,
    );
    // Both tiles show video (not the avatar) and the names.
    await waitFor(() => bob.locator(`.tile[data-participant="${aliceId}"][data-source="camera"][data-video="on"]`).count(), { message: 'Alice tile with video in Bob' });
    assert.equal(await bob.locator(`.tile[data-participant="${aliceId}"] .tile-name`).textContent(), 'Alice');
    assert.equal(await alice.locator('.tile[data-self="true"] .tile-name').textContent(), 'Alice (you)');
    // The own preview is mirrored, others' video is not.
    assert.ok(await alice.locator('.tile[data-self="true"] video.mirrored').count());
    assert.equal(await alice.locator(`.tile[data-participant="${bobId}"] video.mirrored`).count(), 0);
    // The fake microphone beeps: the speaker's tile lights up while it sounds.
    await waitFor(() => bob.locator(`.tile[data-participant="${aliceId}"][data-speaking="true"]`).count(), { message: 'Alice shown speaking in Bob' });
    // The people count is right.
    assert.equal(await alice.locator('.call-count').textContent(), '2 people');
    await screenshot(alice, 'call-two-people');
  });

  test('chat goes both ways', async () => {
    await alice.locator('#control-chat').click();
    await alice.locator('#chat-input').fill('Hello Bob, can you hear me?');
    await alice.locator('#chat-input').press('Enter');
    // Bob sees an unread badge, opens the chat and reads it.
    await bob.locator('#control-chat .control-badge:not([hidden])').waitFor({ timeout: 10_000 });
    await bob.locator('#control-chat').click();
    await bob.locator('.chat-message', { hasText: 'Hello Bob, can you hear me?' }).waitFor({ timeout: 10_000 });
    assert.equal(await bob.locator('.chat-message .chat-name').first().textContent(), 'Alice');
    await bob.locator('#chat-input').fill('Loud and clear, Alice! <b>not bold</b>');
    await bob.locator('#chat-send').click();
    await alice.locator('.chat-message', { hasText: 'Loud and clear, Alice!' }).waitFor({ timeout: 10_000 });
    // Text stays text, and our own messages come back marked as ours.
    assert.equal(await alice.locator('.chat-message b').count(), 0);
    assert.equal(await alice.locator('.chat-message.own').count(), 1);
    assert.equal(await bob.locator('.chat-message.own').count(), 1);
    await screenshot(bob, 'call-chat');
    // The copy-link button puts the room's join link on the clipboard.
    await alice.locator('#copy-link').click();
    await alice.locator('.toast', { hasText: 'Link copied' }).waitFor({ timeout: 5_000 });
    assert.equal(await alice.evaluate(() => navigator.clipboard.readText()), `${server.base}/r/${code}`);
    await alice.locator('#panel-close').click();
    await bob.locator('#panel-close').click();
  });

  test('mute shows as muted in the other, and outbound audio stops', async () => {
    const micBytes = async () => ((await stats(alice)).outbound.microphone ?? []).reduce((sum, r) => sum + (r.bytesSent ?? 0), 0);
    const before = await micBytes();
    await waitFor(async () => (await micBytes()) > before, { message: 'audio flows before muting' });

    await alice.locator('#control-mic').click();
    await bob.locator(`.tile[data-participant="${aliceId}"][data-mic-muted="true"] .mic-badge:not([hidden])`).waitFor({ timeout: 10_000 });
    // What was in flight goes out; then the count stays for a while.
    const muted1 = await settled(micBytes, { quiet: 600, message: 'outbound audio to stop' });
    await during(1500);
    const muted2 = await micBytes();
    assert.equal(muted2, muted1, `no audio bytes are sent while muted (${muted1} -> ${muted2})`);
    // Bob's received bytes of Alice's audio stop growing as well.
    const r1 = await settled(() => inbound(bob, aliceId, 'microphone'), { quiet: 600, message: 'Bob\'s inbound audio to stop' });
    await during(1000);
    const r2 = await inbound(bob, aliceId, 'microphone');
    assert.equal(r2?.bytesReceived, r1?.bytesReceived, 'Bob receives no audio from muted Alice');
    console.log(`mute: Alice's mic sent ${before} bytes before, stayed at ${muted1} -> ${muted2} while muted`);
    // The people list says so too.
    await bob.locator('#control-people').click();
    await bob.locator(`.person[data-participant="${aliceId}"] .state-icon.off`).first().waitFor();
    await screenshot(bob, 'call-muted');
    await bob.locator('#panel-close').click();

    await alice.locator('#control-mic').click();
    await bob.locator(`.tile[data-participant="${aliceId}"][data-mic-muted="false"]`).waitFor({ timeout: 10_000 });
    await waitFor(async () => (await micBytes()) > muted2, { message: 'audio flows again after unmuting' });
  });

  test('camera off shows the avatar, and on again shows video', async () => {
    await bob.locator('#control-camera').click();
    await alice.locator(`.tile[data-participant="${bobId}"][data-video="off"] .avatar`).waitFor({ timeout: 10_000 });
    assert.equal(await alice.locator(`.tile[data-participant="${bobId}"] .avatar`).textContent(), 'B');
    await bob.locator('#control-camera').click();
    await alice.locator(`.tile[data-participant="${bobId}"][data-video="on"]`).waitFor({ timeout: 10_000 });
    await expectVideoFlowing(alice, bobId);
  });

  test('screen share appears as an extra video tile in the other', async () => {
    await alice.locator('#control-screen').click();
    const tile = bob.locator(`.tile[data-participant="${aliceId}"][data-source="screen"]`);
    await tile.waitFor({ timeout: 15_000 });
    const flowing = await expectVideoFlowing(bob, aliceId, 'screen');
    console.log(`screen: Bob decoded ${flowing.second.framesDecoded} frames of Alice's screen (${flowing.second.frameWidth}x${flowing.second.frameHeight})`);
    assert.equal(await bob.locator('.tile').count(), 3, 'Bob sees Alice camera, Alice screen and himself');
    // Alice's camera still flows beside the screen.
    await expectVideoFlowing(bob, aliceId, 'camera');
    assert.match(await tile.locator('.tile-name').textContent(), /Alice's screen/);
    await screenshot(bob, 'call-screen-share');

    await alice.locator('#control-screen').click();
    await tile.waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await bob.locator('.tile').count(), 2);
  });

  test('quality 640x480 makes the other side decode at most 640x480', async () => {
    // Before: Alice sends up to 1280x720 and Bob gets the top layer.
    const top = await waitFor(async () => {
      const v = await inbound(bob, aliceId, 'camera');
      return v && v.frameWidth > 640 ? v : null;
    }, { timeout: 30_000, message: 'Bob receives Alice above 640x480 first' });
    console.log(`quality: Bob decodes Alice at ${top.frameWidth}x${top.frameHeight} with auto`);

    await alice.locator('#control-quality').click();
    await alice.locator('.menu[data-menu="quality"] .menu-item[data-value="640x480"]').click();
    const capped = await waitFor(async () => {
      const v = await inbound(bob, aliceId, 'camera');
      return v && v.frameWidth > 0 && v.frameWidth <= 640 && v.frameHeight <= 480 ? v : null;
    }, { timeout: 30_000, message: 'Bob decodes Alice at most 640x480' });
    // It stays there while frames keep coming.
    const later = await expectVideoFlowing(bob, aliceId);
    assert.ok(later.second.frameWidth <= 640 && later.second.frameHeight <= 480, `${later.second.frameWidth}x${later.second.frameHeight}`);
    // Alice's own encoder sends nothing above the cap: layers above it are off and send no
    // bytes (an inactive layer keeps reporting the size it last had).
    const out1 = (await stats(alice)).outbound.camera ?? [];
    await during(1000);
    const out = (await stats(alice)).outbound.camera ?? [];
    for (const layer of out) {
      const before = out1.find((l) => l.rid === layer.rid);
      if (layer.active === false) {
        assert.equal(layer.bytesSent, before?.bytesSent, `inactive layer ${layer.rid} sends nothing`);
      } else if (layer.frameWidth) {
        assert.ok(layer.frameWidth <= 640 && layer.frameHeight <= 480, `layer ${layer.rid} ${layer.frameWidth}x${layer.frameHeight}`);
      }
    }
    // And what Alice receives is capped as well (set_quality).
    const aliceGets = await waitFor(async () => {
      const v = await inbound(alice, bobId, 'camera');
      return v && v.frameWidth > 0 && v.frameWidth <= 640 && v.frameHeight <= 480 ? v : null;
    }, { timeout: 30_000, message: 'Alice receives Bob at most 640x480' });
    console.log(
      `quality 640x480: Bob decodes Alice at ${capped.frameWidth}x${capped.frameHeight} (then ${later.second.frameWidth}x${later.second.frameHeight}),`,
      `Alice sends ${out.map((l) => `${l.rid}:${l.active === false ? 'off' : `${l.frameWidth ?? 0}x${l.frameHeight ?? 0}`}`).join(' ')}, receives Bob at ${aliceGets.frameWidth}x${aliceGets.frameHeight}`,
    );
    await alice.locator('#control-quality').click();
    await alice.locator('.menu[data-menu="quality"]').waitFor();
    await screenshot(alice, 'call-quality-menu');
    await alice.locator('.menu[data-menu="quality"] .menu-item[data-value="auto"]').click();
    await waitFor(async () => {
      const v = await inbound(bob, aliceId, 'camera');
      return v && v.frameWidth > 640 ? v : null;
    }, { timeout: 30_000, message: 'Bob gets Alice above 640x480 again with auto' });
  });

  test('a third participant joins and leaves; the grids follow', async () => {
    const { page: carol, context } = await newPerson(browser, server.base);
    await joinRoom(carol, server.base, code, 'Carol');
    const carolId = await selfId(carol);
    for (const page of [alice, bob]) {
      await page.locator(`.tile[data-participant="${carolId}"][data-video="on"]`).waitFor({ timeout: 20_000 });
      assert.equal(await page.locator('.tile[data-source="camera"]').count(), 3);
      assert.equal(await page.locator('.call-count').textContent(), '3 people');
    }
    await expectVideoFlowing(alice, carolId);
    await expectVideoFlowing(bob, carolId);
    await expectVideoFlowing(carol, aliceId);
    await expectVideoFlowing(carol, bobId);
    await screenshot(carol, 'call-three-people');

    await carol.locator('#control-leave').click();
    await carol.locator('#end-screen').waitFor();
    await screenshot(carol, 'call-left');
    for (const page of [alice, bob]) {
      await page.locator(`.tile[data-participant="${carolId}"]`).waitFor({ state: 'detached', timeout: 10_000 });
      assert.equal(await page.locator('.tile').count(), 2);
    }
    await context.close();
  });

  test('a dropped signalling connection reconnects without a reload, and media flows again', async () => {
    const marker = await alice.evaluate(() => {
      window.__noReload = 'still here';
      return window.__orbita.session.selfId;
    });
    await alice.evaluate(() => window.__orbita.dropSignaling());
    await alice.locator('#banner:not([hidden])').waitFor({ timeout: 5_000 });
    await screenshot(alice, 'call-reconnecting');
    await alice.locator('#banner').waitFor({ state: 'hidden', timeout: 30_000 });
    assert.equal(await alice.evaluate(() => window.__noReload), 'still here', 'the page was not reloaded');
    const newAlice = await selfId(alice);
    assert.notEqual(newAlice, marker, 'rejoined as a new participant');
    aliceId = newAlice;
    const log = await alice.evaluate(() => window.__orbita.session.statusLog);
    assert.deepEqual(log.slice(-2), ['reconnecting', 'connected']);
    await expectVideoFlowing(bob, aliceId);
    await expectVideoFlowing(alice, bobId);
    await expectAudioFlowing(bob, aliceId);
    await bob.locator(`.tile[data-participant="${marker}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await bob.locator('.tile').count(), 2);
    assert.equal(await alice.locator('.tile').count(), 2);
  });

  test('an ICE failure restarts ICE and media keeps flowing', async () => {
    const before = await stats(alice);
    await alice.evaluate(() => window.__orbita.simulateIceFailure());
    await waitFor(async () => (await stats(alice)).iceRestarts > before.iceRestarts, { message: 'an ICE restart' });
    await waitFor(() => alice.evaluate(() => window.__orbita.session.status === 'connected'), { message: 'connected after the restart' });
    const after = await stats(alice);
    assert.equal(after.rejoins, before.rejoins, 'ICE restart recovered without rejoining');
    assert.equal(after.publisherState, 'connected');
    await expectVideoFlowing(bob, aliceId);
    await expectAudioFlowing(bob, aliceId);
  });

  test('going offline shows reconnecting, and coming back recovers', async () => {
    const context = alice.context();
    await context.setOffline(true);
    await alice.locator('#banner:not([hidden])').waitFor({ timeout: 30_000 });
    await during(1500); // offline for a while, as a dropped connection would be
    await context.setOffline(false);
    await alice.locator('#banner').waitFor({ state: 'hidden', timeout: 40_000 });
    aliceId = await selfId(alice);
    await expectVideoFlowing(bob, aliceId);
    await expectVideoFlowing(alice, bobId);
    await screenshot(alice, 'call-after-reconnect');
  });
});
