// A call over https:// with a certificate `orbita serve` obtained by ACME itself, from Debian's
// `pebble` (a local ACME CA that really validates, TLS-ALPN-01 on the server's HTTPS port).
// `pebble-challtestsrv` answers pebble's DNS lookups of orbita.test with 127.0.0.1; Chromium
// maps the name the same way and trusts pebble's root as a CA: the root is added to the NSS
// database (Chromium's certificate store on Linux) of the HOME Chromium runs with, by NSS's
// `certutil`. The page is then a secure context, camera and microphone work, signalling runs
// over wss://, and every answer carries HSTS.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  expectVideoFlowing,
  joinRoom,
  launchBrowser,
  newPerson,
  screenshot,
  selfId,
  startServer,
  waitFor,
} from './helpers.js';

const DOMAIN = 'orbita.test';

/** A TCP port nothing listens on now. */
function freeTcpPort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** A UDP port nothing listens on now. */
function freeUdpPort() {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/**
 * Start a daemon; `log()` is what it printed.
 * @param {string} program
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
function daemon(program, args, env = {}) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  child.stdout.on('data', (chunk) => { log += chunk; });
  child.stderr.on('data', (chunk) => { log += chunk; });
  child.on('error', (error) => { log += `cannot start ${program}: ${error.message} (install Debian's pebble package; scripts/test does)\n`; });
  return {
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/**
 * GET `path` from `https://host:port` trusting only `ca`, with `servername` for SNI and the
 * certificate check; resolves to {status, headers, body}.
 */
function httpsGet({ port, path, ca, servername }) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, servername, method: 'GET', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** pebble with its DNS, validating TLS-ALPN-01 on `tlsPort`. */
async function startPebble(dir, tlsPort) {
  const dnsPort = await freeUdpPort();
  const dns = daemon('pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${await freeTcpPort()}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ]);
  // pebble's directory speaks HTTPS with this certificate; the server is told to trust it.
  const cert = join(dir, 'pebble-https.pem');
  const key = join(dir, 'pebble-https.key');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    // An end-entity certificate: rustls refuses a CA certificate (openssl's default) as a leaf.
    '-addext', 'basicConstraints=critical,CA:FALSE',
  ], { stdio: 'ignore' });
  const listen = await freeTcpPort();
  const management = await freeTcpPort();
  const config = join(dir, 'pebble.json');
  writeFileSync(config, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${listen}`,
      managementListenAddress: `127.0.0.1:${management}`,
      certificate: cert,
      privateKey: key,
      httpPort: await freeTcpPort(),
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }));
  // NOSLEEP: validate at once; NONCEREJECT=0: no deliberate bad-nonce answers (test speed).
  const ca = daemon('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' });
  const pebbleCa = readFileSync(cert);
  const root = await waitFor(async () => {
    const r = await httpsGet({ port: management, path: '/roots/0', ca: pebbleCa }).catch(() => null);
    return r?.status === 200 ? r.body : null;
  }, { timeout: 20_000, interval: 100, message: 'pebble' }).catch((error) => { throw new Error(`${error.message}\n${ca.log()}\n${dns.log()}`); });
  return {
    directory: `https://127.0.0.1:${listen}/dir`,
    cert,
    root,
    log: () => ca.log(),
    async stop() {
      await ca.stop();
      await dns.stop();
    },
  };
}

/**
 * A HOME for Chromium whose NSS database trusts `rootPem` to issue server certificates.
 * @param {string} dir
 * @param {string} rootPem
 */
function homeTrusting(dir, rootPem) {
  const home = join(dir, 'home');
  const nssdb = join(home, '.pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  const root = join(dir, 'pebble-root.pem');
  writeFileSync(root, rootPem);
  const certutil = (args) => execFileSync('certutil', ['-d', `sql:${nssdb}`, ...args], { stdio: 'pipe' });
  try {
    certutil(['-N', '--empty-password']);
    certutil(['-A', '-n', 'pebble test root', '-t', 'C,,', '-i', root]);
  } catch (error) {
    throw new Error(`certutil (Debian's libnss3-tools; scripts/test installs it): ${error.message}`);
  }
  return home;
}

describe('HTTPS with a certificate obtained by ACME', { concurrency: false }, () => {
  /** @type {string} */
  let dir;
  /** @type {Awaited<ReturnType<typeof startPebble>>} */
  let pebble;
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {number} */
  let port;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'orbita-https-'));
    port = await freeTcpPort();
    pebble = await startPebble(dir, port);
    server = await startServer([
      '--acme-domains', DOMAIN,
      '--acme-contact', `mailto:ops@${DOMAIN}`,
      '--acme-directory-url', pebble.directory,
      '--acme-ca-file', pebble.cert,
    ], { httpAddr: `127.0.0.1:${port}` });
    browser = await launchBrowser({
      args: [`--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`],
      env: { HOME: homeTrusting(dir, pebble.root) },
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await pebble?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('two people call each other over https://, the certificate from pebble', async () => {
    // The certificate arrives in the background; until then handshakes fail.
    const health = await waitFor(async () => {
      const r = await httpsGet({ port, path: '/healthz', ca: pebble.root, servername: DOMAIN }).catch(() => null);
      return r?.status === 200 ? r : null;
    }, { timeout: 60_000, interval: 200, message: 'a certificate from pebble' }).catch((error) => { throw new Error(`${error.message}\n${server.log()}\n${pebble.log()}`); });
    assert.equal(health.headers['strict-transport-security'], 'max-age=63072000');
    assert.match(server.stdout(), new RegExp(`join links: https://${DOMAIN.replace('.', '\\.')}:${port}`));

    const base = `https://${DOMAIN}:${port}`;
    const { page: alice } = await newPerson(browser, base);
    const { page: bob } = await newPerson(browser, base);
    // The Content-Security-Policy (no inline script or style) must not block anything the
    // client does: every violation is collected and must stay none.
    for (const page of [alice, bob]) {
      await page.addInitScript(() => {
        window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
      });
    }
    const landing = await alice.goto(base);
    assert.equal(landing?.headers()['strict-transport-security'], 'max-age=63072000');
    assert.match(landing?.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(landing?.headers()['referrer-policy'], 'no-referrer');
    assert.equal(await alice.evaluate(() => window.isSecureContext), true);
    const made = await alice.evaluate(async () => {
      const r = await fetch('/api/rooms', { method: 'POST' });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(made.status, 201, JSON.stringify(made));
    assert.ok(made.body.link.startsWith(`${base}/r/`), made.body.link);
    const code = made.body.code;

    const sockets = [];
    alice.on('websocket', (ws) => sockets.push(ws.url()));
    await joinRoom(alice, base, code, 'Alice');
    await joinRoom(bob, base, code, 'Bob');
    const aliceId = await selfId(alice);
    const bobId = await selfId(bob);
    const seen = await expectVideoFlowing(bob, aliceId);
    await expectVideoFlowing(alice, bobId);
    assert.ok(sockets.length > 0 && sockets.every((url) => url.startsWith(`wss://${DOMAIN}:${port}/`)), JSON.stringify(sockets));
    for (const page of [alice, bob]) assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
    console.log(`https: Bob decoded ${seen.second.framesDecoded} frames of Alice over ${base} (certificate by ACME from pebble)`);
    await screenshot(bob, 'https-call');
    await alice.context().close();
    await bob.context().close();
  });
});
