// The call history in the browser: an agent (logged in, who created the room) and a customer
// on a phone talk and chat, then leave; the agent finds the call in the history by the
// customer's name, opens it (both browsers and devices, the chat, the timeline, quality charts
// from both browsers and the server) and exports the list as CSV and Excel with the same
// filter. During the call the agent sees the customer's connection figures on their tile; after
// it the customer answers the administrator's survey and the agent fills a required field.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { joinRoom, launchBrowser, newPerson, screenshot, startServer, waitFor } from './helpers.js';

const AGENT = { email: 'history-admin@orbita.test', password: 'history-admin-password-1' };
const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';

describe('the call history', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    // A room left empty closes after a second: its call ends then (at its last leave).
    server = await startServer(['--empty-room-grace-secs', '1'], {
      accounts: true,
      env: { ORBITA_ADMIN_EMAIL: AGENT.email, ORBITA_ADMIN_PASSWORD: AGENT.password },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('a call is found by its customer, shown whole and exported', async () => {
    const { page: agent } = await newPerson(browser, server.base);
    await agent.goto(`${server.base}/login`);
    await agent.locator('#login-email').fill(AGENT.email);
    await agent.locator('#login-password').fill(AGENT.password);
    await agent.locator('#login-submit').click();
    await agent.locator('#create-room').waitFor({ timeout: 20_000 });
    // The administrator's survey and fields for every app.
    const forms = await agent.request.put(`${server.base}/api/call-forms/default`, {
      data: {
        survey: [
          { id: 'rating', kind: 'rating', label: 'How was the call?', required: true },
          { id: 'again', kind: 'choice', label: 'Would you call again?', choices: ['yes', 'no'] },
        ],
        fields: [{ id: 'contract', kind: 'text', label: 'Contract number', required: true }],
      },
    });
    assert.equal(forms.status(), 200, await forms.text());
    await agent.locator('#create-room').click();
    await agent.waitForURL(/\/r\/\d+$/, { timeout: 20_000 });
    const code = new URL(agent.url()).pathname.split('/').pop() ?? '';
    await agent.locator('#name').fill('Agent Ann');
    await agent.locator('#join-button').click();
    await agent.locator('.call #grid').waitFor({ timeout: 20_000 });
    await waitFor(() => agent.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'agent connected' });

    // The customer, on a phone (its browser says so), joins and writes.
    const { page: customer } = await newPerson(browser, server.base, { userAgent: IPHONE_UA, viewport: { width: 390, height: 844 } });
    await joinRoom(customer, server.base, code, 'Олег Петров');
    await customer.locator('#control-chat').click();
    await customer.locator('#chat-input').fill('Hello, I see you');
    await customer.locator('#chat-input').press('Enter');
    await agent.locator('#control-chat').click();
    await agent.locator('.chat-message', { hasText: 'Hello, I see you' }).waitFor({ timeout: 10_000 });

    // Connection quality: the agent sees the customer's figures live on their tile (the
    // customer's browser reports every 5 s; a rate needs two); each side hears the server's
    // view of itself.
    const customerId = await customer.evaluate(() => window.__orbita.session.selfId);
    const live = agent.locator(`.tile[data-participant="${customerId}"] .tile-quality`);
    await waitFor(async () => /↑ \d/.test((await live.textContent()) ?? ''), { timeout: 30_000, message: "the customer's figures on the agent's tile" });
    assert.match((await live.textContent()) ?? '', /RTT \d+ ms/);
    await screenshot(agent, 'calls-live-quality');
    assert.equal(await customer.locator('.tile-quality:not([hidden])').count(), 0, 'only the agent sees figures');
    for (const page of [agent, customer]) {
      await waitFor(
        () =>
          page.evaluate(() => {
            const s = window.__orbita.session;
            return s.peerQuality.get(s.selfId)?.server?.report?.out_kbps !== undefined;
          }),
        { timeout: 30_000, message: "the server's view of one's own connection" },
      );
    }
    await customer.locator('#control-leave').click();
    // The customer answers the survey (a required rating first forgotten).
    await customer.locator('#survey').waitFor({ timeout: 20_000 });
    await customer.locator('#survey-send').click();
    await customer.locator('#survey-error', { hasText: 'How was the call?' }).waitFor();
    await customer.locator('[data-question="rating"] input[value="4"]').check();
    await customer.locator('[data-question="again"] input[value="yes"]').check();
    await screenshot(customer, 'calls-survey');
    await customer.locator('#survey-send').click();
    await customer.locator('#survey-thanks').waitFor({ timeout: 20_000 });
    await agent.locator('#control-leave').click();

    // The history: found by part of the customer's name in another case.
    await agent.goto(`${server.base}/calls`);
    await agent.locator('#calls-table[data-loaded="true"]').waitFor({ timeout: 20_000 });
    await agent.locator('#calls-customer').fill('олег');
    await agent.locator('#calls-apply').click();
    const row = agent.locator('.call-row', { hasText: 'Олег Петров' });
    // The record is written a moment after the call ends: look again until it shows ended.
    await waitFor(
      async () => {
        await agent.locator('#calls-apply').click();
        return (await row.count()) === 1 && (await row.locator('.call-live').count()) === 0;
      },
      { timeout: 20_000, message: 'the ended call in the history' },
    );
    assert.equal(await agent.locator('.call-row').count(), 1);
    assert.match(await row.locator('.call-agent').innerText(), /\S/);
    await screenshot(agent, 'calls-history');
    // Nobody by that name: nothing.
    await agent.locator('#calls-customer').fill('nobody-by-this-name');
    await agent.locator('#calls-apply').click();
    await agent.locator('#calls-status', { hasText: 'No calls match' }).waitFor();
    assert.equal(await agent.locator('.call-row').count(), 0);

    // The exports hold the same call (with the customer filter of the form).
    await agent.locator('#calls-customer').fill('Олег');
    await agent.locator('#calls-apply').click();
    await row.waitFor();
    const csvHref = await agent.locator('#calls-export-csv').getAttribute('href');
    assert.ok(csvHref?.includes('customer='), csvHref ?? '');
    const csv = await agent.request.get(`${server.base}${csvHref}`);
    assert.equal(csv.status(), 200);
    const text = await csv.text();
    const lines = text.trim().split('\n');
    assert.equal(lines.length, 2, text);
    assert.match(lines[1], /Олег Петров: Safari 17, iOS 17\.1, mobile/);
    const xlsx = await agent.request.get(`${server.base}${await agent.locator('#calls-export-xlsx').getAttribute('href')}`);
    assert.equal(xlsx.status(), 200);
    const bytes = await xlsx.body();
    assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'an xlsx is a zip');

    // One call: people with their browsers and devices, the chat, the timeline.
    await row.locator('.call-when a').click();
    await agent.locator('#call-people').waitFor({ timeout: 20_000 });
    const person = (/** @type {string} */ role) => agent.locator(`.call-person[data-role="${role}"]`);
    assert.equal(await person('customer').locator('td').first().innerText(), 'Олег Петров');
    assert.equal(await person('customer').locator('.person-browser').innerText(), 'Safari 17');
    assert.equal(await person('customer').locator('.person-os').innerText(), 'iOS 17.1');
    assert.equal(await person('customer').locator('.person-device').innerText(), 'Phone');
    assert.match(await person('agent').locator('.person-browser').innerText(), /^Chrome \d+$/);
    assert.equal(await person('agent').locator('.person-device').innerText(), 'Computer');
    await agent.locator('.call-chat-line', { hasText: 'Hello, I see you' }).waitFor();
    assert.equal(await agent.locator('.call-chat-line .chat-who').first().innerText(), 'Олег Петров');
    assert.equal(await agent.locator('#call-timeline .timeline-row').count(), 2);
    assert.ok((await agent.locator('#call-timeline .timeline-stay').count()) >= 2);
    assert.equal(await agent.locator('#call-timeline .timeline-chat').count(), 1);
    // Quality charts with points from both browsers and from the server, for both people.
    const bitrate = agent.locator(`.quality-person[data-participant="${customerId}"] .quality-chart[data-metric="bitrate"]`);
    const points = async (/** @type {string} */ source) =>
      Number((await bitrate.locator(`polyline[data-source="${source}"][data-field="out_kbps"]`).getAttribute('data-points')) ?? 0);
    assert.ok((await points('browser')) >= 1, "the customer's browser's bitrate");
    assert.ok((await points('server')) >= 1, "the server's view of the customer's bitrate");
    const charts = await agent.locator('.quality-person').count();
    assert.equal(charts, 2);
    for (const person of await agent.locator('.quality-person').all()) {
      assert.ok((await person.locator('polyline[data-source="browser"]').count()) >= 1, 'a line from the browser');
      assert.ok((await person.locator('polyline[data-source="server"]').count()) >= 1, 'a line from the server');
    }
    await agent.locator('#call-quality').scrollIntoViewIfNeeded();
    await screenshot(agent, 'calls-one');
    // The customer's answers, and the agent's required field.
    assert.equal(await agent.locator('.survey-answer[data-question="rating"] dd').innerText(), '4 ★');
    assert.equal(await agent.locator('.survey-answer[data-question="again"] dd').innerText(), 'yes');
    await agent.locator('#call-fields-save').click();
    await agent.locator('#call-fields-error', { hasText: 'Contract number is required' }).waitFor({ timeout: 10_000 });
    await agent.locator('#field-contract').fill('A-17');
    await agent.locator('#call-fields-save').click();
    await agent.locator('#call-fields-saved', { hasText: 'Saved' }).waitFor({ timeout: 10_000 });
    await agent.reload();
    await agent.locator('#field-contract').waitFor({ timeout: 20_000 });
    assert.equal(await agent.locator('#field-contract').inputValue(), 'A-17');
    // The history shows the rating and filters by it.
    await agent.goto(`${server.base}/api/calls?min_rating=4`);
    const rated = JSON.parse(await agent.locator('body').innerText());
    assert.equal(rated.calls.length, 1);
    assert.equal(rated.calls[0].rating, 4);

    // Someone else's or no such call: said plainly.
    await agent.goto(`${server.base}/calls?id=no-such-call`);
    await agent.locator('#call-error', { hasText: 'no such call' }).waitFor({ timeout: 20_000 });
  });
});
