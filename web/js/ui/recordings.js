// The recordings (/recordings, agents, supervisors and administrators): the calls recorded,
// newest first, their state and the files to download. An agent sees their own calls', the
// others every one; the server decides (GET /api/recordings).

import { call } from '../accounts.js';
import { t } from '../i18n.js';
import { PLANNERS } from './account.js';
import { h } from './dom.js';
import { accountPage, section } from './page.js';

/**
 * @typedef {{name: string, bytes: number}} RecordingFile
 * @typedef {{id: string, room: string, owner: string | null, started_at_ms: number,
 *   ended_at_ms: number | null, state: 'recording' | 'processing' | 'ready' | 'failed',
 *   files: RecordingFile[]}} Recording
 * @typedef {{bytes: number, max_bytes: number | null, stored: number, recording: number,
 *   slots: number}} Usage
 */

/** @param {number} bytes */
function size(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/**
 * One recording's row.
 * @param {Recording} r
 */
function row(r) {
  const when = new Date(r.started_at_ms).toLocaleString(document.documentElement.lang || undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const minutes = r.ended_at_ms ? Math.max(1, Math.round((r.ended_at_ms - r.started_at_ms) / 60_000)) : null;
  const files = r.files.map((f) =>
    h(
      'a',
      { class: 'chip-button recording-file', attrs: { href: `/api/recordings/${encodeURIComponent(r.id)}/${encodeURIComponent(f.name)}`, download: `${r.id}-${f.name}` } },
      h('span', { text: `recordings.file.${f.name.replace('.', '_')}` }),
      h('span', { class: 'recording-size', text: size(f.bytes) }),
    ),
  );
  return h(
    'li',
    { class: 'recording-item', data: { id: r.id, state: r.state } },
    h('span', { class: 'recording-when' }, when),
    h('span', { class: 'recording-room', text: 'recordings.room', args: { code: r.room } }),
    minutes === null ? null : h('span', { class: 'recording-length', text: 'recordings.minutes', args: { minutes } }),
    h('span', { class: 'recording-state', text: `recordings.state.${r.state}` }),
    h('span', { class: 'recording-files' }, ...files),
  );
}

/** @param {HTMLElement} root */
export async function renderRecordings(root) {
  const page = await accountPage(root, 'recordings.title', PLANNERS);
  if (!page) return;
  const list = h('ul', { class: 'recording-list', attrs: { id: 'recording-list' } });
  const status = h('p', { class: 'notice-text', attrs: { id: 'recordings-status', role: 'status' } });
  const usage = h('p', { class: 'notice-text', attrs: { id: 'recordings-usage', hidden: true } });
  page.main.append(section('recordings', 'recordings.title', usage, status, list));
  try {
    /** @type {{recordings: Recording[], usage?: Usage}} */
    const answer = await call('GET', '/api/recordings');
    // Administrators see the disk the recordings take and the recorders in use.
    if (answer.usage) {
      const u = answer.usage;
      const used = u.max_bytes ? t('recordings.usage_quota', { used: size(u.bytes), max: size(u.max_bytes) }) : t('recordings.usage', { used: size(u.bytes) });
      usage.textContent = `${used} ${t('recordings.recorders', { recording: u.recording, slots: u.slots })}`;
      usage.hidden = false;
    }
    if (answer.recordings.length === 0) status.textContent = t('recordings.empty');
    for (const r of answer.recordings) list.append(row(r));
  } catch (e) {
    status.textContent = `${t('recordings.failed')} ${e instanceof Error ? e.message : String(e)}`;
  }
}
