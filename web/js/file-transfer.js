// Sending files to the call's chat: ask the server over the signalling socket (`file_upload`),
// then send the bytes over HTTP in pieces (tus 1.0: PATCH with Upload-Offset), showing the
// progress. A dropped connection is resumed: HEAD tells how much arrived, the rest follows.
// Once all bytes are there the server tells the call (`file`).

/** Bytes of one PATCH. */
const PIECE_BYTES = 8 * 1024 * 1024;
/** Tries in a row without progress before an upload is given up. */
const MAX_TRIES = 8;
/** How long the server may take to answer `file_upload`. */
const ASK_TIMEOUT_MS = 15_000;

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One file being sent.
 * @typedef {{
 *   key: number, name: string, size: number, sent: number,
 *   state: 'asking' | 'uploading' | 'resuming' | 'done' | 'failed',
 *   error: string | null, errorArgs?: Record<string, string | number>, detail?: string,
 *   resumes: number,
 * }} Upload
 */

/**
 * The uploads of one call. Events: `upload` {upload} whenever one changes.
 */
export class FileTransfers extends EventTarget {
  /**
   * @param {{send: (msg: object) => boolean, maxBytes: () => number}} link
   */
  constructor(link) {
    super();
    this.link = link;
    /** @type {Upload[]} */
    this.uploads = [];
    /** @type {{upload: Upload, file: File, to?: string, resolve: (grant: {url: string} | {error: string, message: string}) => void, sentAt: number}[]} asked, not answered yet (in order) */
    this.asking = [];
    this.nextKey = 1;
  }

  /**
   * Send `file` (to `to`, or everyone); `screenshot`: a still of the call's video.
   * @param {File} file
   * @param {string} [to]
   * @param {boolean} [screenshot]
   * @returns {Promise<Upload>}
   */
  async send(file, to, screenshot = false) {
    /** @type {Upload} */
    const upload = { key: this.nextKey++, name: file.name, size: file.size, sent: 0, state: 'asking', error: null, resumes: 0 };
    this.uploads.push(upload);
    const max = this.link.maxBytes();
    if (max <= 0) return this.fail(upload, 'file.off');
    if (file.size > max) return this.fail(upload, 'file.too_large', { max: formatBytes(max) });
    if (file.size === 0) return this.fail(upload, 'file.empty');
    this.changed(upload);
    const grant = await new Promise((resolve) => {
      const entry = { upload, file, to, resolve, sentAt: Date.now() };
      this.asking.push(entry);
      const message = { type: 'file_upload', name: file.name, size: file.size, ...(to ? { to } : {}), ...(screenshot ? { screenshot } : {}) };
      if (!this.link.send(message)) this.answer(entry, { error: 'unavailable', message: 'not connected' });
      setTimeout(() => this.answer(entry, { error: 'unavailable', message: 'no answer from the server' }), ASK_TIMEOUT_MS);
    });
    if ('error' in grant) return this.fail(upload, `file.refused.${grant.error}`, {}, grant.message);
    upload.state = 'uploading';
    this.changed(upload);
    await this.upload(upload, file, grant.url);
    return upload;
  }

  /**
   * @param {{upload: Upload, resolve: (grant: any) => void}} entry
   * @param {{url: string} | {error: string, message: string}} grant
   */
  answer(entry, grant) {
    const at = this.asking.indexOf(/** @type {any} */ (entry));
    if (at < 0) return;
    this.asking.splice(at, 1);
    entry.resolve(grant);
  }

  /**
   * The server's `file_upload`: where to send the bytes of the file asked for.
   * @param {{id: string, name: string, size: number, url: string}} msg
   */
  granted(msg) {
    const entry = this.asking.find((a) => a.file.name === msg.name && a.file.size === msg.size);
    if (entry) this.answer(entry, { url: msg.url });
  }

