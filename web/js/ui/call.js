// The call page: the video grid, the controls, chat and people, the reconnecting banner; in
// an app session the app's video large, who holds control, and a banner when the app stops.

import { describeQuality } from '../call-quality.js';
import { setAttrText, setText, t } from '../i18n.js';
import { canShareScreen, isFrontCamera } from '../media.js';
import { QUALITIES } from '../quality.js';
import { AppTile } from './app-tile.js';
import { ChatPanel } from './chat.js';
import { controlState } from './control.js';
import { clear, h } from './dom.js';
import { languageSwitch } from './header.js';
import { icon } from './icons.js';
import { openMenu } from './menu.js';
import { PeoplePanel } from './people.js';
import { Tile, layoutGrid } from './tiles.js';
import { PointerOverlay, PointerSender } from '../pointer.js';
import { editSnapshot, still } from './snapshot.js';
import { toast } from './toast.js';

/** @typedef {import('../room.js').RoomSession} RoomSession */
/** @typedef {import('./tiles.js').TileModel} TileModel */

/** The reconnecting banner stays at least this long, so it does not just flash. */
const BANNER_MIN_MS = 1500;

/**
 * A control button: an icon and a label (the label is hidden on narrow screens but stays
 * the button's accessible name).
 * @param {string} id
 * @param {string} iconName
 * @param {string} labelKey
 * @param {() => void} onClick
 */
function controlButton(id, iconName, labelKey, onClick) {
  const iconEl = h('span', { class: 'control-icon', html: icon(iconName) });
  const label = h('span', { class: 'control-label', text: labelKey });
  const badge = h('span', { class: 'control-badge', attrs: { hidden: true } });
  const button = h('button', { class: 'control', attrs: { type: 'button', id }, on: { click: onClick } }, iconEl, label, badge);
  setAttrText(button, 'title', labelKey);
  return {
    button,
    badge,
    /**
     * @param {string} nextIcon
     * @param {string} nextLabel
     */
    set(nextIcon, nextLabel) {
      iconEl.innerHTML = icon(nextIcon);
      setText(label, nextLabel);
      setAttrText(button, 'title', nextLabel);
    },
  };
}

/**
 * A control that the call's switches turn off for us: disabled, its label and title saying so
 * (docs/calls.md, "Branding, consent and feature switches").
 * @param {ReturnType<typeof controlButton>} control
 * @param {boolean} off
 * @param {string} iconName
 * @param {string} whyKey
 */
function switchedOff(control, off, iconName, whyKey) {
  control.button.disabled = off;
  control.button.classList.toggle('switched-off', off);
  if (!off) return;
  // A short label under the button; the whole reason as its title and accessible name.
  control.set(iconName, `${whyKey}_short`);
  setAttrText(control.button, 'title', whyKey);
  setAttrText(control.button, 'aria-label', whyKey);
}

