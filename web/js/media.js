// The person's own devices: camera and microphone capture, device lists, screen capture, and
// what went wrong when they are missing or refused.

import { captureSize } from './quality.js';

/** @typedef {import('./quality.js').Quality} Quality */
/** @typedef {'not_found' | 'denied' | 'in_use' | 'insecure' | 'other'} DeviceProblem */

/**
 * Sort a getUserMedia failure into what we tell people.
 * @param {unknown} error
 * @returns {DeviceProblem}
 */
export function classifyError(error) {
  const name = error instanceof Error || error instanceof DOMException ? error.name : '';
  switch (name) {
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return 'not_found';
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'denied';
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return 'in_use';
    default:
      return 'other';
  }
}

/** Whether this browser can capture at all (a secure context with mediaDevices). */
export function canCapture() {
  return Boolean(navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

/** Whether screen sharing is offered (desktop browsers). */
export function canShareScreen() {
  const mobile = /Android|iPhone|iPad|iPod|Mobile/i.test(navigator.userAgent);
  return !mobile && Boolean(navigator.mediaDevices && 'getDisplayMedia' in navigator.mediaDevices);
}

/**
 * The camera and microphone the person uses, kept across pre-join, the call and reconnects.
 * Events: `change` when a track or a device list changes.
 */
export class LocalMedia extends EventTarget {
  constructor() {
    super();
    /** @type {MediaStreamTrack | null} */
    this.mic = null;
    /** @type {MediaStreamTrack | null} */
    this.camera = null;
    /** @type {DeviceProblem | null} */
    this.micProblem = null;
    /** @type {DeviceProblem | null} */
    this.cameraProblem = null;
    /** @type {string | undefined} */
    this.micDeviceId = undefined;
    /** @type {string | undefined} */
    this.cameraDeviceId = undefined;
    /** @type {'user' | 'environment'} */
    this.facingMode = 'user';
    /** @type {Quality} */
    this.quality = 'auto';
    /** @type {MediaDeviceInfo[]} */
    this.cameras = [];
    /** @type {MediaDeviceInfo[]} */
    this.mics = [];
    /** The person chose to start without them. */
    this.micWanted = true;
    this.cameraWanted = true;
  }

  /** @returns {MediaTrackConstraints} */
  videoConstraints() {
    const size = captureSize(this.quality);
    /** @type {MediaTrackConstraints} */
    const c = { width: { ideal: size.width }, height: { ideal: size.height }, frameRate: { ideal: 30, max: 30 } };
    if (this.cameraDeviceId) c.deviceId = { exact: this.cameraDeviceId };
    else c.facingMode = this.facingMode;
    return c;
  }

  /** @returns {MediaTrackConstraints} */
  audioConstraints() {
    /** @type {MediaTrackConstraints} */
    const c = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (this.micDeviceId) c.deviceId = { exact: this.micDeviceId };
    return c;
  }

  /**
   * Open the camera and microphone (each may fail on its own: no device, refused, busy).
   * @param {{audio?: boolean, video?: boolean}} [which]
   */
  async start({ audio = true, video = true } = {}) {
    if (!canCapture()) {
      if (audio) this.micProblem = 'insecure';
      if (video) this.cameraProblem = 'insecure';
      this.changed();
      return;
    }
    const wantAudio = audio && !this.mic;
    const wantVideo = video && !this.camera;
    if (!wantAudio && !wantVideo) return;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: wantAudio ? this.audioConstraints() : false,
        video: wantVideo ? this.videoConstraints() : false,
      });
      if (wantAudio) this.setMic(stream.getAudioTracks()[0] ?? null);
      if (wantVideo) this.setCamera(stream.getVideoTracks()[0] ?? null);
      if (wantAudio) this.micProblem = null;
      if (wantVideo) this.cameraProblem = null;
    } catch (error) {
      if (wantAudio && wantVideo) {
        // One of them may work alone: try each, and keep what each says.
        await this.start({ audio: true, video: false });
        await this.start({ audio: false, video: true });
        return;
      }
      const problem = classifyError(error);
      console.info('orbita: cannot open', wantAudio ? 'microphone' : 'camera', error);
      if (wantAudio) this.micProblem = problem;
      if (wantVideo) this.cameraProblem = problem;
    }
    await this.refreshDevices();
    this.changed();
  }

  /** @param {MediaStreamTrack | null} track */
  setMic(track) {
    if (this.mic && this.mic !== track) this.mic.stop();
    this.mic = track;
    if (track) this.micDeviceId = track.getSettings().deviceId || this.micDeviceId;
  }

  /** @param {MediaStreamTrack | null} track */
  setCamera(track) {
    if (this.camera && this.camera !== track) this.camera.stop();
    this.camera = track;
    if (track) {
      const settings = track.getSettings();
      this.cameraDeviceId = settings.deviceId || this.cameraDeviceId;
      if (settings.facingMode === 'environment' || settings.facingMode === 'user') this.facingMode = settings.facingMode;
    }
  }

  /** Stop the camera (camera off: its light goes out). */
  stopCamera() {
    this.setCamera(null);
    this.changed();
  }

  /**
   * Use another camera (a device id), or on phones the other facing mode.
   * @param {string | undefined} deviceId
   * @param {'user' | 'environment'} [facingMode]
   */
  async switchCamera(deviceId, facingMode) {
    this.cameraDeviceId = deviceId;
    if (facingMode) this.facingMode = facingMode;
    const old = this.camera;
    // Phones cannot open two cameras at once: release the old one first.
    if (old) old.stop();
    this.camera = null;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: this.videoConstraints() });
      this.setCamera(stream.getVideoTracks()[0] ?? null);
      this.cameraProblem = null;
    } catch (error) {
      this.cameraProblem = classifyError(error);
      throw error;
    } finally {
      this.changed();
    }
  }

  /**
   * Use another microphone.
   * @param {string} deviceId
   */
  async switchMic(deviceId) {
    this.micDeviceId = deviceId;
    const stream = await navigator.mediaDevices.getUserMedia({ audio: this.audioConstraints() });
    this.setMic(stream.getAudioTracks()[0] ?? null);
    this.micProblem = null;
    this.changed();
  }

  /**
   * Ask the camera for the resolution a quality choice wants; resolves with what it gives.
   * @param {Quality} quality
   */
  async applyQuality(quality) {
    this.quality = quality;
    if (!this.camera) return null;
    const size = captureSize(quality);
    try {
      await this.camera.applyConstraints({
        width: { ideal: size.width },
        height: { ideal: size.height },
        frameRate: { ideal: 30, max: 30 },
      });
    } catch (error) {
      console.info('orbita: the camera refused the resolution', size, error);
    }
    return this.camera.getSettings();
  }

  /** Refresh the device lists (labels appear once a device was allowed). */
  async refreshDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      this.cameras = devices.filter((d) => d.kind === 'videoinput' && d.deviceId);
      this.mics = devices.filter((d) => d.kind === 'audioinput' && d.deviceId);
    } catch {
      this.cameras = [];
      this.mics = [];
    }
  }

  /** Stop everything (leaving the page). */
  stopAll() {
    this.setMic(null);
    this.setCamera(null);
  }

  changed() {
    this.dispatchEvent(new Event('change'));
  }
}

/**
 * Capture the screen (with its audio where the browser offers it).
 * @returns {Promise<{video: MediaStreamTrack, audio: MediaStreamTrack | null}>}
 */
export async function captureScreen() {
  const stream = await navigator.mediaDevices.getDisplayMedia({
    video: { frameRate: { ideal: 15, max: 30 } },
    audio: true,
  });
  const video = stream.getVideoTracks()[0];
  if ('contentHint' in video) video.contentHint = 'detail';
  return { video, audio: stream.getAudioTracks()[0] ?? null };
}

/**
 * Whether a camera track shows the person (front camera): then its preview is mirrored.
 * @param {MediaStreamTrack | null} track
 */
export function isFrontCamera(track) {
  if (!track) return true;
  return track.getSettings().facingMode !== 'environment';
}
