// The recordings (/recordings, agents, supervisors and administrators): the calls recorded,
// newest first, their state and the files to download. An agent sees their own calls', the
// others every one. Recordings live on the media servers that made them: the coordinator
// gives a grant for the logged-in account and the servers' addresses (GET
// /api/recordings/grant); each server lists what the grant may see (GET <server>/api/recordings)
// and serves the downloads (?grant=).

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
 * @typedef {{name: string, url: string}} Server
 */

/** @param {number} bytes */
function size(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
}

/**
 * One recording's row, its files downloaded from `server` with `grant`.
 * @param {Recording} r
 * @param {Server} server
 * @param {string} grant
 */
function row(r, server, grant) {
  const when = new Date(r.started_at_ms).toLocaleString(document.documentElement.lang || undefined, { dateStyle: 'medium', timeStyle: 'short' });
  const minutes = r.ended_at_ms ? Math.max(1, Math.round((r.ended_at_ms - r.started_at_ms) / 60_000)) : null;
  const files = r.files.map((f) =>
    h(
      'a',
      {
        class: 'chip-button recording-file',
        attrs: {
          href: `${server.url}/api/recordings/${encodeURIComponent(r.id)}/${encodeURIComponent(f.name)}?grant=${encodeURIComponent(grant)}`,
          download: `${r.id}-${f.name}`,
        },
      },
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

/**
 * The recordings `server` lets `grant` see.
 * @param {Server} server
 * @param {string} grant
 * @returns {Promise<{recordings: Recording[], usage?: Usage}>}
 */
async function listOf(server, grant) {
  const answer = await fetch(`${server.url}/api/recordings`, { headers: { authorization: `Bearer ${grant}` }, credentials: 'omit' });
  if (!answer.ok) throw new Error(`${server.name}: ${answer.status}`);
  return answer.json();
}

/**
 * Lists, in `parts`, the recordings of `servers` that `grant` may see.
 * @param {{usage: HTMLElement, status: HTMLElement, list: HTMLElement}} parts
 * @param {Server[]} servers
 * @param {string} grant
 * @param {boolean} named say which server a usage line is of
 */
async function showRecordings({ usage, status, list }, servers, grant, named) {
  const answers = await Promise.allSettled(servers.map((server) => listOf(server, grant)));
  /** @type {{r: Recording, server: Server}[]} */
  const all = [];
  /** @type {string[]} */
  const usages = [];
  /** @type {string[]} */
  const failed = [];
  answers.forEach((answer, i) => {
    const server = servers[i];
    if (answer.status === 'rejected') {
      console.warn('orbita: cannot list the recordings of', server.name, answer.reason);
      failed.push(server.name);
      return;
    }
    for (const r of answer.value.recordings) all.push({ r, server });
    // Administrators see the disk the recordings take and the recorders in use.
    const u = answer.value.usage;
    if (u) {
      const used = u.max_bytes ? t('recordings.usage_quota', { used: size(u.bytes), max: size(u.max_bytes) }) : t('recordings.usage', { used: size(u.bytes) });
      const line = `${used} ${t('recordings.recorders', { recording: u.recording, slots: u.slots })}`;
      usages.push(named ? `${server.name}: ${line}` : line);
    }
  });
  all.sort((a, b) => b.r.started_at_ms - a.r.started_at_ms || b.r.id.localeCompare(a.r.id));
  for (const { r, server } of all) list.append(row(r, server, grant));
  if (usages.length) {
    usage.textContent = usages.join(' ');
    usage.hidden = false;
  }
  if (failed.length) status.textContent = t('recordings.unreachable', { servers: failed.join(', ') });
  else if (all.length === 0) status.textContent = t('recordings.empty');
}

/** The page's parts. */
function parts() {
  return {
    list: h('ul', { class: 'recording-list', attrs: { id: 'recording-list' } }),
    status: h('p', { class: 'notice-text', attrs: { id: 'recordings-status', role: 'status' } }),
    usage: h('p', { class: 'notice-text', attrs: { id: 'recordings-usage', hidden: true } }),
  };
}

/**
 * The page. Logged in: the recordings of this server in the page, and a link to each other
 * server's (a page may only fetch from its own server), which carries the grant in its
 * fragment (never sent to any server, dropped from the address at once).
 * @param {HTMLElement} root
 */
export async function renderRecordings(root) {
  const linked = new URLSearchParams(location.hash.slice(1)).get('grant');
  const p = parts();
  if (linked) {
    history.replaceState(null, '', location.pathname);
    const main = h('main', { class: 'page' }, h('h1', { class: 'page-title', text: 'recordings.title' }));
    root.append(main);
    main.append(section('recordings', 'recordings.title', p.usage, p.status, p.list));
    await showRecordings(p, [{ name: location.host, url: location.origin }], linked, false);
    return;
  }
  const page = await accountPage(root, 'recordings.title', PLANNERS);
  if (!page) return;
  const others = h('ul', { class: 'recording-servers', attrs: { id: 'recording-servers' } });
  page.main.append(section('recordings', 'recordings.title', p.usage, p.status, p.list, others));
  try {
    /** @type {{grant: string, expires_ms: number, nodes: Server[]}} */
    const where = await call('GET', '/api/recordings/grant');
    const here = where.nodes.filter((n) => new URL(n.url).origin === location.origin);
    for (const n of where.nodes.filter((n) => !here.includes(n))) {
      const href = `${n.url}/recordings#grant=${encodeURIComponent(where.grant)}`;
      others.append(h('li', {}, h('a', { class: 'button', attrs: { href, 'data-server': n.name }, text: 'recordings.on_server', args: { server: n.name } })));
    }
    if (here.length || !where.nodes.length) await showRecordings(p, here, where.grant, here.length > 1);
  } catch (e) {
    p.status.textContent = `${t('recordings.failed')} ${e instanceof Error ? e.message : String(e)}`;
  }
}