export class CallView {
  /**
   * @param {HTMLElement} root
   * @param {RoomSession} session
   * @param {{onLeave: () => void, onFailed: (error: unknown) => void}} callbacks
   */
  constructor(root, session, callbacks) {
    this.root = root;
    this.session = session;
    this.callbacks = callbacks;
    /** @type {Map<string, Tile>} */
    this.tiles = new Map();
    /** @type {Map<string, HTMLAudioElement>} */
    this.audios = new Map();
    /** @type {'chat' | 'people' | null} */
    this.panel = null;
    this.unread = 0;
    this.bannerShownAt = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.bannerTimer = undefined;

    this.grid = h('div', { class: 'grid', attrs: { id: 'grid' } });
    this.audioSink = h('div', { class: 'audio-sink', attrs: { hidden: true } });
    this.banner = h(
      'div',
      { class: 'banner', attrs: { role: 'status', hidden: true, id: 'banner' } },
      h('span', { class: 'spinner', attrs: { 'aria-hidden': 'true' } }),
      h('span', { class: 'banner-text', text: 'call.reconnecting' }),
    );
    this.appBannerReason = h('span', { class: 'banner-detail' });
    this.appBanner = h(
      'div',
      { class: 'banner app-banner', attrs: { role: 'alert', hidden: true, id: 'app-banner' } },
      h('span', { class: 'banner-icon', html: icon('warning') }),
      h('span', { class: 'banner-text', text: 'session.app_stopped' }),
      this.appBannerReason,
      h('button', {
        class: 'icon-button banner-close',
        attrs: { type: 'button' },
        html: icon('close'),
        t: { 'aria-label': 'action.close', title: 'action.close' },
        on: { click: () => (this.appBanner.hidden = true) },
      }),
    );
    this.controlText = h('span', { class: 'control-chip-text' });
    this.controlChip = h(
      'span',
      { class: 'chip control-chip', attrs: { id: 'control-status', role: 'status', hidden: true } },
      h('span', { class: 'chip-icon', html: icon('mouse') }),
      this.controlText,
    );

    // Everyone sees that the call is recorded, for as long as it is.
    this.recordingChip = h(
      'span',
      { class: 'chip recording-chip', attrs: { id: 'recording-status', role: 'status', hidden: true } },
      h('span', { class: 'recording-dot', attrs: { 'aria-hidden': 'true' } }),
      h('span', { class: 'chip-label', text: 'call.recording' }),
    );

    this.chat = new ChatPanel(session);
    this.people = new PeoplePanel(session);
    this.panelTitle = h('h2', { class: 'panel-title' });
    this.panelBody = h('div', { class: 'panel-body' });
    this.side = h(
      'aside',
      { class: 'side', attrs: { hidden: true, id: 'side-panel' } },
      h(
        'div',
        { class: 'panel-head' },
        this.panelTitle,
        h('button', {
          class: 'icon-button',
          attrs: { type: 'button', id: 'panel-close' },
          html: icon('close'),
          t: { 'aria-label': 'action.close', title: 'action.close' },
          on: { click: () => this.showPanel(null) },
        }),
      ),
      this.panelBody,
    );

    const s = session;
    this.mic = controlButton('control-mic', 'mic', 'call.mic_off', () => s.setMicMuted(!s.micMuted));
    this.camera = controlButton('control-camera', 'cam', 'call.camera_off', () => s.setCameraOn(s.cameraOff));
    this.switchCam = controlButton('control-switch', 'switchCam', 'call.switch_camera', () => this.pickCamera());
    this.screen = controlButton('control-screen', 'screen', 'call.share_screen', () =>
      s.screen ? s.stopScreenShare() : s.startScreenShare(),
    );
    this.quality = controlButton('control-quality', 'quality', 'call.quality', () => this.pickQuality());
    this.chatButton = controlButton('control-chat', 'chat', 'call.chat', () => this.showPanel(this.panel === 'chat' ? null : 'chat'));
    this.peopleButton = controlButton('control-people', 'people', 'call.people', () =>
      this.showPanel(this.panel === 'people' ? null : 'people'),
    );
    this.recordButton = controlButton('control-record', 'record', 'call.record_start', () =>
      s.setRecording(!s.recording),
    );
    this.leaveButton = controlButton('control-leave', 'leave', 'call.leave', () => this.leave());
    this.leaveButton.button.classList.add('danger');
    this.screen.button.hidden = !canShareScreen();

    this.title = h('span', { class: 'call-title', text: 'call.room', args: { code: session.code } });
    this.count = h('span', { class: 'call-count' });
    const copy = h(
      'button',
      { class: 'chip-button', attrs: { type: 'button', id: 'copy-link' }, on: { click: () => this.copyLink() } },
      h('span', { class: 'chip-icon', html: icon('link') }),
      h('span', { class: 'chip-label', text: 'call.copy_link' }),
    );
    setAttrText(copy, 'title', 'call.copy_link');

    this.el = h(
      'div',
      { class: 'call' },
      h(
        'header',
        { class: 'call-top' },
        h('img', { class: 'call-logo', attrs: { src: '/assets/img/icon.svg', alt: '', width: 24, height: 24 } }),
        h('div', { class: 'call-heading' }, this.title, this.count),
        this.recordingChip,
        this.controlChip,
        copy,
        languageSwitch(),
      ),
      this.banner,
      this.appBanner,
      h('div', { class: 'call-body' }, h('main', { class: 'stage' }, this.grid), this.side),
      h(
        'footer',
        { class: 'controls' },
        h(
          'div',
          { class: 'controls-row' },
          this.mic.button,
          this.camera.button,
          this.switchCam.button,
          this.screen.button,
          this.quality.button,
          this.chatButton.button,
          this.peopleButton.button,
          this.recordButton.button,
          this.leaveButton.button,
        ),
      ),
      this.audioSink,
    );
    clear(root);
    root.append(this.el);

    this.onUpdate = () => this.sync();
    this.onSpeakers = () => this.syncSpeakers();
    /** @param {Event} event */
    this.onStatus = (event) => this.showStatus(/** @type {CustomEvent} */ (event).detail);
    /** @param {Event} event */
    this.onChat = (event) => this.addChat(/** @type {CustomEvent} */ (event).detail.entry);
    /** @param {Event} event */
    this.onNotice = (event) => toast(/** @type {CustomEvent} */ (event).detail);
    /** @param {Event} event */
    this.onAppStopped = (event) => this.showAppStopped(/** @type {CustomEvent} */ (event).detail.reason);
    session.addEventListener('update', this.onUpdate);
    session.addEventListener('speakers', this.onSpeakers);
    session.addEventListener('status', this.onStatus);
    session.addEventListener('chat', this.onChat);
    session.addEventListener('notice', this.onNotice);
    // Said while joining, before this view listened.
    if (session.relayRefused) {
      toast({ key: 'notice.relay_refused', args: {}, level: 'error', detail: session.relayRefused });
    }
    session.addEventListener('appstopped', this.onAppStopped);
    /** @param {Event} event */
    this.onLocationRequest = (event) => this.askLocation(/** @type {CustomEvent} */ (event).detail);
    session.addEventListener('locationrequest', this.onLocationRequest);
    // The agent's pointer on the customers' pictures: sent from the agent's tiles, shown on
    // the customer's own.
    this.pointerSender = session.role === 'agent' ? new PointerSender(this.grid, (msg) => session.signaling?.send(msg)) : null;
    const overlay = new PointerOverlay(() => this.grid.querySelector('.tile.self[data-source="camera"]'));
    /** @param {Event} event */
    this.onPointer = (event) => overlay.show(/** @type {CustomEvent} */ (event).detail);
    session.addEventListener('pointer', this.onPointer);
    // A tile's screenshot button: a still of its video, drawn on, sent to the chat.
    this.grid.addEventListener('click', (event) => {
      const button = event.target instanceof Element ? event.target.closest('.tile-snap') : null;
      const video = button?.closest('.tile')?.querySelector('video');
      if (video) void this.snapshot(video);
    });
    session.local.addEventListener('change', this.onUpdate);
    this.resize = new ResizeObserver(() => layoutGrid(this.grid));
    this.resize.observe(this.grid);
    this.onKey = (/** @type {KeyboardEvent} */ event) => {
      if (event.key === 'Escape' && this.panel && window.matchMedia('(max-width: 720px)').matches) this.showPanel(null);
    };
    document.addEventListener('keydown', this.onKey);
    this.sync();
  }

