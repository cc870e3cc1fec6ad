// A job's steps on one time axis, from its creation to its end (or now): each attempt of each
// step as a bar where it ran, coloured by how it ended (completed, failed, lost, cancelled…),
// the running attempt up to now, and a mark where a resume started a run again. Gaps are waits:
// for a worker, a model, a retry, or a resume.

import { duration, h } from './dom.js';
import { absolute } from './when.js';

const ms = (iso) => (iso ? new Date(iso).getTime() : NaN);

/**
 * The run number of each finished attempt of a step (null for one parked before it started), in
 * history order. The task's `attempts` counts against its retry quota only, and a resume starts
 * that count again; the history keeps every run, so the console numbers runs by it (a resumed
 * step's next run is "attempt 3", not "1").
 * @param {any[]} history
 * @returns {(number | null)[]}
 */
export function runNumbers(history) {
  let n = 0;
  return (history || []).map((a) => (a.started_at ? ++n : null));
}

/**
 * How many times a step has run, the one running now included.
 * @param {any} task
 */
export function runs(task) {
  const started = runNumbers(task.attempts_history).filter((n) => n !== null).length;
  return started + (task.status === 'running' ? 1 : 0);
}

/**
 * Whether a run numbered `attempt` (against the retry quota) came after a resume: the run before
 * it was cancelled or failed, and the quota's count did not go on from it (a retry's does).
 * @param {any} previous the history row before the run, if any
 * @param {number} attempt
 */
function resumedAfter(previous, attempt) {
  return Boolean(previous) && (previous.outcome === 'cancelled' || previous.outcome === 'failed')
    && attempt <= previous.attempt;
}

/**
 * The spans of a step: its finished attempts, then the one running now.
 * @param {any} task
 * @param {number} now
 * @returns {{from: number, to: number, outcome: string, resumed: boolean, label: string}[]}
 */
export function spans(task, now) {
  const history = task.attempts_history || [];
  const numbers = runNumbers(history);
  const after = (i, attempt) => (resumedAfter(history[i - 1], attempt) ? 'resumed, ' : '');
  const out = history
    .map((a, i) => ({ a, n: numbers[i], i }))
    .filter(({ a }) => a.started_at)
    .map(({ a, n, i }) => ({
      from: ms(a.started_at),
      to: ms(a.ended_at),
      outcome: a.outcome,
      resumed: Boolean(after(i, a.attempt)),
      label: `${after(i, a.attempt)}attempt ${n} ${a.outcome.replace('_', ' ')}${a.error_message ? `: ${a.error_message}` : ''}`,
    }));
  if (task.status === 'running' && task.attempt_started_at) {
    const resumed = after(history.length, task.attempts);
    out.push({ from: ms(task.attempt_started_at), to: now, outcome: 'running', resumed: Boolean(resumed), label: `${resumed}attempt ${runs(task)} running` });
  }
  return out.filter((s) => !Number.isNaN(s.from) && !Number.isNaN(s.to));
}

/**
 * @param {any} job a job read, with its tasks and their attempts_history
 * @param {number} [now]
 */
export function timeline(job, now = Date.now()) {
  const start = ms(job.created_at);
  const end = job.completed_at ? ms(job.completed_at) : now;
  const span = Math.max(end - start, 1);
  const at = (t) => `${(Math.min(Math.max(t - start, 0), span) / span) * 100}%`;
  const steps = [...(job.tasks || [])]
    .filter((t) => t.parent_task_id === undefined || t.parent_task_id === null)
    .sort((a, b) => a.step_index - b.step_index);
  return h('div', { class: 'timeline' },
    h('div', { class: 'tl-axis' },
      h('span', { text: absolute(job.created_at) }),
      h('span', { text: `${duration(end - start)}${job.completed_at ? '' : ' so far'}` })),
    h('ol', { class: 'tl-rows' }, steps.map((task) => {
      const bars = spans(task, now);
      const said = bars.length
        ? bars.map((s) => `${s.label}, ${duration(s.to - s.from)} from ${absolute(s.from)}`).join('; ')
        : 'not started';
      return h('li', { class: 'tl-row' },
        h('span', { class: 'tl-label' }, `Step ${task.step_index + 1} `, h('code', { text: task.task_type })),
        h('div', { class: 'tl-track', role: 'img', 'aria-label': `Step ${task.step_index + 1}: ${said}` },
          bars.map((s) => {
            const bar = h('span', { class: `tl-seg tl-${s.outcome}`, title: `${s.label} (${duration(s.to - s.from)})` });
            // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
            bar.style.left = at(s.from);
            bar.style.width = `max(3px, calc(${at(s.to)} - ${at(s.from)}))`;
            if (!s.resumed) return bar;
            // A resume: a mark where the run after it began.
            const mark = h('span', { class: 'tl-mark', title: `resumed at ${absolute(s.from)}` });
            mark.style.left = at(s.from);
            return [mark, bar];
          })));
    })));
}