  /**
   * An `error` from the server: the refusal of the oldest file asked for, if one is waiting.
   * @param {{code: string, message: string}} msg
   * @returns {boolean} whether it was about a file
   */
  refused(msg) {
    const entry = this.asking[0];
    if (!entry || !['too_large', 'quota_full', 'not_allowed', 'rate_limited', 'invalid_value'].includes(msg.code)) return false;
    this.answer(entry, { error: msg.code, message: msg.message });
    return true;
  }

  /**
   * Sends the bytes of `file` to `url`, piece by piece, resuming after failures.
   * @param {Upload} upload
   * @param {File} file
   * @param {string} url
   */
  async upload(upload, file, url) {
    let tries = 0;
    while (upload.sent < file.size) {
      const end = Math.min(file.size, upload.sent + PIECE_BYTES);
      const before = upload.sent;
      try {
        const offset = await patch(url, file.slice(upload.sent, end), upload.sent, (loaded) => {
          upload.sent = Math.min(end, before + loaded);
          this.changed(upload);
        });
        upload.sent = offset;
        tries = 0;
      } catch (e) {
        const failure = /** @type {{status?: number, offset?: number, message?: string}} */ (e);
        if (failure.status === 404) return this.fail(upload, 'file.call_ended');
        if (failure.status === 413 || failure.status === 415) return this.fail(upload, 'file.refused.too_large', {}, failure.message);
        tries += 1;
        if (tries > MAX_TRIES) return this.fail(upload, 'file.failed', {}, failure.message);
        // Cut off: ask how much arrived, and go on from there.
        upload.state = 'resuming';
        upload.resumes += 1;
        this.changed(upload);
        await sleep(Math.min(5_000, 250 * 2 ** tries));
        const offset = await head(url).catch(() => null);
        if (offset === 'gone') return this.fail(upload, 'file.call_ended');
        if (typeof offset === 'number') upload.sent = offset;
        upload.state = 'uploading';
        this.changed(upload);
      }
    }
    upload.state = 'done';
    this.changed(upload);
  }

  /**
   * @param {Upload} upload
   * @param {string} error
   * @param {Record<string, string | number>} [args]
   * @param {string} [detail]
   */
  fail(upload, error, args = {}, detail) {
    upload.state = 'failed';
    upload.error = error;
    upload.errorArgs = { name: upload.name, size: formatBytes(upload.size), ...args };
    upload.detail = detail;
    this.changed(upload);
    return upload;
  }

  /** @param {Upload} upload */
  changed(upload) {
    this.dispatchEvent(new CustomEvent('upload', { detail: { upload } }));
  }
}

/**
 * One PATCH of `piece` at `offset`, with progress: the new offset.
 * @param {string} url
 * @param {Blob} piece
 * @param {number} offset
 * @param {(loaded: number) => void} progress
 * @returns {Promise<number>}
 */
function patch(url, piece, offset, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PATCH', url);
    xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
    xhr.setRequestHeader('Upload-Offset', String(offset));
    xhr.setRequestHeader('Tus-Resumable', '1.0.0');
    xhr.upload.onprogress = (event) => progress(event.loaded);
    xhr.onload = () => {
      const at = Number(xhr.getResponseHeader('Upload-Offset'));
      if (xhr.status === 204) resolve(at);
      else reject({ status: xhr.status, offset: at, message: errorMessage(xhr.responseText) });
    };
    xhr.onerror = () => reject({ message: 'the connection was cut' });
    xhr.onabort = () => reject({ message: 'the upload was cut' });
    xhr.send(piece);
  });
}

/**
 * How much of the upload at `url` arrived; `'gone'` when the server no longer has it.
 * @param {string} url
 * @returns {Promise<number | 'gone'>}
 */
async function head(url) {
  const answer = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' }, cache: 'no-store' });
  if (answer.status === 404) return 'gone';
  if (!answer.ok) throw new Error(`HEAD ${answer.status}`);
  return Number(answer.headers.get('Upload-Offset'));
}

/** @param {string} text */
function errorMessage(text) {
  try {
    return JSON.parse(text).message ?? text;
  } catch {
    return text;
  }
}

/**
 * A size as people read it (1 decimal over 1 KB; MB are 1024 KB).
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let n = bytes;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[unit]}`;
}