  /** @returns {TileModel[]} in display order: the app, screens (others' first), cameras, our camera */
  /**
   * The agent's live view of a participant's connection: their browser's last report (the
   * server's when the browser sent none lately), in a line; null for everyone else.
   * @param {string} id
   */
  qualityOf(id) {
    const q = this.session.peerQuality.get(id);
    if (!q || this.session.role !== 'agent') return null;
    const fresh = (/** @type {{at: number} | undefined} */ r) => r && Date.now() - r.at < 15_000;
    const report = fresh(q.browser) ? q.browser : fresh(q.server) ? q.server : null;
    return report ? describeQuality(report.report, t) : null;
  }

  models() {
    const s = this.session;
    const selfId = s.selfId ?? 'self';
    /** @type {TileModel[]} */
    const apps = [];
    /** @type {TileModel[]} */
    const screens = [];
    /** @type {TileModel[]} */
    const cameras = [];
    for (const p of s.participants.values()) {
      const tracks = [...p.tracks.values()];
      if (p.ingest) {
        // The session's app (or another publish-only stream): its video is the main picture.
        const video = tracks.find((tr) => tr.kind === 'video');
        apps.push({
          key: `${p.id}:app`,
          participantId: p.id,
          name: p.name,
          source: 'app',
          track: video && !video.muted ? (s.remoteTracks.get(video.track_id) ?? null) : null,
          micMuted: false,
          self: false,
          mirrored: false,
        });
        continue;
      }
      const cam = tracks.find((tr) => tr.source === 'camera');
      const mic = tracks.find((tr) => tr.source === 'microphone');
      const screen = tracks.find((tr) => tr.source === 'screen');
      cameras.push({
        key: `${p.id}:camera`,
        participantId: p.id,
        name: p.name,
        source: 'camera',
        track: cam && !cam.muted ? (s.remoteTracks.get(cam.track_id) ?? null) : null,
        micMuted: !mic || mic.muted,
        self: false,
        mirrored: false,
        quality: this.qualityOf(p.id),
      });
      if (screen) {
        screens.push({
          key: `${p.id}:screen`,
          participantId: p.id,
          name: p.name,
          source: 'screen',
          track: s.remoteTracks.get(screen.track_id) ?? null,
          micMuted: false,
          self: false,
          mirrored: false,
        });
      }
    }
    if (s.screen) {
      screens.push({ key: 'self:screen', participantId: selfId, name: s.name, source: 'screen', track: s.screen.video, micMuted: false, self: true, mirrored: false });
    }
    const camera = s.cameraOff ? null : s.local.camera;
    cameras.push({
      key: 'self:camera',
      participantId: selfId,
      name: s.name,
      source: 'camera',
      track: camera,
      micMuted: s.micMuted || !s.local.mic,
      self: true,
      mirrored: isFrontCamera(camera),
    });
    return [...apps, ...screens, ...cameras];
  }

