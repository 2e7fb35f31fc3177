// Screenshots of the call's videos: a still of a tile's video at the frame's full resolution
// (as sent, not as shown: no mirroring, no cropping), an editor to draw on it (pen, arrow,
// rectangle, text, colours, undo), and sending it to the call's chat as a JPEG marked as a
// screenshot (the server writes the call's location into its EXIF).

import { h } from './dom.js';

/** The drawing colours. */
const COLOURS = ['#e53935', '#fdd835', '#43a047', '#1e88e5', '#ffffff'];
/** The tools. */
const TOOLS = /** @type {const} */ (['pen', 'arrow', 'rect', 'text']);

/**
 * One mark on the still.
 * @typedef {{tool: 'pen' | 'arrow' | 'rect' | 'text', colour: string, width: number, points: {x: number, y: number}[], text?: string}} Mark
 */

/**
 * The current frame of `video` on a canvas of its own size.
 * @param {HTMLVideoElement} video
 * @returns {HTMLCanvasElement | null}
 */
export function still(video) {
  if (!video.videoWidth || !video.videoHeight) return null;
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d')).drawImage(video, 0, 0);
  return canvas;
}

/**
 * Draws `mark` on `g`.
 * @param {CanvasRenderingContext2D} g
 * @param {Mark} mark
 */
function draw(g, mark) {
  g.strokeStyle = mark.colour;
  g.fillStyle = mark.colour;
  g.lineWidth = mark.width;
  g.lineCap = 'round';
  g.lineJoin = 'round';
  const [a, b] = [mark.points[0], mark.points[mark.points.length - 1]];
  if (mark.tool === 'pen') {
    g.beginPath();
    g.moveTo(a.x, a.y);
    for (const p of mark.points.slice(1)) g.lineTo(p.x, p.y);
    g.stroke();
  } else if (mark.tool === 'rect') {
    g.strokeRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
  } else if (mark.tool === 'arrow') {
    const angle = Math.atan2(b.y - a.y, b.x - a.x);
    const head = mark.width * 4;
    g.beginPath();
    g.moveTo(a.x, a.y);
    g.lineTo(b.x, b.y);
    g.moveTo(b.x, b.y);
    g.lineTo(b.x - head * Math.cos(angle - Math.PI / 6), b.y - head * Math.sin(angle - Math.PI / 6));
    g.moveTo(b.x, b.y);
    g.lineTo(b.x - head * Math.cos(angle + Math.PI / 6), b.y - head * Math.sin(angle + Math.PI / 6));
    g.stroke();
  } else if (mark.tool === 'text' && mark.text) {
    g.font = `bold ${mark.width * 6}px sans-serif`;
    g.textBaseline = 'top';
    g.lineWidth = Math.max(2, mark.width / 2);
    g.strokeStyle = mark.colour === '#ffffff' ? '#000' : '#fff';
    g.strokeText(mark.text, a.x, a.y);
    g.fillText(mark.text, a.x, a.y);
  }
}

/**
 * The editor over the page: the still, the tools; resolves with the JPEG to send, or null.
 * @param {HTMLCanvasElement} base the still
 * @returns {Promise<Blob | null>}
 */
