// The maximum-quality menu: what it means for the camera, the simulcast layers we send, and
// what we ask the server to forward to us (`set_quality`).

/** @typedef {'auto' | '640x480' | '1280x720' | '1920x1080' | '3840x2160'} Quality */

/** The menu's choices, lowest first (the protocol's presets). */
export const QUALITIES = /** @type {Quality[]} */ (['640x480', '1280x720', '1920x1080', '3840x2160', 'auto']);

/** What the camera is asked for with `auto` (bandwidth then picks the layer). */
const AUTO_CAPTURE = { width: 1280, height: 720 };

/**
 * The cap of a quality as width and height, or null for `auto`.
 * @param {Quality} quality
 * @returns {{width: number, height: number} | null}
 */
export function capOf(quality) {
  if (quality === 'auto') return null;
  const [width, height] = quality.split('x').map(Number);
  return { width, height };
}

/**
 * The camera resolution to ask for under a quality choice: the cap itself above HD, else HD.
 * Below HD the camera stays at HD and the layers above the cap are turned off instead: the
 * layer sizes the server knows then stay right, so the track need not be published again
 * (which would interrupt everyone receiving it).
 * @param {Quality} quality
 */
export function captureSize(quality) {
  const cap = capOf(quality);
  if (!cap || cap.width * cap.height <= AUTO_CAPTURE.width * AUTO_CAPTURE.height) return AUTO_CAPTURE;
  return cap;
}

/**
 * Whether a width x height fits under a cap, either way round (a portrait 360x640 fits under
 * 640x480 as a landscape 640x360 does), as the server's `MaxQuality::allows`.
 * @param {number} width
 * @param {number} height
 * @param {{width: number, height: number} | null} cap
 */
export function fits(width, height, cap) {
  if (!cap) return true;
  const long = Math.max(width, height);
  const short = Math.min(width, height);
  return long <= Math.max(cap.width, cap.height) && short <= Math.min(cap.width, cap.height);
}

/** The camera's simulcast layers, lowest first (the order Chrome expects). */
export const CAMERA_RIDS = ['q', 'h', 'f'];

/**
 * A sensible bitrate for a frame size, in bits per second.
 * @param {number} width
 * @param {number} height
 */
export function bitrateFor(width, height) {
  const pixels = width * height;
  if (pixels <= 320 * 240) return 150_000;
  if (pixels <= 640 * 480) return 500_000;
  if (pixels <= 1280 * 720) return 1_500_000;
  if (pixels <= 1920 * 1080) return 3_000_000;
  return 8_000_000;
}

/**
 * @typedef {object} Layer
 * @property {string} rid
 * @property {number} width
 * @property {number} height
 * @property {number} scaleResolutionDownBy
 * @property {number} maxBitrate
 * @property {boolean} active
 */

/**
 * How many simulcast layers Chrome encodes for a frame size (its "legacy" layer limit, by
 * pixel count: 3 from 960x540, 2 from 480x270, else 1). It drops the encodings at the end of
 * the list, so the top layer must sit at the last encoding it keeps.
 * @param {number} width
 * @param {number} height
 */
export function maxSimulcastLayers(width, height) {
  const pixels = width * height;
  if (pixels >= 960 * 540) return 3;
  if (pixels >= 480 * 270) return 2;
  return 1;
}

/**
 * The camera's simulcast layers for a captured size under a cap: the top layer is scaled down
 * until it fits, each lower layer halves it, and no layer is above the cap. When the frame is
 * too small for three layers, the top layer moves down to the last encoding the browser still
 * sends and the encodings above it are turned off.
 * @param {number} width captured width
 * @param {number} height captured height
 * @param {Quality} quality
 * @returns {Layer[]}
 */
export function cameraLayers(width, height, quality) {
  const cap = capOf(quality);
  let top = 1;
  if (cap) {
    const long = Math.max(width, height);
    const short = Math.min(width, height);
    top = Math.max(1, long / Math.max(cap.width, cap.height), short / Math.min(cap.width, cap.height));
  }
  const topW = Math.floor(width / top);
  const topH = Math.floor(height / top);
  const usable = Math.min(CAMERA_RIDS.length, maxSimulcastLayers(topW, topH));
  return CAMERA_RIDS.map((rid, i) => {
    const below = Math.max(0, usable - 1 - i);
    const scale = top * 2 ** below;
    const w = Math.max(2, Math.floor(width / scale));
    const hgt = Math.max(2, Math.floor(height / scale));
    return {
      rid,
      width: w,
      height: hgt,
      scaleResolutionDownBy: scale,
      maxBitrate: bitrateFor(w, hgt),
      active: i < usable && fits(w, hgt, cap),
    };
  });
}