  /** Bring tiles, audio, controls and panels in line with the session. */
  sync() {
    const models = this.models();
    const keep = new Set(models.map((m) => m.key));
    for (const [key, tile] of this.tiles) {
      if (!keep.has(key)) {
        tile.remove();
        this.tiles.delete(key);
      }
    }
    /** @type {Element | null} */
    let prev = null;
    for (const model of models) {
      let tile = this.tiles.get(model.key);
      if (!tile) {
        tile = model.source === 'app' ? new AppTile(model, this.session) : new Tile(model);
        this.tiles.set(model.key, tile);
      } else {
        tile.update(model);
      }
      if (tile instanceof AppTile) tile.syncControl();
      const wanted = prev ? prev.nextElementSibling : this.grid.firstElementChild;
      if (wanted !== tile.el) {
        if (prev) prev.after(tile.el);
        else this.grid.prepend(tile.el);
        if (tile.track) tile.video.play().catch(() => {});
      }
      prev = tile.el;
    }
    this.grid.dataset.count = String(models.length);
    layoutGrid(this.grid);
    this.syncAudio();
    this.syncControls();
    this.syncAppControl();
    this.syncSpeakers();
    if (this.panel === 'people') this.people.render();
  }

  /** One playing <audio> per received audio track. */
  syncAudio() {
    const s = this.session;
    /** @type {Set<string>} */
    const want = new Set();
    for (const p of s.participants.values()) {
      for (const track of p.tracks.values()) {
        if (track.kind !== 'audio') continue;
        const media = s.remoteTracks.get(track.track_id);
        if (!media) continue;
        want.add(track.track_id);
        let audio = this.audios.get(track.track_id);
        if (!audio) {
          audio = h('audio', { attrs: { autoplay: true }, data: { track: track.track_id, participant: p.id } });
          this.audios.set(track.track_id, audio);
          this.audioSink.append(audio);
        }
        const stream = /** @type {MediaStream | null} */ (audio.srcObject);
        if (!stream || stream.getAudioTracks()[0] !== media) {
          audio.srcObject = new MediaStream([media]);
          audio.play().catch(() => {});
        }
      }
    }
    for (const [id, audio] of this.audios) {
      if (want.has(id)) continue;
      audio.srcObject = null;
      audio.remove();
      this.audios.delete(id);
    }
  }

