// Small DOM helpers. Text always goes in through text nodes, never as HTML.

import { absolute, relative } from './when.js';

/**
 * Builds an element. `attrs`: `class`, `text`, `on<event>` handlers, `dataset`, booleans as
 * present/absent attributes, anything else as an attribute; children: nodes, strings, arrays,
 * or null/false (skipped).
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') {
      el.textContent = String(value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * A `<time>` of an RFC 3339 string as a relative time ("2 min ago"), the local date and time
 * on hover; or an em dash. Views redraw often enough to keep it current.
 */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  const text = relative(iso);
  if (text === null) return h('span', { text: iso });
  return h('time', { datetime: iso, title: absolute(iso), text });
}

/** "1.2 s", "3 min 4 s", "2 h 5 min". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** How long a job or task ran: start to end, or start to now while it runs. */
export function elapsed(startedAt, completedAt) {
  if (!startedAt) return '—';
  const end = completedAt ? new Date(completedAt) : new Date();
  return duration(end.getTime() - new Date(startedAt).getTime());
}

/** A status badge: the status (or `label`) as text, coloured by class. */
export function badge(status, label = status) {
  return h('span', { class: `badge badge-${status}`, text: label });
}

/** A labelled progress bar with its percentage as text. */
export function progress(value, label) {
  const pct = Math.max(0, Math.min(100, Number(value) || 0));
  return h(
    'div',
    { class: 'progress' },
    h('progress', { max: 100, value: pct, 'aria-label': label }),
    h('span', { class: 'progress-value', text: `${pct} %` }),
  );
}

/**
 * Pretty-printed JSON in a `<pre>` (focusable, so that a keyboard can scroll it), with a button
 * that copies it.
 */
export function json(value) {
  const text = JSON.stringify(value, null, 2);
  const copy = h('button', { type: 'button', class: 'copy button-quiet', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Cannot copy here';
    }
    setTimeout(() => { copy.textContent = 'Copy'; }, 2000);
  });
  return h('div', { class: 'json-box' }, copy, h('pre', { class: 'json', tabindex: 0 }, h('code', { text })));
}

/** A `<dl>` from `[term, description]` pairs (descriptions may be nodes); null pairs skipped. */
export function facts(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs
      .filter(Boolean)
      .map(([term, value]) => h('div', {}, h('dt', { text: term }), h('dd', {}, value))),
  );
}

/** Says `text` to screen readers through the page's live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A separate tick, so the same text twice is announced twice.
  setTimeout(() => {
    region.textContent = text;
  }, 50);
}

/** A message box: `kind` is `error` (an alert), `success` or `info` (a status). */
export function message(kind, text) {
  return h('div', { class: `message message-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
