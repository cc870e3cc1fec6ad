// A step's result shown for what it is, above its JSON: a list of records (a storyboard's shots,
// extracted characters) as a table, a text of several lines (a script, a prompt) with its line
// breaks. `records` and `texts` are pure, so they are unit-tested in Node.

import { h } from './dom.js';
import { humanize } from './media.js';

const MAX_COLUMNS = 8;

const title = (field) => {
  const text = humanize(field);
  return text.charAt(0).toUpperCase() + text.slice(1);
};

/**
 * The top-level fields of `result` that hold a list of objects: `[field, columns, rows]`, the
 * columns being the scalar fields the rows share (at most eight, first seen first).
 * @param {unknown} result
 * @returns {[string, string[], Record<string, unknown>[]][]}
 */
export function records(result) {
  if (!result || typeof result !== 'object' || Array.isArray(result)) return [];
  const out = [];
  for (const [field, value] of Object.entries(result)) {
    if (!Array.isArray(value) || value.length === 0) continue;
    if (!value.every((row) => row && typeof row === 'object' && !Array.isArray(row))) continue;
    const columns = [];
    for (const row of value) {
      for (const [key, cell] of Object.entries(row)) {
        const scalar = cell === null || ['string', 'number', 'boolean'].includes(typeof cell);
        if (scalar && !columns.includes(key) && columns.length < MAX_COLUMNS) columns.push(key);
      }
    }
    if (columns.length) out.push([field, columns, value]);
  }
  return out;
}

/**
 * The top-level string fields of `result` with line breaks: `[field, text]`.
 * @param {unknown} result
 * @returns {[string, string][]}
 */
export function texts(result) {
  if (!result || typeof result !== 'object' || Array.isArray(result)) return [];
  return Object.entries(result).filter(([, v]) => typeof v === 'string' && v.includes('\n'));
}

/** The tables and texts of a step's result (nothing when it has none). */
export function renderResult(result, stepNumber) {
  return [
    ...records(result).map(([field, columns, rows]) => h('div', { class: 'table-wrap', tabindex: 0 },
      h('table', { class: 'records' },
        h('caption', { text: `${title(field)} of step ${stepNumber} (${rows.length})` }),
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', text: title(c) })))),
        h('tbody', {}, rows.map((row) => h('tr', {},
          columns.map((c) => h('td', { text: row[c] === undefined || row[c] === null ? '' : String(row[c]) })))))))),
    ...texts(result).map(([field, text]) => h('figure', { class: 'text-result' },
      h('figcaption', { text: title(field) }),
      h('div', { class: 'prose', tabindex: 0, text }))),
  ];
}
