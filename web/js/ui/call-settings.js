// The administrator's call settings on /admin (docs/calls.md, "Branding, consent and feature
// switches"): the organisation's branding (company, colours, logo), the consent text guests
// accept before joining, where customers go after the call, and which call features each role
// has, for every app or one.

import { ApiError } from '../api.js';
import { call } from '../accounts.js';
import { setText } from '../i18n.js';
import { clear, h } from './dom.js';
import { busy, field, say, showApiError } from './forms.js';
import { section } from './page.js';

/** The switches, in the order shown. */
const FEATURES = ['camera', 'microphone', 'screen', 'chat', 'files', 'record'];
const ROLES_IN_CALL = ['agent', 'customer'];
const MAX_LOGO_BYTES = 256 * 1024;
const LOGO_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];
const COLOR = /^#[0-9a-fA-F]{6}$/;

/**
 * @typedef {{camera: boolean, microphone: boolean, screen: boolean, chat: boolean, files: boolean, record: boolean}} Features
 * @typedef {{agent: Features, customer: Features}} RoleFeatures
 * @typedef {{version: number, branding: import('../branding.js').Branding, consent_id: string | null,
 *   logo: {type: string, bytes: number} | null, features: Record<string, RoleFeatures>}} CallSettings
 */

/** The administrator's sections: branding, then the switches. */
export function callSettingsSections() {
  const status = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'branding-error' } });
  const brandingBody = h('div', { attrs: { id: 'branding-body' } });
  const featuresBody = h('div', { attrs: { id: 'features-body' } });
  const featuresStatus = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'features-error' } });
  const sections = [
    section('branding', 'settings.branding', h('p', { class: 'notice-text', text: 'settings.branding_hint' }), status, brandingBody),
    section('features', 'settings.features', h('p', { class: 'notice-text', text: 'settings.features_hint' }), featuresStatus, featuresBody),
  ];
  /** @type {CallSettings | null} */
  let settings = null;

  async function load() {
    try {
      settings = /** @type {CallSettings} */ (await call('GET', '/api/settings/calls'));
      say(status, null);
      clear(brandingBody);
      brandingBody.append(brandingForm(settings, status, load));
      clear(featuresBody);
      featuresBody.append(featuresForm(settings, featuresStatus, load));
    } catch (e) {
      showApiError(status, e);
    }
  }
  load();
  return sections;
}

/**
 * @param {CallSettings} s
 * @param {HTMLElement} status
 * @param {() => Promise<void>} reload
 */
function brandingForm(s, status, reload) {
  const b = s.branding;
  const company = field({ id: 'brand-company-input', label: 'settings.company', attrs: { maxlength: 100 } });
  company.input.value = b.company;
  const colors = ['primary_color', 'accent_color'].map((name) => {
    const f = field({ id: `brand-${name.replace('_', '-')}`, label: `settings.${name}`, hint: 'settings.color_hint', attrs: { maxlength: 7, placeholder: '#1a73e8' } });
    f.input.value = /** @type {any} */ (b)[name];
    const swatch = h('span', { class: 'color-swatch', attrs: { 'aria-hidden': 'true' } });
    const paint = () => {
      swatch.style.background = COLOR.test(f.input.value) ? f.input.value : 'transparent';
    };
    f.input.addEventListener('input', paint);
    paint();
    f.wrap.append(swatch);
    return { name, f };
  });
  const consent = field({ id: 'brand-consent', label: 'settings.consent_text', hint: 'settings.consent_hint', type: 'textarea', attrs: { maxlength: 5000, rows: 5 } });
  consent.input.value = b.consent_text;
  const redirect = field({ id: 'brand-redirect', label: 'settings.redirect_url', hint: 'settings.redirect_hint', type: 'url', attrs: { maxlength: 2000, placeholder: 'https://example.org/thanks' } });
  redirect.input.value = b.redirect_url;
  const save = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'branding-save' }, text: 'settings.save' });
  const saved = h('p', { class: 'notice-text', attrs: { id: 'branding-saved', role: 'status' } });
  const form = h(
    'form',
    { class: 'settings-form', attrs: { id: 'branding-form', novalidate: true } },
    company.wrap,
    ...colors.map(({ f }) => f.wrap),
    consent.wrap,
    redirect.wrap,
    save,
    saved,
    logoField(s, status, reload),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let ok = true;
    for (const { f } of colors) {
      const bad = f.input.value.trim() !== '' && !COLOR.test(f.input.value.trim());
      f.invalid(bad ? 'settings.bad_color' : null);
      if (bad) ok = false;
    }
    if (!ok) return;
    busy(save, async () => {
      say(status, null);
      say(saved, null);
      try {
        await call('PUT', '/api/settings/branding', {
          company: company.input.value.trim(),
          primary_color: colors[0].f.input.value.trim(),
          accent_color: colors[1].f.input.value.trim(),
          consent_text: consent.input.value.trim(),
          redirect_url: redirect.input.value.trim(),
        });
        setText(saved, 'settings.saved');
      } catch (e) {
        showApiError(status, e);
      }
    });
  });
  return form;
}

/**
 * The logo: its preview, a file to upload (type and size checked here, and by the server),
 * and removing it.
 * @param {CallSettings} s
 * @param {HTMLElement} status
 * @param {() => Promise<void>} reload
 */
