// Shared set-up of the browser tests: start `orbita serve` on loopback, launch Debian's
// Chromium with fake devices, join rooms, read WebRTC statistics, save screenshots.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..', '..');
export const screenshotDir = resolve(here, '..', 'screenshots');

/** The binary scripts/test built (profile `ci`; ORBITA_BIN or CARGO_TARGET_DIR are honoured). */
export function orbitaBinary() {
  if (process.env.ORBITA_BIN) return process.env.ORBITA_BIN;
  const target = process.env.CARGO_TARGET_DIR ? resolve(repoRoot, process.env.CARGO_TARGET_DIR) : join(repoRoot, 'target');
  return join(target, 'ci', 'orbita');
}

/** Chromium from Debian; never a downloaded browser. */
export function chromiumPath() {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const path of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(path)) return path;
  throw new Error('Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)');
}

/**
 * Start `orbita serve` on free loopback ports; resolves once it prints where it listens.
 * `stdout()` is everything it printed so far (the session apps it starts print their JSON
 * event lines there too), `log()` its stderr, `pid` its process id, `dataDir` its data
 * directory (a fresh temporary one, removed by `stop()`).
 *
 * Guests may start sessions (`--guests-may-create`, as the tests of calls and apps need)
 * unless `accounts` is set: then only logged-in agents, supervisors and administrators may.
 * `env` adds environment variables (`ORBITA_ADMIN_EMAIL`, `ORBITA_ADMIN_PASSWORD`);
 * `httpAddr` replaces the kernel-chosen HTTP port (an HTTPS test needs to know it first).
 * @param {string[]} [extraArgs]
 * @param {{accounts?: boolean, env?: Record<string, string>, httpAddr?: string}} [options]
 */