  syncControls() {
    const s = this.session;
    const micOn = Boolean(s.local.mic) && !s.micMuted;
    this.mic.set(micOn ? 'mic' : 'micOff', micOn ? 'call.mic_off' : 'call.mic_on');
    this.mic.button.classList.toggle('off', !micOn);
    this.mic.button.setAttribute('aria-pressed', String(!micOn));
    const camOn = Boolean(s.local.camera) && !s.cameraOff;
    this.camera.set(camOn ? 'cam' : 'camOff', camOn ? 'call.camera_off' : 'call.camera_on');
    this.camera.button.classList.toggle('off', !camOn);
    this.camera.button.setAttribute('aria-pressed', String(!camOn));
    // What the administrators switched off for us: the button is off and says why.
    const f = s.features;
    switchedOff(this.camera, !f.camera, 'camOff', 'call.camera_switched_off');
    switchedOff(this.mic, !f.microphone, 'micOff', 'call.mic_switched_off');
    this.switchCam.button.hidden = s.local.cameras.length < 2;
    this.screen.set(s.screen ? 'screenStop' : 'screen', s.screen ? 'call.stop_sharing' : 'call.share_screen');
    this.screen.button.classList.toggle('on', Boolean(s.screen));
    switchedOff(this.screen, !f.screen, 'screen', 'call.screen_switched_off');
    this.quality.button.dataset.quality = s.quality;
    setText(this.count, 'call.count', { count: s.peopleCount() });
    this.peopleButton.badge.hidden = false;
    this.peopleButton.badge.textContent = String(s.peopleCount());
    this.chatButton.badge.hidden = this.unread === 0;
    this.chatButton.badge.textContent = this.unread > 9 ? '9+' : String(this.unread);
    this.chatButton.button.classList.toggle('on', this.panel === 'chat');
    this.peopleButton.button.classList.toggle('on', this.panel === 'people');
    this.recordingChip.hidden = !s.recording;
    // Only the call's agent records; the button says what pressing it does.
    this.recordButton.button.hidden = s.role !== 'agent' || !f.record;
    this.recordButton.set('record', s.recording ? 'call.record_stop' : 'call.record_start');
    this.recordButton.button.classList.toggle('on', s.recording);
    this.recordButton.button.setAttribute('aria-pressed', String(s.recording));
  }

  /** In an app session: who holds control, in the header. */
  syncAppControl() {
    const s = this.session;
    this.controlChip.hidden = !s.appSession;
    if (s.appStopped === null) this.appBanner.hidden = true;
    if (!s.appSession) return;
    const c = controlState(s);
    this.controlChip.dataset.control = c.state;
    setText(this.controlText, c.key, c.args);
  }

  /** @param {string} reason the server's words */
  /**
   * The agent asks for our location: the person shares it or declines (nothing is shared
   * without their click, and then the browser asks its own permission).
   * @param {{from: string, name: string}} request
   */
  askLocation({ from, name }) {
    this.locationPrompt?.remove();
    /** @param {boolean} share */
    const answer = (share) => {
      prompt.remove();
      this.locationPrompt = null;
      void this.session.answerLocationRequest(from, share);
    };
    const prompt = h(
      'div',
      { class: 'location-request', attrs: { role: 'alertdialog', 'aria-labelledby': 'location-request-text' } },
      h('p', { attrs: { id: 'location-request-text' }, text: 'location.asked', args: { name } }),
      h('button', { class: 'button primary', attrs: { type: 'button', id: 'location-share' }, text: 'location.share_answer', on: { click: () => answer(true) } }),
      h('button', { class: 'button', attrs: { type: 'button', id: 'location-decline' }, text: 'location.decline', on: { click: () => answer(false) } }),
    );
    this.locationPrompt = prompt;
    this.el.append(prompt);
    /** @type {HTMLElement | null} */ (prompt.querySelector('#location-share'))?.focus();
  }

  /**
   * A still of `video`, drawn on in the editor, sent to the call's chat.
   * @param {HTMLVideoElement} video
   */
  async snapshot(video) {
    const base = still(video);
    if (!base) return;
    const jpeg = await editSnapshot(base);
    if (!jpeg) return;
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
    if (this.panel !== 'chat') this.showPanel('chat');
    await this.session.files.send(new File([jpeg], `screenshot-${stamp}.jpg`, { type: 'image/jpeg' }), undefined, true);
  }

  showAppStopped(reason) {
    this.appBannerReason.textContent = reason;
    this.appBanner.hidden = false;
  }

  syncSpeakers() {
    const s = this.session;
    for (const tile of this.tiles.values()) {
      if (tile.el.dataset.source !== 'camera') continue;
      const pid = tile.el.dataset.participant ?? '';
      const self = tile.el.dataset.self === 'true';
      const speaking = self ? s.selfSpeaking : (s.participants.get(pid)?.speaking ?? false);
      tile.setSpeaking(speaking);
      tile.setActive(!self && pid === s.activeSpeaker && s.participants.size > 1);
    }
  }