function logoField(s, status, reload) {
  const input = h('input', { attrs: { type: 'file', id: 'brand-logo-file', accept: LOGO_TYPES.join(',') } });
  const preview = s.logo
    ? h('img', { class: 'logo-preview', attrs: { src: `/api/branding/logo?v=${s.version}`, alt: '', id: 'logo-preview' } })
    : h('p', { class: 'notice-text', text: 'settings.no_logo' });
  const remove = h('button', { class: 'button ghost', attrs: { type: 'button', id: 'logo-remove', hidden: !s.logo }, text: 'settings.logo_remove' });
  input.addEventListener('change', async () => {
    const file = input.files?.[0];
    if (!file) return;
    if (!LOGO_TYPES.includes(file.type)) {
      setText(status, 'settings.logo_type');
      return;
    }
    if (file.size > MAX_LOGO_BYTES) {
      setText(status, 'settings.logo_size', { kib: MAX_LOGO_BYTES / 1024 });
      return;
    }
    say(status, null);
    try {
      const response = await fetch('/api/settings/logo', { method: 'PUT', credentials: 'same-origin', headers: { 'content-type': file.type }, body: file });
      if (!response.ok) {
        const data = await response.json().catch(() => null);
        throw new ApiError(String(data?.error ?? `http_${response.status}`), String(data?.message ?? ''), response.status);
      }
      await reload();
    } catch (e) {
      showApiError(status, e);
    }
  });
  remove.addEventListener('click', () =>
    busy(remove, async () => {
      try {
        await call('DELETE', '/api/settings/logo');
        await reload();
      } catch (e) {
        showApiError(status, e);
      }
    }),
  );
  return h(
    'div',
    { class: 'field logo-field' },
    h('label', { class: 'field-label', attrs: { for: 'brand-logo-file' }, text: 'settings.logo' }),
    preview,
    input,
    h('p', { class: 'field-hint', text: 'settings.logo_hint', args: { kib: MAX_LOGO_BYTES / 1024 } }),
    remove,
  );
}

/**
 * The app whose settings are edited: any name may be typed (`default` at first), `default`,
 * plain rooms and the apps that have some offered.
 * @param {string} id
 * @param {string[]} known the apps with settings of their own
 */
export function scopeField(id, known) {
  const scope = field({ id, label: 'settings.scope', hint: 'settings.scope_hint', attrs: { list: `${id}s`, maxlength: 64 } });
  scope.input.value = 'default';
  scope.wrap.append(h('datalist', { attrs: { id: `${id}s` } }, ...[...new Set(['default', 'video-room', ...known])].map((name) => h('option', { attrs: { value: name } }))));
  return scope;
}

/**
 * The switches of one app (or every app): a checkbox per feature and role.
 * @param {CallSettings} s
 * @param {HTMLElement} status
 * @param {() => Promise<void>} reload
 */
function featuresForm(s, status, reload) {
  const scope = scopeField('features-scope', Object.keys(s.features));
  const table = h('table', { class: 'features-table', attrs: { id: 'features-table' } });
  /** @type {Record<string, Record<string, HTMLInputElement>>} */
  const boxes = {};
  const head = h('tr', {}, h('th', { attrs: { scope: 'col' }, text: 'settings.feature' }), ...ROLES_IN_CALL.map((r) => h('th', { attrs: { scope: 'col' }, text: `settings.role_${r}` })));
  table.append(h('thead', {}, head));
  const body = h('tbody');
  for (const f of FEATURES) {
    const row = h('tr', {}, h('th', { attrs: { scope: 'row' }, text: `settings.feature_${f}` }));
    for (const r of ROLES_IN_CALL) {
      const box = h('input', { attrs: { type: 'checkbox', id: `feature-${r}-${f}`, 'data-role': r, 'data-feature': f } });
      (boxes[r] ??= {})[f] = box;
      // Customers never record.
      if (r === 'customer' && f === 'record') box.disabled = true;
      row.append(h('td', {}, box));
    }
    body.append(row);
  }
  table.append(body);
  const fill = () => {
    const name = scope.input.value.trim();
    const own = s.features[name] ?? s.features.default;
    for (const r of ROLES_IN_CALL) {
      for (const f of FEATURES) boxes[r][f].checked = own ? /** @type {any} */ (own)[r][f] !== false : true;
    }
    boxes.customer.record.checked = false;
    reset.hidden = !(name in s.features);
  };
  const save = h('button', { class: 'button primary', attrs: { type: 'submit', id: 'features-save' }, text: 'settings.save' });
  const reset = h('button', { class: 'button ghost', attrs: { type: 'button', id: 'features-reset' }, text: 'settings.features_reset' });
  const saved = h('p', { class: 'notice-text', attrs: { id: 'features-saved', role: 'status' } });
  scope.input.addEventListener('change', fill);
  const form = h('form', { class: 'settings-form', attrs: { id: 'features-form', novalidate: true } }, scope.wrap, table, h('div', { class: 'row-action' }, save, reset), saved);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    /** @type {Record<string, Record<string, boolean>>} */
    const body = {};
    for (const r of ROLES_IN_CALL) {
      body[r] = {};
      for (const f of FEATURES) body[r][f] = boxes[r][f].checked;
    }
    busy(save, async () => {
      say(status, null);
      try {
        const name = scope.input.value.trim() || 'default';
        const answer = await call('PUT', `/api/settings/features/${encodeURIComponent(name)}`, body);
        s.features = answer.features;
        fill();
        setText(saved, 'settings.saved');
      } catch (e) {
        showApiError(status, e);
      }
    });
  });
  reset.addEventListener('click', () =>
    busy(reset, async () => {
      try {
        await call('DELETE', `/api/settings/features/${encodeURIComponent(scope.input.value.trim())}`);
        await reload();
      } catch (e) {
        showApiError(status, e);
      }
    }),
  );
  fill();
  return form;
}