export async function startServer(extraArgs = [], { accounts = false, env = {}, httpAddr = '127.0.0.1:0' } = {}) {
  const bin = orbitaBinary();
  if (!existsSync(bin)) throw new Error(`${bin} not found: run cargo build --profile ci first (or set ORBITA_BIN)`);
  const dataDir = mkdtempSync(join(tmpdir(), 'orbita-browser-test-'));
  const args = ['serve', '--http-addr', httpAddr, '--udp-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0', '--log', process.env.ORBITA_TEST_SERVER_LOG ?? 'warn'];
  args.push('--data-dir', dataDir);
  if (!accounts) args.push('--guests-may-create');
  const child = spawn(bin, [...args, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  let out = '';
  child.stdout.on('data', (chunk) => {
    out += chunk;
    if (process.env.ORBITA_TEST_LOG) process.stdout.write(chunk);
  });
  child.stderr.on('data', (chunk) => {
    log += chunk;
    if (process.env.ORBITA_TEST_LOG) process.stderr.write(chunk);
  });
  const base = await new Promise((resolveBase, reject) => {
    const timer = setTimeout(() => reject(new Error(`orbita serve did not start:\n${out}\n${log}`)), 20_000);
    const onData = () => {
      const match = out.match(/orbita listening on (https?:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        resolveBase(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`orbita serve exited (${code}):\n${out}\n${log}`));
    });
  });
  return {
    base,
    dataDir,
    pid: /** @type {number} */ (child.pid),
    log: () => log,
    stdout: () => out,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const BASE_ARGS = [
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--autoplay-policy=no-user-gesture-required',
  '--auto-select-desktop-capture-source=Entire screen',
  // Several tabs share two cores: do not let Chromium slow down the ones in the background.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/**
 * Launch Chromium, with fake camera and microphone unless `devices` is false; `args` are
 * more command-line switches, `env` more environment variables (e.g. a HOME whose NSS
 * database trusts a test CA).
 * @param {{devices?: boolean, args?: string[], env?: Record<string, string>}} [options]
 */
export function launchBrowser({ devices = true, args: extra = [], env = {} } = {}) {
  const args = [...BASE_ARGS, ...extra];
  if (devices) args.push('--use-fake-device-for-media-stream');
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args, env: { ...process.env, ...env } });
}

/**
 * A browser context as one person: desktop-sized unless told otherwise.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {object} [options]
 */
export async function newPerson(browser, base, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
    permissions: ['camera', 'microphone', 'clipboard-read', 'clipboard-write'],
    ...options,
  });
  await context.grantPermissions(['camera', 'microphone', 'clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (process.env.ORBITA_TEST_LOG || msg.type() === 'error') console.log(`[${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (error) => console.log(`[pageerror] ${error.message}`));
  return { context, page };
}

/** Make a room through the API. @param {string} base */
export async function createRoom(base) {
  const response = await fetch(`${base}/api/rooms`, { method: 'POST' });
  if (response.status !== 201) throw new Error(`POST /api/rooms: ${response.status}`);
  return /** @type {{code: string, link: string}} */ (await response.json());
}

/**
 * Open the room page, type a name and join; resolves when the call page is up.
 * @param {import('playwright-core').Page} page
 * @param {string} base
 * @param {string} code
 * @param {string} name
 */
export async function joinRoom(page, base, code, name) {
  await page.goto(`${base}/r/${code}`);
  await page.locator('#name').fill(name);
  await page.locator('#join-button').click();
  await page.locator('.call #grid').waitFor({ timeout: 20_000 });
  await waitFor(() => page.evaluate(() => window.__orbita.session?.status === 'connected'), { message: `${name} connected` });
}

/**
 * Log in as `who` on the login page, make a room from the home page and open it; resolves with
 * the room's code (the pre-join page is up, the host key kept by the tab).
 * @param {import('playwright-core').Page} page
 * @param {string} base
 * @param {{email: string, password: string}} who
 */
export async function loginAndCreateRoom(page, base, who) {
  await page.goto(`${base}/login`);
  await page.locator('#login-email').fill(who.email);
  await page.locator('#login-password').fill(who.password);
  await page.locator('#login-submit').click();
  await page.locator('#create-room').waitFor({ timeout: 20_000 });
  await page.locator('#create-room').click();
  await page.waitForURL(/\/r\/\d+$/, { timeout: 20_000 });
  return new URL(page.url()).pathname.split('/').pop() ?? '';
}

/**
 * `orbita serve` with accounts, `who` its first administrator (the agent of the tests).
 * @param {{email: string, password: string}} who
 * @param {string[]} [extraArgs]
 */
export function startServerWithAdmin(who, extraArgs = []) {
  return startServer(extraArgs, { accounts: true, env: { ORBITA_ADMIN_EMAIL: who.email, ORBITA_ADMIN_PASSWORD: who.password } });
}

/**
 * `who` logs in, makes a room and joins it as `name` (the call's agent): their page and the
 * room's code.
 * @param {import('playwright-core').Browser} browser
 * @param {string} base
 * @param {{email: string, password: string}} who
 * @param {string} name
 */
export async function agentInCall(browser, base, who, name) {
  const { page } = await newPerson(browser, base);
  const code = await loginAndCreateRoom(page, base, who);
  await page.locator('#name').fill(name);
  await page.locator('#join-button').click();
  await page.locator('.call #grid').waitFor({ timeout: 20_000 });
  return { page, code };
}

/**
 * Poll until `check` returns something truthy; returns it.
 * @template T
 * @param {() => Promise<T> | T} check
 * @param {{timeout?: number, interval?: number, message?: string}} [options]
 * @returns {Promise<T>}
 */
export async function waitFor(check, { timeout = 20_000, interval = 250, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message} (last: ${JSON.stringify(last, null, 0)})`);
    await sleep(interval);
  }
}

/**
 * Lets `ms` pass on purpose: a window in which a test checks that something does NOT happen
 * (no bytes sent while muted, no input applied), or a state held for a while (offline). Never
 * to wait for something to happen: that is {@link waitFor}.
 * @param {number} ms
 */
export function during(ms) {
  return sleep(ms);
}

/**
 * Reads `read()` until its value has stayed the same for `quiet` ms (what was in flight has
 * arrived); returns that value.
 * @template T
 * @param {() => Promise<T>} read
 * @param {{quiet?: number, timeout?: number, message?: string}} [options]
 * @returns {Promise<T>}
 */
export async function settled(read, { quiet = 500, timeout = 20_000, message = 'a value to settle' } = {}) {
  const deadline = Date.now() + timeout;
  let value = await read();
  let since = Date.now();
  for (;;) {
    await sleep(100);
    const next = await read();
    if (JSON.stringify(next) !== JSON.stringify(value)) {
      value = next;
      since = Date.now();
    } else if (Date.now() - since >= quiet) {
      return value;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message} (last: ${JSON.stringify(value)})`);
  }
}

/** @param {import('playwright-core').Page} page */
export function stats(page) {
  return page.evaluate(() => window.__orbita.stats());
}

/** @param {import('playwright-core').Page} page */
export function selfId(page) {
  return page.evaluate(() => window.__orbita.session?.selfId ?? null);
}

/**
 * The inbound-rtp stats of what `page` receives from participant `from`.
 * @param {import('playwright-core').Page} page
 * @param {string} from participant id
 * @param {string} source
 */
export async function inbound(page, from, source) {
  const s = await stats(page);
  return s?.inbound.find((i) => i.participantId === from && i.source === source) ?? null;
}

/**
 * Wait until `page` decodes video of `from` and the count grows; returns two readings.
 * @param {import('playwright-core').Page} page
 * @param {string} from
 * @param {string} [source]
 */
export async function expectVideoFlowing(page, from, source = 'camera') {
  const first = await waitFor(async () => {
    const v = await inbound(page, from, source);
    return v && v.framesDecoded > 0 ? v : null;
  }, { timeout: 30_000, message: `${source} video from ${from} decoded` });
  const second = await waitFor(async () => {
    const v = await inbound(page, from, source);
    return v && v.framesDecoded > first.framesDecoded + 5 ? v : null;
  }, { timeout: 20_000, message: `${source} video from ${from} keeps decoding` });
  return { first, second };
}

/**
 * Wait until `page` receives audio of `from` with a level above zero and growing bytes.
 * @param {import('playwright-core').Page} page
 * @param {string} from
 */
export async function expectAudioFlowing(page, from) {
  const first = await waitFor(async () => {
    const a = await inbound(page, from, 'microphone');
    return a && a.bytesReceived > 0 ? a : null;
  }, { timeout: 30_000, message: `audio from ${from}` });
  let maxLevel = 0;
  const second = await waitFor(async () => {
    const a = await inbound(page, from, 'microphone');
    if (!a) return null;
    maxLevel = Math.max(maxLevel, a.audioLevel);
    return a.bytesReceived > first.bytesReceived && maxLevel > 0 && a.totalAudioEnergy > 0 ? a : null;
  }, { timeout: 20_000, message: `audio level from ${from}` });
  return { first, second, maxLevel };
}

/**
 * Save a screenshot of the page as screenshots/NAME.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

