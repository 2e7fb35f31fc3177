// A call through a TURN relay: Debian's coturn on loopback with `use-auth-secret`, and
// `orbita serve` given the same secret. Both browsers may use relay candidates only
// (`iceTransportPolicy: "relay"`), so media that flows went through coturn; the selected
// candidate pairs say so. With a wrong secret the relay refuses, and the person is told.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  waitFor,
} from './helpers.js';

const SECRET = randomBytes(16).toString('hex');

/**
 * Whether a STUN Binding request to 127.0.0.1:`port` (UDP) is answered.
 * @param {number} port
 */
function stunAnswers(port) {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const request = Buffer.alloc(20);
    request.writeUInt16BE(0x0001, 0); // Binding request, no attributes
    request.writeUInt32BE(0x2112a442, 4); // magic cookie
    randomBytes(12).copy(request, 8);
    const done = (answered) => {
      clearTimeout(timer);
      socket.close();
      resolve(answered);
    };
    const timer = setTimeout(() => done(false), 300);
    socket.on('message', (msg) => done(msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(request.subarray(8, 20))));
    socket.on('error', () => done(false));
    socket.send(request, port, '127.0.0.1');
  });
}

/**
 * coturn on loopback with TURN REST credentials (the test's secret), relaying to loopback
 * peers (test only: production denies internal ranges, docs/configuration.md).
 */
async function startCoturn() {
  const dir = mkdtempSync(join(tmpdir(), 'orbita-coturn-'));
  const port = 30_000 + Math.floor(Math.random() * 10_000);
  const minPort = 50_000 + Math.floor(Math.random() * 10_000);
  const child = spawn('turnserver', [
    '-n',
    '--listening-ip=127.0.0.1',
    '--relay-ip=127.0.0.1',
    `--listening-port=${port}`,
    `--min-port=${minPort}`,
    `--max-port=${minPort + 100}`,
    '--realm=orbita.test',
    '--fingerprint',
    '--use-auth-secret',
    `--static-auth-secret=${SECRET}`,
    '--allow-loopback-peers',
    '--no-multicast-peers',
    '--no-tls',
    '--no-dtls',
    '--no-cli',
    '--simple-log',
    '--log-file=stdout',
    `--pidfile=${join(dir, 'turnserver.pid')}`,
    `--userdb=${join(dir, 'turndb')}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk) => { log += chunk; });
  child.stderr.on('data', (chunk) => { log += chunk; });
  await waitFor(async () => child.exitCode === null && (await stunAnswers(port)), { timeout: 20_000, interval: 100, message: `coturn on port ${port}` })
    .catch((error) => { throw new Error(`${error.message}\n${log}`); });
  return {
    port,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Make every RTCPeerConnection of `page` use relay candidates only, as a network that lets
 * nothing but the relay through would.
 * @param {import('playwright-core').Page} page
 */
async function relayOnly(page) {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = class extends Native {
      /** @param {RTCConfiguration} [config] */
      constructor(config) {
        super({ ...config, iceTransportPolicy: 'relay' });
      }
    };
  });
}

/**
 * The local and remote candidate types of the selected pair of each peer connection of `page`.
 * @param {import('playwright-core').Page} page
 */
function selectedPairs(page) {
  return page.evaluate(async () => {
    const session = window.__orbita.session;
    const out = [];
    for (const pc of [session.publisher?.pc, session.subscriber?.pc]) {
      if (!pc) continue;
      const report = await pc.getStats();
      let pair = null;
      report.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
      });
      if (!pair) {
        out.push(null);
        continue;
      }
      const local = report.get(pair.localCandidateId);
      const remote = report.get(pair.remoteCandidateId);
      out.push({ local: local?.candidateType, relayProtocol: local?.relayProtocol, url: local?.url, remote: remote?.candidateType, bytes: pair.bytesReceived });
    }
    return out;
  });
}

describe('a call through a TURN relay', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startCoturn>>} */
  let coturn;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    coturn = await startCoturn();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await coturn?.stop();
  });

  test('relay-only browsers see and hear each other, through coturn', async () => {
    const server = await startServer(['--turn-urls', `turn:127.0.0.1:${coturn.port}?transport=udp`], { env: { ORBITA_TURN_SECRET: SECRET } });
    try {
      const { code } = await createRoom(server.base);
      const { page: alice } = await newPerson(browser, server.base);
      const { page: bob } = await newPerson(browser, server.base);
      await relayOnly(alice);
      await relayOnly(bob);
      await joinRoom(alice, server.base, code, 'Alice');
      await joinRoom(bob, server.base, code, 'Bob');
      const aliceId = await selfId(alice);
      const bobId = await selfId(bob);

      // Each was given its own time-limited TURN credentials.
      const given = await alice.evaluate(() => window.__orbita.session.publisher.pc.getConfiguration());
      assert.equal(given.iceTransportPolicy, 'relay');
      const turn = given.iceServers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
      assert.ok(turn, JSON.stringify(given.iceServers));
      const [expiry, participant] = String(turn.username).split(':');
      assert.equal(participant, aliceId);
      const ttl = Number(expiry) - Date.now() / 1000;
      assert.ok(ttl > 86_000 && ttl <= 86_400, `credentials valid for ${ttl} s`);

      const seen = await expectVideoFlowing(bob, aliceId);
      await expectVideoFlowing(alice, bobId);
      await expectAudioFlowing(bob, aliceId);
      for (const [who, page] of [['Alice', alice], ['Bob', bob]]) {
        const pairs = await waitFor(async () => {
          const p = await selectedPairs(page);
          return p.length === 2 && p.every((x) => x) ? p : null;
        }, { message: `${who}'s selected candidate pairs` });
        for (const pair of pairs) assert.equal(pair.local, 'relay', `${who}: ${JSON.stringify(pair)}`);
        assert.equal((await stats(page)).relayRefused, null);
      }
      console.log(`turn: Bob decoded ${seen.second.framesDecoded} frames of Alice through coturn; pairs ${JSON.stringify(await selectedPairs(bob))}`);
      await screenshot(bob, 'turn-call');
      await alice.context().close();
      await bob.context().close();
    } finally {
      await server.stop();
    }
  });

  test('with a wrong secret the relay refuses, and the person is told so', async () => {
    const server = await startServer(['--turn-urls', `turn:127.0.0.1:${coturn.port}?transport=udp`], { env: { ORBITA_TURN_SECRET: 'not-the-relays-secret' } });
    try {
      const { code } = await createRoom(server.base);
      const { page: carol } = await newPerson(browser, server.base);
      await relayOnly(carol);
      await carol.goto(`${server.base}/r/${code}`);
      await carol.locator('#name').fill('Carol');
      await carol.locator('#join-button').click();
      await carol.locator('.call #grid').waitFor({ timeout: 20_000 });
      const refused = await waitFor(async () => (await stats(carol)).relayRefused, { timeout: 30_000, message: 'the relay refusal' });
      assert.match(refused, /^401\b/, refused);
      const toast = carol.locator('.toast', { hasText: 'relay server (TURN) refused' });
      await toast.waitFor({ timeout: 10_000 });
      await screenshot(carol, 'turn-refused');
      // No relay, no media path: nothing was selected.
      assert.deepEqual((await selectedPairs(carol)).filter((p) => p), []);
      await carol.context().close();
    } finally {
      await server.stop();
    }
  });
});
