// One job: status, overall progress, its steps (attempts, errors, input, result, media), live
// updates from the job's event stream, and the cancel / resume / consume actions.

import { ApiError, TERMINAL } from './api.js';
import { announce, badge, duration, elapsed, facts, h, json, message, progress, replace, time } from './dom.js';
import { findMedia, humanize } from './media.js';
import { renderResult } from './results.js';
import { runNumbers, runs, spans, timeline } from './timeline.js';
import { usageByModel, usageText } from './usage.js';

const MAX_RECONNECT_MS = 10000;

/**
 * @param {HTMLElement} view
 * @param {any} ctx
 * @param {string} idText
 */
export function renderJob(view, ctx, idText) {
  const id = Number(idText);
  if (!Number.isInteger(id) || id <= 0) {
    ctx.title('Job not found');
    replace(view, h('h1', { text: 'Job not found' }), message('error', `“${idText}” is not a job id.`));
    return () => {};
  }
  ctx.title(`Job #${id}`);
  const controller = new AbortController();
  const { signal } = controller;
  /** @type {any} */
  let job = null;
  let following = false;
  /** Media elements by URL, kept across updates so images do not reload. */
  const mediaNodes = new Map();
  /** Open state of `<details>` by key, kept across updates. */
  const openState = new Map();

  const heading = h('h1', { text: `Job #${id}` });
  const subtitle = h('p', { class: 'subtitle' });
  const statusBox = h('div', { class: 'job-status' });
  const live = h('span', { class: 'live-indicator', 'data-state': 'connecting', text: 'Connecting…' });
  const progressBox = h('div', { class: 'job-progress' });
  const cancel = h('button', { type: 'button', class: 'button-danger', text: 'Cancel job', disabled: true });
  const resume = h('button', { type: 'button', text: 'Resume', disabled: true });
  const consume = h('button', { type: 'button', text: 'Mark consumed', disabled: true });
  const actionStatus = h('div', { class: 'action-status' });
  const errorBox = h('div');
  const summary = h('div', { class: 'card' });
  const steps = h('ol', { class: 'steps' });
  const timelineBox = h('div', { class: 'card' });
  const input = h('div');

  replace(
    view,
    h('p', { class: 'breadcrumbs' }, h('a', { href: '#/jobs', text: '← Jobs' })),
    h('div', { class: 'title-row' }, h('div', {}, heading, subtitle), h('div', { class: 'title-side' }, statusBox, live)),
    progressBox,
    h('div', { class: 'actions job-actions', role: 'group', 'aria-label': 'Job actions' }, cancel, resume, consume),
    actionStatus,
    errorBox,
    h('h2', { text: 'Summary' }),
    summary,
    h('h2', { text: 'Timeline' }),
    timelineBox,
    h('h2', { text: 'Steps' }),
    steps,
    h('h2', { text: 'Input params' }),
    input,
  );

  function details(key, label, content, openByDefault) {
    const el = h('details', { open: openState.has(key) ? openState.get(key) : openByDefault },
      h('summary', { text: label, 'data-focus-key': key }), content);
    el.addEventListener('toggle', () => openState.set(key, el.open));
    return el;
  }

  function mediaNode(item) {
    let node = mediaNodes.get(item.url);
    if (!node) {
      const label = humanize(item.keys[0]) || 'media';
      const element = item.kind === 'video'
        ? h('video', { src: item.url, controls: true, preload: 'metadata', 'aria-label': `${label} (video)` })
        : h('img', { src: item.url, alt: `${label}`, decoding: 'async' });
      node = h('figure', { class: `media media-${item.kind}` },
        element,
        h('figcaption', {}, item.keys.map(humanize).join(', '), ' · ',
          h('a', { href: item.url, target: '_blank', rel: 'noopener', text: 'open', 'data-focus-key': `open-${item.url}` })));
      mediaNodes.set(item.url, node);
    }
    return node;
  }

  /** The "Usage" fact of a job or step: what its model calls used and cost. */
  function usageFact(usage) {
    const text = usageText(usage);
    return text ? ['Usage', h('span', { class: 'usage', text })] : null;
  }

  function step(task, total) {
    const n = task.step_index + 1;
    const headingId = `step-${task.step_index}`;
    const media = task.result_data ? findMedia(task.result_data) : [];
    return h('li', { class: `step card step-${task.status}` },
      h('section', { 'aria-labelledby': headingId },
        h('div', { class: 'step-head' },
          h('h3', { id: headingId }, `Step ${n} of ${total}: `, h('code', { text: task.task_type })),
          // A failed attempt's step is pending again, but it is not merely queued.
          retryAt(task) ? badge(task.status, 'waiting to retry') : badge(task.status)),
        progress(task.progress, `Progress of step ${n}`),
        facts([
          ['Target', `${task.target_type}${task.target_id !== null && task.target_id !== undefined ? ` #${task.target_id}` : ''}`],
          ['Model', modelOf(task)],
          ['Attempts', attemptsText(task)],
          task.external_task_id ? ['Provider task', h('code', { text: task.external_task_id })] : null,
          ['Started', time(task.attempt_started_at || task.started_at)],
          task.started_at && task.attempt_started_at && task.started_at !== task.attempt_started_at
            ? ['First started', time(task.started_at)] : null,
          retryAt(task) ? ['Next attempt', retryAt(task)] : null,
          task.waiting_reason && task.status === 'pending' ? ['Waiting', task.waiting_reason] : null,
          ['Finished', time(task.completed_at)],
          ['Ran for', elapsed(task.attempt_started_at || task.started_at, task.completed_at)],
          usageFact(task.usage),
        ]),
        // An error of an earlier attempt is history once the step completed.
        task.error_message && task.status !== 'completed'
          ? h('div', { class: 'message message-error' }, h('strong', { text: 'Error: ' }), task.error_message) : null,
        media.length ? h('div', { class: 'gallery' }, media.map(mediaNode)) : null,
        task.result_data ? renderResult(task.result_data, n) : null,
        task.result_data !== null && task.result_data !== undefined
          ? details(`result-${task.id}`, 'Result', json(task.result_data), true)
          : null,
        task.input_params !== null && task.input_params !== undefined
          ? details(`input-${task.id}`, 'Step input', json(task.input_params), false)
          : null,
        task.attempts_history && task.attempts_history.length
          ? details(`attempts-${task.id}`, `Attempt history (${task.attempts_history.length})`,
            attemptTable(task), task.attempts_history.some((a) => a.outcome !== 'completed'))
          : null,
      ));
  }

  /**
   * The model a step used: the one it was started with, else the one its usage was recorded
   * under (a step that used its kind's default records none at start).
   */
  function modelOf(task) {
    if (task.model_name) return task.model_name;
    const used = Object.keys((task.usage && task.usage.models) || {});
    if (used.length) return `${used.join(', ')} (its kind's default)`;
    return h('span', { class: 'muted', text: "its kind's default" });
  }

  /** "in 12 s" (with the time on hover) while a step waits for its retry; null otherwise. */
  function retryAt(task) {
    if (task.status !== 'pending' || !task.next_attempt_at) return null;
    const wait = new Date(task.next_attempt_at).getTime() - Date.now();
    if (!(wait > 0)) return null;
    return h('span', { title: task.next_attempt_at }, `retry in ${duration(wait)}`);
  }

  /**
   * "1 of 3" against the retry quota; after a resume (which starts the quota again) or a
   * hand-back (which costs none), also how many times the step ran in all.
   */
  function attemptsText(task) {
    const quota = task.max_attempts ? `${task.attempts} of ${task.max_attempts}` : String(task.attempts);
    const all = runs(task);
    return all > task.attempts ? `${quota} · ${all} runs in all` : quota;
  }

  /** The step's finished attempts, oldest first: worker, start, end, outcome, error. */
  function attemptTable(task) {
    const numbers = runNumbers(task.attempts_history);
    return h('div', { class: 'table-wrap', tabindex: 0 }, h('table', { class: 'attempts' },
      h('caption', { class: 'visually-hidden', text: `Attempts of step ${task.step_index + 1}` }),
      h('thead', {}, h('tr', {}, ['Attempt', 'Worker', 'Started', 'Ended', 'Took', 'Outcome', 'Error']
        .map((label) => h('th', { scope: 'col', text: label })))),
      h('tbody', {}, task.attempts_history.map((a, i) => h('tr', { class: `attempt-${a.outcome}` },
        h('td', { text: numbers[i] === null ? '—' : String(numbers[i]) }),
        h('td', {}, a.worker ? h('code', { text: a.worker }) : '—'),
        h('td', {}, time(a.started_at)),
        h('td', {}, time(a.ended_at)),
        h('td', { text: elapsed(a.started_at, a.ended_at) }),
        h('td', {}, badge(a.outcome)),
        h('td', { text: a.error_message || '' }),
      )))));
  }

  function update(next) {
    const before = job;
    job = next;
    heading.textContent = `Job #${job.id}`;
    replace(subtitle, h('span', { text: job.workflowName }), ' · ', h('code', { text: job.workflow_type }));
    ctx.title(`Job #${job.id} ${job.status}`);
    replace(statusBox, badge(job.status), job.is_consumed ? h('span', { class: 'muted small', text: ' consumed' }) : null);
    replace(progressBox, progress(job.progress, 'Overall progress'));
    const active = job.status === 'pending' || job.status === 'running';
    cancel.disabled = !active;
    resume.disabled = !(job.status === 'failed' || job.status === 'cancelled');
    consume.disabled = !(TERMINAL.has(job.status) && !job.is_consumed);
    replace(errorBox, job.error_message
      ? message(job.status === 'cancelled' ? 'info' : 'error',
        `${job.status === 'cancelled' ? 'The job was cancelled' : 'The job failed'}: ${job.error_message}`)
      : null);
    const byModel = usageByModel(job.usage);
    replace(summary, facts([
      ['Workflow', job.workflowName],
      ['Project', String(job.project_id)],
      ['User', String(job.user_id)],
      ['Steps', `${Math.min(job.current_step_index + 1, job.total_steps)} of ${job.total_steps}`],
      ['Created', time(job.created_at)],
      ['Started', time(job.started_at)],
      ['Finished', time(job.completed_at)],
      // The steps' attempts added up: a cancelled or failed job waiting for its resume is not
      // running. The span from the first start is there too.
      ['Ran for', duration(runningTime(job))],
      ['Since first start', elapsed(job.started_at, job.completed_at)],
      ['Updated', time(job.updated_at)],
      usageFact(job.usage),
      // Each model's part when several were used (a storyboard's text model and a video model).
      ...(byModel.length > 1 ? byModel.map(([model, text]) => [`· ${model}`, text]) : []),
    ]));
    const tasks = [...(job.tasks || [])].sort((a, b) => a.step_index - b.step_index);
    // Updates arrive several times a second: keep keyboard focus where it was.
    const focusKey = steps.contains(document.activeElement) ? document.activeElement.getAttribute('data-focus-key') : null;
    replace(steps, tasks.map((task) => step(task, job.total_steps)));
    replace(timelineBox, timeline(job));
    if (focusKey) steps.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
    // A long script is there when wanted, not in the way of the steps.
    const inputText = JSON.stringify(job.input_params) || '';
    replace(input, details('input-job', `JSON, ${inputText.length.toLocaleString('en')} characters`,
      json(job.input_params), inputText.length <= 2000));
    if (before && before.status !== job.status) announce(`Job ${job.id} is ${job.status}.`);
  }

  /** Milliseconds the job's steps spent in attempts (fan-out items run inside their step). */
  function runningTime(current) {
    const now = Date.now();
    return (current.tasks || [])
      .filter((t) => t.parent_task_id === undefined || t.parent_task_id === null)
      .flatMap((t) => spans(t, now))
      .reduce((sum, s) => sum + (s.to - s.from), 0);
  }

  function setLive(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  const sleep = (ms) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(undefined);
    }, { once: true });
  });

  /** @param {{job: any, etag: string | null} | null} held the read the stream may start from */
  async function follow(held) {
    if (following) return;
    following = true;
    let delay = 1000;
    let serverDelay = 1000;
    try {
      while (!signal.aborted) {
        try {
          const options = {
            onRetry: (ms) => { serverDelay = ms; },
            onOpen: () => setLive('live', '● Live'),
            held,
          };
          // A reconnection starts from the whole job: the versions since the read are unknown.
          held = null;
          for await (const next of ctx.api.events(id, signal, options)) {
            setLive('live', '● Live');
            delay = serverDelay;
            update(next);
          }
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ApiError && err.status === 404 && !job) {
            notFound();
            return;
          }
          if (err instanceof ApiError && (err.status === 404 || err.status === 401)) {
            setLive('ended', 'Not following');
            return;
          }
          if (!job) replace(errorBox, message('error', `Cannot load the job: ${err.message}`));
        }
        if (signal.aborted) return;
        if (job && TERMINAL.has(job.status)) {
          setLive('ended', 'Finished: no more updates');
          return;
        }
        setLive('reconnecting', 'Reconnecting…');
        await sleep(delay);
        delay = Math.min(delay * 2, MAX_RECONNECT_MS);
      }
    } finally {
      following = false;
    }
  }

  async function refresh() {
    const { data: next, etag } = await ctx.api.job(id, signal);
    update(next);
    if (TERMINAL.has(next.status)) setLive('ended', 'Finished: no more updates');
    else follow({ job: next, etag });
  }

  async function act(button, run, done) {
    button.disabled = true;
    replace(actionStatus);
    try {
      await run(id);
      replace(actionStatus, message('success', done));
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(actionStatus, message('error', err.message));
    }
    try {
      await refresh();
    } catch (err) {
      if (err.name !== 'AbortError') replace(actionStatus, message('error', err.message));
    }
  }

  cancel.addEventListener('click', () => act(cancel, (j) => ctx.api.cancel(j), `Job ${id} cancelled.`));
  resume.addEventListener('click', () => act(resume, (j) => ctx.api.resume(j), `Job ${id} resumes from its first unfinished step.`));
  consume.addEventListener('click', () => act(consume, (j) => ctx.api.consume(j), `Job ${id} marked consumed.`));

  function notFound() {
    ctx.title('Job not found');
    replace(view,
      h('p', { class: 'breadcrumbs' }, h('a', { href: '#/jobs', text: '← Jobs' })),
      h('h1', { text: `Job #${id} not found` }),
      message('error', 'There is no such job, or it belongs to another user.'));
  }

  // The page loads through the job's event stream: its first message is the whole job, the
  // rest what changed. (A read, then a stream, would send the job twice whenever it moved on
  // in between, as a job just started does.)
  follow(null);

  return () => controller.abort();
}
