// Locations in the call, in Chromium: the agent asks the customer for their location; the
// customer sees the request and shares it (the browser's Geolocation API, set by the test);
// the agent's chat shows the address from a local Nominatim-compatible fake (which checks the
// request as Nominatim documents it), the map link and the tile with the place marked. Asked
// again, the customer declines; with the browser's permission withdrawn, the agent is told
// the browser may not tell it.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { agentInCall, joinRoom, launchBrowser, newPerson, screenshot, startServerWithAdmin, waitFor } from './helpers.js';

const AGENT = { email: 'location-admin@orbita.test', password: 'location-admin-password-1' };
const HERE = { latitude: 43.238949, longitude: 76.889709, accuracy: 25 };
const ADDRESS = '1, проспект Абая, Алмалинский район, Алматы, 050000, Казахстан';
/** A 1x1 PNG: the tile server's answer. */
const TILE = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');

describe('locations in the call', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServerWithAdmin>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;
  /** @type {{url: URL, headers: import('node:http').IncomingHttpHeaders}[]} */
  const asked = [];
  /** @type {import('node:http').Server} */
  let fake;

  before(async () => {
    // Nominatim's /reverse and a tile server, as they document their requests.
    fake = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://fake');
      asked.push({ url, headers: request.headers });
      if (url.pathname === '/reverse') {
        const ok = url.searchParams.get('format') === 'jsonv2' && Number(url.searchParams.get('lat')).toFixed(4) === '43.2389';
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(ok ? { place_id: 1, display_name: ADDRESS } : { error: 'Unable to geocode' }));
      } else if (url.pathname.startsWith('/tiles/16/')) {
        response.writeHead(200, { 'content-type': 'image/png' });
        response.end(TILE);
      } else {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise((resolve) => fake.listen(0, '127.0.0.1', () => resolve(undefined)));
    const address = fake.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    server = await startServerWithAdmin(AGENT, ['--geocoder-url', base, '--map-tile-url', `${base}/tiles/{z}/{x}/{y}.png`]);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    fake?.close();
  });

  test('asked, the customer shares their place; the agent sees the address and the map; then a refusal', async () => {
    const { page: agent, code } = await agentInCall(browser, server.base, AGENT, 'Agent Ann');
    const { context, page: customer } = await newPerson(browser, server.base, { locale: 'ru-RU', geolocation: HERE });
    await context.grantPermissions(['geolocation'], { origin: server.base });
    await joinRoom(customer, server.base, code, 'Олег');
    await waitFor(() => agent.evaluate(() => [...window.__orbita.session.participants.values()].some((p) => p.role === 'customer')), {
      message: 'the agent sees the customer',
    });

    // The agent asks; the customer is asked, in Russian, and shares.
    await agent.locator('#control-chat').click();
    await agent.locator('#chat-ask-location').click();
    const prompt = customer.locator('.location-request');
    await prompt.waitFor();
    assert.match(await prompt.innerText(), /Agent Ann просит ваше местоположение/);
    await screenshot(customer, 'location-request-customer');
    await customer.locator('#location-share').click();

    // The agent's chat: the address, the accuracy, the map link, the tile with the place.
    const place = agent.locator('.chat-location');
    await place.waitFor({ timeout: 20_000 });
    assert.equal(await place.locator('.chat-location-address').innerText(), ADDRESS);
    assert.match(await place.innerText(), /within 25 m/);
    assert.equal(
      await place.locator('.chat-location-link').getAttribute('href'),
      'https://www.openstreetmap.org/?mlat=43.238949&mlon=76.889709#map=17/43.238949/76.889709',
    );
    await waitFor(() => place.locator('.chat-map-tile').evaluate((img) => /** @type {HTMLImageElement} */ (img).complete && /** @type {HTMLImageElement} */ (img).naturalWidth === 1), {
      message: 'the tile is drawn',
    });
    const marker = await place.locator('.chat-map-marker').evaluate((m) => [/** @type {HTMLElement} */ (m).style.left, /** @type {HTMLElement} */ (m).style.top]);
    assert.deepEqual(marker, ['88px', '144px']);
    await screenshot(agent, 'location-agent');

    // Nominatim was asked as it documents, in the customer's language, by an identified client.
    const reverse = asked.find((r) => r.url.pathname === '/reverse');
    assert.ok(reverse, JSON.stringify(asked.map((r) => r.url.href)));
    assert.equal(reverse.url.searchParams.get('format'), 'jsonv2');
    assert.equal(reverse.url.searchParams.get('lat'), '43.2389490');
    assert.equal(reverse.url.searchParams.get('lon'), '76.8897090');
    assert.match(String(reverse.headers['user-agent']), /^Orbita\//);
    assert.match(String(reverse.headers['accept-language']), /^ru/);
    assert.ok(asked.some((r) => r.url.pathname === '/tiles/16/46765/24021.png'), 'the tile around the place');

    // Asked again, the customer declines.
    await agent.locator('#chat-ask-location').click();
    await prompt.waitFor();
    await customer.locator('#location-decline').click();
    const declined = agent.locator('.chat-declined');
    await declined.waitFor();
    assert.match(await declined.innerText(), /Олег declined to share their location/);

    // With the browser's permission withdrawn, sharing fails in the browser: both are told.
    await context.clearPermissions();
    await agent.locator('#chat-ask-location').click();
    await prompt.waitFor();
    await customer.locator('#location-share').click();
    await agent.locator('.chat-declined', { hasText: 'not allowed' }).waitFor({ timeout: 20_000 });
    await customer.locator('.toast', { hasText: 'Браузеру не разрешено' }).waitFor();
    await context.close();
    await agent.context().close();
  });
});