  /** @param {{status: string, error?: unknown}} detail */
  showStatus({ status, error }) {
    clearTimeout(this.bannerTimer);
    if (status === 'reconnecting') {
      if (this.banner.hidden) this.bannerShownAt = performance.now();
      this.banner.hidden = false;
      this.el.classList.add('reconnecting');
    } else if (status === 'connected') {
      const wait = Math.max(0, BANNER_MIN_MS - (performance.now() - this.bannerShownAt));
      this.bannerTimer = setTimeout(() => {
        this.banner.hidden = true;
        this.el.classList.remove('reconnecting');
      }, wait);
    } else if (status === 'failed') {
      this.destroy();
      this.callbacks.onFailed(error);
    }
  }

  /** @param {import('../room.js').ChatEntry} entry */
  addChat(entry) {
    this.chat.add(entry);
    if (this.panel !== 'chat' && !entry.own) {
      this.unread += 1;
      this.syncControls();
    }
  }

  /** @param {'chat' | 'people' | null} which */
  showPanel(which) {
    this.panel = which;
    this.side.hidden = which === null;
    this.el.classList.toggle('panel-open', which !== null);
    clear(this.panelBody);
    if (which === 'chat') {
      setText(this.panelTitle, 'call.chat');
      this.panelBody.append(this.chat.el);
      this.unread = 0;
      this.chat.list.lastElementChild?.scrollIntoView({ block: 'end' });
      if (!window.matchMedia('(pointer: coarse)').matches) this.chat.focus();
    } else if (which === 'people') {
      setText(this.panelTitle, 'call.people_title', { count: this.session.peopleCount() });
      this.people.render();
      this.panelBody.append(this.people.el);
    }
    this.syncControls();
    // The stage changed size.
    requestAnimationFrame(() => layoutGrid(this.grid));
  }

  pickQuality() {
    const s = this.session;
    openMenu(
      this.quality.button,
      'quality.title',
      QUALITIES.map((q) => ({ value: q, text: `quality.${q}`, checked: q === s.quality })),
      (value) => s.setQuality(/** @type {import('../quality.js').Quality} */ (value)),
      'quality',
    );
  }

  pickCamera() {
    const s = this.session;
    const cameras = s.local.cameras;
    const current = s.local.camera?.getSettings().deviceId ?? s.local.cameraDeviceId;
    if (cameras.length === 2) {
      const other = cameras.find((c) => c.deviceId !== current) ?? cameras[0];
      s.switchCamera(other.deviceId);
      return;
    }
    openMenu(
      this.switchCam.button,
      'call.switch_camera',
      cameras.map((c, i) => (c.label ? { value: c.deviceId, raw: c.label, checked: c.deviceId === current } : { value: c.deviceId, raw: t('prejoin.camera_n', { n: i + 1 }), checked: c.deviceId === current })),
      (deviceId) => s.switchCamera(deviceId),
      'camera',
    );
  }

  async copyLink() {
    const link = this.session.link;
    try {
      await navigator.clipboard.writeText(link);
      toast({ key: 'call.link_copied' });
    } catch {
      // No clipboard access (plain http, or refused): show the link to copy by hand.
      const input = h('input', { class: 'link-field', attrs: { readonly: true, value: link } });
      const dialog = h(
        'div',
        { class: 'dialog-backdrop' },
        h(
          'div',
          { class: 'dialog card', attrs: { role: 'dialog', 'aria-modal': 'true' } },
          h('p', { text: 'call.copy_manually' }),
          input,
          h('button', { class: 'button primary', attrs: { type: 'button' }, text: 'action.close', on: { click: () => dialog.remove() } }),
        ),
      );
      document.body.append(dialog);
      input.select();
    }
  }

  leave() {
    this.session.leave();
    this.destroy();
    this.callbacks.onLeave();
  }

  destroy() {
    const s = this.session;
    s.removeEventListener('update', this.onUpdate);
    s.removeEventListener('speakers', this.onSpeakers);
    s.removeEventListener('status', this.onStatus);
    s.removeEventListener('chat', this.onChat);
    s.removeEventListener('notice', this.onNotice);
    s.removeEventListener('appstopped', this.onAppStopped);
    s.removeEventListener('locationrequest', this.onLocationRequest);
    s.removeEventListener('pointer', this.onPointer);
    this.pointerSender?.destroy();
    this.locationPrompt?.remove();
    s.local.removeEventListener('change', this.onUpdate);
    document.removeEventListener('keydown', this.onKey);
    this.resize.disconnect();
    for (const tile of this.tiles.values()) tile.remove();
    for (const audio of this.audios.values()) audio.srcObject = null;
    this.tiles.clear();
    this.audios.clear();
  }
}