export function editSnapshot(base) {
  return new Promise((resolve) => {
    const canvas = h('canvas', { class: 'snap-canvas', attrs: { id: 'snap-canvas', width: base.width, height: base.height } });
    const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    /** @type {Mark[]} */
    const marks = [];
    /** @type {Mark | null} */
    let current = null;
    let tool = /** @type {Mark['tool']} */ ('pen');
    let colour = COLOURS[0];
    const width = Math.max(3, Math.round(base.width / 160));
    const redraw = () => {
      g.drawImage(base, 0, 0);
      for (const mark of marks) draw(g, mark);
      if (current) draw(g, current);
      undo.disabled = marks.length === 0;
      canvas.dataset.marks = String(marks.length);
    };
    /** @param {PointerEvent} event */
    const at = (event) => {
      const rect = canvas.getBoundingClientRect();
      return { x: ((event.clientX - rect.left) / rect.width) * canvas.width, y: ((event.clientY - rect.top) / rect.height) * canvas.height };
    };
    canvas.addEventListener('pointerdown', (event) => {
      event.preventDefault();
      if (tool === 'text') {
        const text = textInput.value.trim();
        if (text) marks.push({ tool, colour, width, points: [at(event)], text });
        redraw();
        return;
      }
      canvas.setPointerCapture(event.pointerId);
      current = { tool, colour, width, points: [at(event)] };
    });
    canvas.addEventListener('pointermove', (event) => {
      if (!current) return;
      const p = at(event);
      if (current.tool === 'pen') current.points.push(p);
      else current.points = [current.points[0], p];
      redraw();
    });
    const finish = () => {
      if (current && current.points.length > 1) marks.push(current);
      current = null;
      redraw();
    };
    canvas.addEventListener('pointerup', finish);
    canvas.addEventListener('pointercancel', finish);

    const toolButtons = TOOLS.map((name) =>
      h('button', {
        class: 'chip-button snap-tool',
        attrs: { type: 'button', id: `snap-tool-${name}`, 'aria-pressed': String(name === tool) },
        text: `snapshot.tool_${name}`,
        on: {
          click: () => {
            tool = name;
            for (const b of toolButtons) b.setAttribute('aria-pressed', String(b.id === `snap-tool-${name}`));
          },
        },
      }),
    );
    const colourButtons = COLOURS.map((c, i) => {
      const b = h('button', {
        class: 'snap-colour',
        attrs: { type: 'button', id: `snap-colour-${i}`, 'aria-pressed': String(c === colour) },
        t: { 'aria-label': `snapshot.colour_${i}`, title: `snapshot.colour_${i}` },
        on: {
          click: () => {
            colour = c;
            for (const other of colourButtons) other.setAttribute('aria-pressed', String(other === b));
          },
        },
      });
      b.style.background = c;
      return b;
    });
    const textInput = h('input', { class: 'snap-text', attrs: { id: 'snap-text', type: 'text', maxlength: 80 }, t: { placeholder: 'snapshot.text_placeholder', 'aria-label': 'snapshot.text_placeholder' } });
    const undo = h('button', {
      class: 'chip-button',
      attrs: { type: 'button', id: 'snap-undo' },
      text: 'snapshot.undo',
      on: {
        click: () => {
          marks.pop();
          redraw();
        },
      },
    });
    const close = (/** @type {Blob | null} */ blob) => {
      document.removeEventListener('keydown', onKey);
      editor.remove();
      resolve(blob);
    };
    const send = h('button', {
      class: 'button primary',
      attrs: { type: 'button', id: 'snap-send' },
      text: 'snapshot.send',
      on: { click: () => canvas.toBlob((blob) => close(blob), 'image/jpeg', 0.92) },
    });
    const cancel = h('button', { class: 'button', attrs: { type: 'button', id: 'snap-cancel' }, text: 'snapshot.cancel', on: { click: () => close(null) } });
    /** @param {KeyboardEvent} event */
    const onKey = (event) => {
      if (event.key === 'Escape') close(null);
      if ((event.ctrlKey || event.metaKey) && event.key === 'z') {
        marks.pop();
        redraw();
      }
    };
    document.addEventListener('keydown', onKey);
    const editor = h(
      'div',
      { class: 'snap-editor', attrs: { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'snap-title' } },
      h('h2', { class: 'snap-title', attrs: { id: 'snap-title' }, text: 'snapshot.title' }),
      h('div', { class: 'snap-stage' }, canvas),
      h('div', { class: 'snap-tools' }, ...toolButtons, ...colourButtons, textInput, undo, cancel, send),
    );
    document.body.append(editor);
    redraw();
    send.focus();
  });
}
