// A job's steps on one time axis, from its creation to its end (or now): each attempt of each
// step as a bar where it ran, coloured by how it ended (completed, failed, lost, cancelled…),
// the running attempt up to now. Gaps are waits: for a worker, a model, or a retry.

import { duration, h } from './dom.js';
import { absolute } from './when.js';

const ms = (iso) => (iso ? new Date(iso).getTime() : NaN);

/**
 * The spans of a step: its finished attempts, then the one running now.
 * @param {any} task
 * @param {number} now
 * @returns {{from: number, to: number, outcome: string, label: string}[]}
 */
export function spans(task, now) {
  const out = (task.attempts_history || [])
    .filter((a) => a.started_at)
    .map((a) => ({
      from: ms(a.started_at),
      to: ms(a.ended_at),
      outcome: a.outcome,
      label: `attempt ${a.attempt} ${a.outcome.replace('_', ' ')}${a.error_message ? `: ${a.error_message}` : ''}`,
    }));
  if (task.status === 'running' && task.attempt_started_at) {
    out.push({ from: ms(task.attempt_started_at), to: now, outcome: 'running', label: `attempt ${task.attempts} running` });
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
            return bar;
          })));
    })));
}
