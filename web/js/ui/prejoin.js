// The pre-join page: camera and microphone preview, device pickers, display name; missing
// or refused devices are explained, and joining without them (receive only) is allowed.

import { branding, paragraphs } from '../branding.js';
import { setText, t } from '../i18n.js';
import { isFrontCamera } from '../media.js';
import { clear, h } from './dom.js';
import { pageHeader } from './header.js';
import { icon } from './icons.js';

/** @typedef {import('../media.js').LocalMedia} LocalMedia */

const NAME_KEY = 'orbita.name';
const MAX_NAME_CHARS = 64;

/**
 * Check a display name as the server does (1 to 64 characters after trimming, no control
 * characters); returns a translation key for what is wrong, or null.
 * @param {string} name
 */
export function nameProblem(name) {
  const trimmed = name.trim();
  if (!trimmed) return 'prejoin.name_required';
  if (Array.from(trimmed).length > MAX_NAME_CHARS) return 'prejoin.name_too_long';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(trimmed)) return 'prejoin.name_invalid';
  return null;
}

/**
 * @typedef {object} PrejoinView
 * @property {(busy: boolean) => void} setBusy
 * @property {(key: string, args?: Record<string, string | number>, detail?: string) => void} showError
 * @property {() => void} destroy
 */

/**
 * @param {HTMLElement} root
 * @param {{code: string, local: LocalMedia, participants: number | null, recorded?: boolean, askConsent?: boolean,
 *   onJoin: (choice: {name: string, micMuted: boolean, cameraOff: boolean, consent: string | null}) => void}} options
 *   `askConsent`: a guest, who must accept the organisation's consent text (when it has one)
 * @returns {PrejoinView}
 */
