// Acting on several jobs of the list at once: a checkbox per row, and cancel / resume / mark
// consumed for the selected ones. Cancelling asks first: a paid generation already under way
// is stopped, and what it used is still billed.

import { h, message, replace } from './dom.js';

/**
 * @param {any} ctx the view context (its `api`)
 * @param {() => void} reload redraws the list after an action
 */
export function bulkActions(ctx, reload) {
  /** Selected job ids; kept across live refreshes, which redraw the rows. */
  const selected = new Set();
  const count = h('span', { class: 'bulk-count', 'aria-live': 'polite' });
  const outcome = h('div', { class: 'bulk-outcome' });
  const button = (text, cls) => h('button', { type: 'button', class: cls, text, disabled: true });
  const cancel = button('Cancel selected', 'button-danger');
  const resume = button('Resume selected');
  const consume = button('Mark selected consumed');
  const toolbar = h('div', { class: 'bulk', role: 'group', 'aria-label': 'Selected jobs' },
    count, cancel, resume, consume);

  const dialogText = h('p');
  const confirmButton = h('button', { type: 'button', class: 'button-danger', text: 'Cancel the jobs' });
  const keepButton = h('button', { type: 'button', text: 'Keep them running', autofocus: true });
  const dialog = h('dialog', { class: 'card confirm', 'aria-labelledby': 'confirm-title' },
    h('h2', { id: 'confirm-title', text: 'Cancel the selected jobs?' }), dialogText,
    h('div', { class: 'actions' }, keepButton, confirmButton));

  function sync() {
    const n = selected.size;
    count.textContent = n ? `${n} selected` : 'Select jobs to act on several at once';
    for (const b of [cancel, resume, consume]) b.disabled = n === 0;
  }

  /** The checkbox of a row. */
  function checkbox(job) {
    const box = h('input', { type: 'checkbox', class: 'select', 'aria-label': `Select job #${job.id}`, checked: selected.has(job.id) });
    box.addEventListener('change', () => {
      if (box.checked) selected.add(job.id);
      else selected.delete(job.id);
      sync();
    });
    return box;
  }

  /** Runs `call` on each selected job, one after another, and says what came of it. */
  async function run(call, verb) {
    const ids = [...selected].sort((a, b) => b - a);
    replace(outcome, message('info', `Working on ${ids.length} job${ids.length === 1 ? '' : 's'}…`));
    const refused = [];
    for (const id of ids) {
      try {
        await call(id);
      } catch (err) {
        refused.push(`#${id}: ${err.message}`);
      }
    }
    const done = ids.length - refused.length;
    const text = `${verb} ${done} of ${ids.length} job${ids.length === 1 ? '' : 's'}.`
      + (refused.length ? ` Not done: ${refused.join('; ')}.` : '');
    replace(outcome, message(refused.length ? 'error' : 'success', text));
    selected.clear();
    sync();
    reload();
  }

  cancel.addEventListener('click', () => {
    const n = selected.size;
    dialogText.textContent = `${n} job${n === 1 ? '' : 's'} will stop. A generation already under way at a paid provider is stopped, and what it used so far is still billed.`;
    dialog.showModal();
  });
  keepButton.addEventListener('click', () => dialog.close());
  confirmButton.addEventListener('click', () => {
    dialog.close();
    run((id) => ctx.api.cancel(id), 'Cancelled');
  });
  resume.addEventListener('click', () => run((id) => ctx.api.resume(id), 'Resumed'));
  consume.addEventListener('click', () => run((id) => ctx.api.consume(id), 'Marked consumed'));
  sync();

  return { toolbar: h('div', {}, toolbar, outcome, dialog), checkbox };
}
