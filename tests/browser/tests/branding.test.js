// Branding, consent and one-way video in the browser (docs/calls.md): the administrator sets
// the company, a colour, a logo, the consent text, the page after the call, "video customer
// to agent only" and the survey on /admin; the agent's camera button is off and says why, and the agent sends
// no picture; the customer's page is branded before it shows anything, joining waits for the
// consent, the customer's picture reaches the agent, the customer chats, leaves, answers the
// survey and is sent to the organisation's page; the call's page shows the acceptance.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectVideoFlowing, launchBrowser, loginAndCreateRoom, newPerson, screenshot, startServer, waitFor } from './helpers.js';

const ADMIN = { email: 'brand-admin@orbita.test', password: 'brand-admin-password-1' };
/** An 8x8 orange PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGN4ESuFFTEMLQkAfUZXwbDFdmEAAAAASUVORK5CYII=', 'base64');
const CONSENT = 'This call may be recorded for quality and training.\n\nYour data is kept for 90 days.';

describe('branding, consent and one-way video', { concurrency: false }, () => {
  /** @type {Awaited<ReturnType<typeof startServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let browser;

  before(async () => {
    server = await startServer(['--empty-room-grace-secs', '1'], {
      accounts: true,
      env: { ORBITA_ADMIN_EMAIL: ADMIN.email, ORBITA_ADMIN_PASSWORD: ADMIN.password },
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the customer is branded, accepts, is seen one way, answers and is sent on', async () => {
    const { page: agent } = await newPerson(browser, server.base);
    const code = await loginAndCreateRoom(agent, server.base, ADMIN);

    // The administrator's settings, on /admin.
    await agent.goto(`${server.base}/admin`);
    await agent.locator('#branding-form').waitFor({ timeout: 20_000 });
    await agent.locator('#brand-company-input').fill('Acme Insurance');
    await agent.locator('#brand-primary-color').fill('not a colour');
    await agent.locator('#branding-save').click();
    await agent.locator('#brand-primary-color-error', { hasText: '#rrggbb' }).waitFor();
    await agent.locator('#brand-primary-color').fill('#0b8043');
    await agent.locator('#brand-consent').fill(CONSENT);
    await agent.locator('#brand-redirect').fill(`${server.base}/?after-call=1`);
    await agent.locator('#branding-save').click();
    await agent.locator('#branding-saved', { hasText: 'Saved' }).waitFor();
    await agent.locator('#brand-logo-file').setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: PNG });
    await agent.locator('#logo-preview').waitFor();
    await agent.locator('#features-scope').fill('video-room');
    await agent.locator('#features-scope').dispatchEvent('change');
    await agent.locator('#feature-agent-camera').uncheck();
    await agent.locator('#features-save').click();
    await agent.locator('#features-saved', { hasText: 'Saved' }).waitFor();
    await screenshot(agent, 'admin-call-settings');
    // A survey, made in the editor, so the customer answers before going on: a choice
    // without choices is refused by the server, and said.
    await agent.locator('#survey-add').click();
    await agent.locator('#survey-items .form-item').nth(0).locator('.item-id').fill('rating');
    await agent.locator('#survey-items .form-item').nth(0).locator('.item-label').fill('How was the call?');
    await agent.locator('#survey-items .form-item').nth(0).locator('input[type="checkbox"]').check();
    await agent.locator('#survey-add').click();
    const second = agent.locator('#survey-items .form-item').nth(1);
    await second.locator('.item-id').fill('again');
    await second.locator('.item-kind').selectOption('choice');
    await second.locator('.item-label').fill('Would you call again?');
    await agent.locator('#forms-save').click();
    await agent.locator('#forms-error', { hasText: 'choices' }).waitFor();
    await second.locator('.item-choices').fill('yes, no');
    await agent.locator('#forms-save').click();
    await agent.locator('#forms-saved', { hasText: 'Saved' }).waitFor();
    const stored = await (await agent.request.get(`${server.base}/api/call-forms`)).json();
    assert.deepEqual(stored.forms.default.survey, [
      { id: 'rating', kind: 'rating', label: 'How was the call?', required: true },
      { id: 'again', kind: 'choice', label: 'Would you call again?', choices: ['yes', 'no'], required: false },
    ]);

    // The agent joins: no consent asked of them, and their camera is switched off, saying why.
    await agent.goto(`${server.base}/r/${code}`);
    await agent.locator('#name').fill('Agent Ann');
    assert.equal(await agent.locator('#consent').count(), 0, 'the agent is not asked to consent');
    await agent.locator('#join-button').click();
    await agent.locator('.call #grid').waitFor({ timeout: 20_000 });
    await waitFor(() => agent.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'agent connected' });
    const camera = agent.locator('#control-camera');
    assert.equal(await camera.isDisabled(), true, 'the camera button is off');
    assert.match((await camera.getAttribute('title')) ?? '', /switched off .*administrators/);
    assert.match((await camera.getAttribute('aria-label')) ?? '', /switched off .*administrators/);
    assert.match((await camera.textContent()) ?? '', /not in this call/);
    assert.equal(await agent.evaluate(() => window.__orbita.session.features.camera), false);

    // The customer's page: branded before anything else is shown; joining waits for consent.
    const { page: customer } = await newPerson(browser, server.base, { viewport: { width: 390, height: 844 } });
    await customer.goto(`${server.base}/r/${code}`);
    await customer.locator('#brand-company', { hasText: 'Acme Insurance' }).waitFor({ timeout: 20_000 });
    await waitFor(() => customer.locator('#brand-logo').evaluate((img) => /** @type {HTMLImageElement} */ (img).naturalWidth === 8), { message: 'the logo loaded' });
    assert.equal(await customer.title(), 'Acme Insurance');
    const accent = await customer.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim());
    assert.equal(accent, '#0b8043');
    await customer.locator('#consent-text', { hasText: 'kept for 90 days' }).waitFor();
    await customer.locator('#name').fill('Olga');
    assert.equal(await customer.locator('#join-button').isDisabled(), true, 'joining waits for the consent');
    await screenshot(customer, 'prejoin-consent-phone');
    await customer.locator('#consent-accept').check();
    await customer.locator('#join-button').click();
    await customer.locator('.call #grid').waitFor({ timeout: 20_000 });
    await waitFor(() => customer.evaluate(() => window.__orbita.session?.status === 'connected'), { message: 'customer connected' });

    // Video one way: the customer's picture reaches the agent; the agent publishes none.
    const customerId = await customer.evaluate(() => window.__orbita.session.selfId);
    await expectVideoFlowing(agent, customerId);
    const agentId = await agent.evaluate(() => window.__orbita.session.selfId);
    const agentSources = await customer.evaluate(
      (id) => [...(window.__orbita.session.participants.get(id)?.tracks.values() ?? [])].map((t) => t.source),
      agentId,
    );
    assert.ok(!agentSources.includes('camera'), `the agent publishes ${agentSources}`);
    await screenshot(agent, 'one-way-video-agent');

    // The customer chats, leaves, answers the survey and goes on to the organisation's page.
    await customer.locator('#control-chat').click();
    await customer.locator('#chat-input').fill('Thank you!');
    await customer.locator('#chat-input').press('Enter');
    await agent.locator('#control-chat').click();
    await agent.locator('.chat-message', { hasText: 'Thank you!' }).waitFor({ timeout: 10_000 });
    await customer.locator('#control-chat').click();
    await customer.locator('#control-leave').click();
    await customer.locator('#survey').waitFor({ timeout: 20_000 });
    await customer.locator('#survey [data-question="rating"] input[value="5"]').check({ force: true });
    await customer.locator('#survey-send').click();
    await customer.locator('#redirect-link').waitFor();
    await customer.waitForURL(/after-call=1/, { timeout: 20_000 });

    // The call's page: the customer's acceptance, with the text they accepted.
    await agent.locator('#control-leave').click();
    await agent.goto(`${server.base}/calls`);
    const row = agent.locator('.call-row').first();
    await waitFor(async () => (await row.count()) > 0, { message: 'the call in the history' });
    await row.locator('a').first().click();
    const consent = agent.locator('.call-person[data-role="customer"] .person-consent details');
    await consent.waitFor({ timeout: 20_000 });
    await consent.locator('summary').click();
    await agent.locator('.person-consent .consent-text', { hasText: 'kept for 90 days' }).waitFor();
    assert.equal(await agent.locator('.call-person[data-role="agent"] .person-consent details').count(), 0);
    // The customer's camera and microphone as their browser named them (Chromium's fake ones).
    const media = await agent.locator('.call-person[data-role="customer"] .person-media').allTextContents();
    assert.ok(media.some((m) => /fake/i.test(m)), `the customer's devices: ${media}`);
    await screenshot(agent, 'call-record-consent');
  });
});