export function renderPrejoin(root, { code, local, participants, recorded = false, askConsent = false, onJoin }) {
  let micMuted = !local.micWanted;
  let cameraOff = !local.cameraWanted;

  const video = h('video', { class: 'preview-video', attrs: { autoplay: true, playsinline: true, muted: true } });
  video.muted = true;
  const placeholder = h('div', { class: 'preview-placeholder' });
  const meterFill = h('div', { class: 'meter-fill' });
  const meter = h('div', { class: 'meter', attrs: { 'aria-hidden': 'true' } }, meterFill);
  const micButton = h('button', { class: 'round-button', attrs: { type: 'button', id: 'prejoin-mic' } });
  const camButton = h('button', { class: 'round-button', attrs: { type: 'button', id: 'prejoin-camera' } });
  const preview = h(
    'div',
    { class: 'preview' },
    video,
    placeholder,
    h('div', { class: 'preview-controls' }, micButton, camButton),
    meter,
  );

  const nameInput = h('input', {
    attrs: { id: 'name', name: 'name', autocomplete: 'name', maxlength: MAX_NAME_CHARS, required: true },
    t: { placeholder: 'prejoin.name_placeholder' },
  });
  nameInput.value = readName();
  nameInput.addEventListener('input', () => {
    error.textContent = '';
  });
  const cameraSelect = h('select', { attrs: { id: 'camera-select' } });
  const micSelect = h('select', { attrs: { id: 'mic-select' } });
  const cameraField = h('div', { class: 'field' }, h('label', { class: 'field-label', attrs: { for: 'camera-select' }, text: 'prejoin.camera' }), cameraSelect);
  const micField = h('div', { class: 'field' }, h('label', { class: 'field-label', attrs: { for: 'mic-select' }, text: 'prejoin.microphone' }), micSelect);
  const problems = h('div', { class: 'device-problems', attrs: { id: 'device-problems', 'aria-live': 'polite' } });
  const error = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'join-error' } });
  const joinButton = h('button', { class: 'button primary wide', attrs: { type: 'submit', id: 'join-button' }, text: 'prejoin.join' });
  const count = h('p', { class: 'room-count' });
  if (participants === 0) setText(count, 'prejoin.room_empty');
  else if (participants !== null) setText(count, 'prejoin.in_room', { count: participants });
  // A guest learns that the call is recorded before joining it.
  const recordedNotice = h(
    'p',
    { class: 'recorded-notice', attrs: { id: 'recorded-notice', role: 'note', hidden: !recorded } },
    h('span', { class: 'recording-dot', attrs: { 'aria-hidden': 'true' } }),
    h('span', { text: 'prejoin.recorded' }),
  );

  // The organisation's consent text: joining stays off until the guest accepts it.
  const consentId = askConsent ? branding().consent_id : null;
  const consentBox = h('input', { attrs: { type: 'checkbox', id: 'consent-accept', required: true } });
  const consent = consentId
    ? h(
        'fieldset',
        { class: 'consent', attrs: { id: 'consent' } },
        h('legend', { class: 'field-label', text: 'prejoin.consent_title' }),
        h('div', { class: 'consent-text', attrs: { id: 'consent-text', tabindex: 0 } }, ...paragraphs(branding().consent_text).map((p) => h('p', { raw: p }))),
        h('label', { class: 'consent-accept' }, consentBox, h('span', { text: 'prejoin.consent_accept' })),
      )
    : null;
  const syncJoin = () => {
    joinButton.disabled = Boolean(consentId) && !consentBox.checked;
  };
  consentBox.addEventListener('change', () => {
    error.textContent = '';
    syncJoin();
  });
  syncJoin();

  const form = h(
    'form',
    { class: 'card prejoin-form', attrs: { novalidate: true } },
    h('h1', { class: 'card-title', text: 'prejoin.title', args: { code } }),
    count,
    recordedNotice,
    consent,
    h('div', { class: 'field' }, h('label', { class: 'field-label', attrs: { for: 'name' }, text: 'prejoin.name' }), nameInput),
    cameraField,
    micField,
    problems,
    error,
    joinButton,
    h('a', { class: 'button ghost wide', attrs: { href: '/' }, text: 'prejoin.back' }),
  );

  root.append(pageHeader(), h('main', { class: 'prejoin' }, preview, form));

  function render() {
    const camera = cameraOff ? null : local.camera;
    if (camera) {
      if (video.srcObject === null || /** @type {MediaStream} */ (video.srcObject).getVideoTracks()[0] !== camera) {
        video.srcObject = new MediaStream([camera]);
      }
      video.classList.toggle('mirrored', isFrontCamera(camera));
      preview.classList.remove('no-video');
    } else {
      video.srcObject = null;
      preview.classList.add('no-video');
      clear(placeholder);
      placeholder.append(
        h('span', { class: 'placeholder-icon', html: icon('camOff') }),
        h('span', { text: local.camera || !local.cameraProblem ? 'prejoin.camera_is_off' : 'prejoin.no_camera_short' }),
      );
    }
    const micOn = Boolean(local.mic) && !micMuted;
    micButton.innerHTML = icon(micOn ? 'mic' : 'micOff');
    micButton.classList.toggle('off', !micOn);
    micButton.setAttribute('aria-pressed', micOn ? 'false' : 'true');
    setAttr(micButton, micOn ? 'prejoin.mic_turn_off' : 'prejoin.mic_turn_on');
    const camOn = Boolean(local.camera) && !cameraOff;
    camButton.innerHTML = icon(camOn ? 'cam' : 'camOff');
    camButton.classList.toggle('off', !camOn);
    camButton.setAttribute('aria-pressed', camOn ? 'false' : 'true');
    setAttr(camButton, camOn ? 'prejoin.camera_turn_off' : 'prejoin.camera_turn_on');
    meter.hidden = !micOn;

    fillSelect(cameraSelect, local.cameras, local.cameraDeviceId, 'prejoin.camera_n');
    fillSelect(micSelect, local.mics, local.micDeviceId, 'prejoin.microphone_n');
    cameraField.hidden = local.cameras.length === 0;
    micField.hidden = local.mics.length === 0;

    clear(problems);
    if (local.cameraProblem) problems.append(problem(`device.camera.${local.cameraProblem}`));
    if (local.micProblem) problems.append(problem(`device.mic.${local.micProblem}`));
    if (!local.camera && !local.mic && (local.cameraProblem || local.micProblem)) {
      problems.append(problem('prejoin.receive_only', 'info'));
    }
  }

  /**
   * @param {HTMLElement} el
   * @param {string} key
   */
  function setAttr(el, key) {
    el.dataset.i18nAttrs = `aria-label:${key};title:${key}`;
    el.setAttribute('aria-label', t(key));
    el.setAttribute('title', t(key));
  }

  micButton.addEventListener('click', async () => {
    if (!local.mic) {
      await local.start({ audio: true, video: false });
      micMuted = !local.mic;
    } else {
      micMuted = !micMuted;
    }
    local.micWanted = !micMuted;
    render();
  });
  camButton.addEventListener('click', async () => {
    if (cameraOff || !local.camera) {
      cameraOff = false;
      await local.start({ audio: false, video: true });
      cameraOff = !local.camera;
    } else {
      cameraOff = true;
      local.stopCamera();
    }
    local.cameraWanted = !cameraOff;
    render();
  });
  cameraSelect.addEventListener('change', async () => {
    try {
      await local.switchCamera(cameraSelect.value);
      cameraOff = false;
    } catch {
      // The problem is shown from local.cameraProblem.
    }
    render();
  });
  micSelect.addEventListener('change', async () => {
    try {
      await local.switchMic(micSelect.value);
    } catch {
      // Keep the old microphone.
    }
    render();
  });
  local.addEventListener('change', render);

  // The microphone level, so people see their microphone works.
  /** @type {AudioContext | null} */
  let audioCtx = null;
  /** @type {AnalyserNode | null} */
  let analyser = null;
  /** @type {MediaStreamTrack | null} */
  let metered = null;
  const buf = new Float32Array(512);
  const timer = setInterval(() => {
    if (!local.mic || micMuted) {
      meterFill.style.transform = 'scaleX(0)';
      return;
    }
    if (metered !== local.mic) {
      try {
        audioCtx?.close();
        audioCtx = new AudioContext();
        analyser = audioCtx.createAnalyser();
        analyser.fftSize = 512;
        audioCtx.createMediaStreamSource(new MediaStream([local.mic])).connect(analyser);
        metered = local.mic;
      } catch {
        return;
      }
    }
    if (audioCtx?.state === 'suspended') audioCtx.resume().catch(() => {});
    analyser?.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    meterFill.style.transform = `scaleX(${Math.min(1, peak * 1.5).toFixed(3)})`;
  }, 100);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    const bad = nameProblem(name);
    if (bad) {
      setText(error, bad, { max: MAX_NAME_CHARS });
      nameInput.focus();
      return;
    }
    if (consentId && !consentBox.checked) {
      setText(error, 'prejoin.consent_needed');
      return;
    }
    saveName(name);
    onJoin({ name, micMuted: micMuted || !local.mic, cameraOff: cameraOff || !local.camera, consent: consentId });
  });

  render();
  if (!nameInput.value) nameInput.focus();

  return {
    setBusy(busy) {
      joinButton.disabled = busy;
      if (!busy) syncJoin();
      setText(joinButton, busy ? 'prejoin.joining' : 'prejoin.join');
      if (busy) error.textContent = '';
    },
    showError(key, args, detail) {
      setText(error, key, args);
      if (detail) error.append(h('span', { class: 'error-detail', raw: detail }));
    },
    destroy() {
      clearInterval(timer);
      audioCtx?.close().catch(() => {});
      local.removeEventListener('change', render);
      video.srcObject = null;
    },
  };
}

/**
 * @param {string} key
 * @param {'error' | 'info'} [level]
 */
function problem(key, level = 'error') {
  return h('p', { class: `problem problem-${level}`, data: { problem: key } }, h('span', { class: 'problem-icon', html: icon(level === 'error' ? 'warning' : 'people') }), h('span', { text: key }));
}

/**
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string | undefined} selected
 * @param {string} fallbackKey label for a device without a name
 */
function fillSelect(select, devices, selected, fallbackKey) {
  const ids = devices.map((d) => d.deviceId).join('|');
  if (select.dataset.ids !== ids) {
    clear(select);
    devices.forEach((device, i) => {
      const option = device.label
        ? h('option', { attrs: { value: device.deviceId }, raw: device.label })
        : h('option', { attrs: { value: device.deviceId }, text: fallbackKey, args: { n: i + 1 } });
      select.append(option);
    });
    select.dataset.ids = ids;
  }
  if (selected && devices.some((d) => d.deviceId === selected)) select.value = selected;
}

function readName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    return '';
  }
}

/** @param {string} name */
function saveName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // Private mode.
  }
}
