// The jobs list: filters (project, workflow type, statuses) with each status's count, a jump
// to a job by id, newest first, paged with `before` and counted in total, refreshed live on the
// first page (a refresh that finds nothing new is a 304 and redraws nothing).

import { JOB_STATUSES } from './api.js';
import { bulkActions } from './bulk.js';
import { badge, elapsed, h, message, progress, replace, time } from './dom.js';

const PAGE = 25;
const REFRESH_MS = 3000;

/**
 * @param {HTMLElement} view
 * @param {any} ctx
 * @param {URLSearchParams} query
 */
export function renderJobs(view, ctx, query) {
  ctx.title('Jobs');
  const filters = {
    projectId: query.get('projectId') || '',
    workflowType: query.get('workflowType') || '',
    status: (query.get('status') || '').split(',').filter((s) => JOB_STATUSES.includes(s)),
    before: query.get('before') || '',
    q: query.get('q') || '',
    limit: PAGE,
  };
  const controller = new AbortController();
  let timer = 0;

  const project = h('input', { id: 'f-project', name: 'projectId', type: 'number', min: 1, step: 1, inputmode: 'numeric', value: filters.projectId });
  const type = h('select', { id: 'f-type', name: 'workflowType' }, h('option', { value: '', text: 'Any workflow' }));
  const search = h('input', { id: 'f-q', name: 'q', type: 'search', maxlength: 200, value: filters.q, placeholder: 'words of the script, a character…' });
  /** The count shown next to each status, updated by every refresh. */
  const countOf = Object.fromEntries(JOB_STATUSES.map((status) => [status, h('span', { class: 'count muted' })]));
  const statusBoxes = JOB_STATUSES.map((status) =>
    h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'status', value: status, checked: filters.status.includes(status) }),
      ` ${status}`, countOf[status]),
  );
  const filtered = Boolean(filters.projectId || filters.workflowType || filters.status.length || filters.q);
  const live = h('input', { id: 'f-live', type: 'checkbox', checked: !filters.before });
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter jobs' },
    h('div', { class: 'field' }, h('label', { for: 'f-project', text: 'Project id' }), project),
    h('div', { class: 'field' }, h('label', { for: 'f-type', text: 'Workflow type' }), type),
    h('div', { class: 'field field-search' }, h('label', { for: 'f-q', text: 'Params contain' }), search),
    h('fieldset', { class: 'field statuses' }, h('legend', { text: 'Status' }), statusBoxes),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'button-primary', text: 'Apply' }),
      h('a', { href: '#/jobs', class: 'button button-quiet', text: 'Reset' })),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (project.value.trim()) next.set('projectId', project.value.trim());
    if (type.value) next.set('workflowType', type.value);
    if (search.value.trim()) next.set('q', search.value.trim());
    const statuses = statusBoxes.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    if (statuses.length) next.set('status', statuses.join(','));
    ctx.navigate(`#/jobs${next.toString() ? `?${next}` : ''}`);
  });

  const jobId = h('input', { id: 'f-job', name: 'job', type: 'number', min: 1, step: 1, inputmode: 'numeric', required: true });
  const jump = h('form', { class: 'jump', role: 'search', 'aria-label': 'Open a job by id' },
    h('label', { for: 'f-job', text: 'Job id' }), jobId,
    h('button', { type: 'submit', text: 'Open job' }));
  jump.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = Number(jobId.value);
    if (Number.isInteger(id) && id > 0) ctx.navigate(`#/jobs/${id}`);
  });

  ctx.types().then((data) => {
    for (const wf of data.workflows) {
      type.appendChild(h('option', { value: wf.type, selected: wf.type === filters.workflowType, text: `${wf.name} (${wf.type})` }));
    }
  }).catch(() => {});

  const status = h('div', { class: 'list-status' });
  const body = h('tbody');
  const columns = ['Select', 'Job', 'Workflow', 'Project', ctx.isAdmin ? 'User' : null, 'Status', 'Progress', 'Created', 'Ran for'].filter(Boolean);
  const bulk = bulkActions(ctx, () => {
    etag = null;
    load();
  });
  const table = h('table', { class: 'jobs' },
    h('caption', { class: 'visually-hidden', text: 'Jobs, newest first' }),
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' },
      c === 'Select' ? h('span', { class: 'visually-hidden', text: c }) : c)))),
    body,
  );
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });

  const liveLabel = h('label', { class: 'check live', for: 'f-live' }, live, ' Live updates');
  replace(
    view,
    h('div', { class: 'title-row' },
      h('h1', { text: 'Jobs' }),
      h('div', { class: 'title-side' }, jump,
        h('a', { href: '#/start', class: 'button button-primary', text: 'Start a workflow' }))),
    form,
    h('div', { class: 'list-head' }, status, filters.before ? null : liveLabel),
    bulk.toolbar,
    h('div', { class: 'table-wrap' }, table),
    pager,
  );

  const row = (job) => h('tr', {},
    h('td', { class: 'select-cell' }, bulk.checkbox(job)),
    // `data-label`: the column's name, shown beside the value when a phone stacks the cells.
    h('td', { 'data-label': 'Job' }, h('a', { href: `#/jobs/${job.id}`, text: `#${job.id}` })),
    h('td', { 'data-label': 'Workflow' }, h('span', { class: 'wf' },
      h('span', { class: 'wf-name', text: job.workflowName }), h('br'), h('code', { class: 'muted', text: job.workflow_type }))),
    h('td', { 'data-label': 'Project', text: job.project_id ?? '—' }),
    ctx.isAdmin ? h('td', { 'data-label': 'User', text: job.user_id }) : null,
    h('td', { 'data-label': 'Status' }, badge(job.status), job.is_consumed ? h('span', { class: 'muted small', text: ' consumed' }) : null),
    h('td', { 'data-label': 'Progress' }, progress(job.progress, `Progress of job ${job.id}`)),
    h('td', { 'data-label': 'Created' }, time(job.created_at)),
    h('td', { 'data-label': 'Ran for', text: elapsed(job.started_at, job.completed_at) }),
  );

  /** The row that says there is nothing to list, and what to do about it. */
  const emptyRow = () => h('tr', {}, h('td', { colspan: columns.length, class: 'empty' },
    filters.before ? 'No older jobs.'
      : filtered ? ['No jobs match these filters. ', h('a', { href: '#/jobs', text: 'Show every job' })]
        : ['No jobs yet. ', h('a', { href: '#/start', text: 'Start a workflow' })]));

  let etag = null;

  async function load() {
    try {
      const answer = await ctx.api.list(filters, etag, controller.signal);
      if (answer.notModified) {
        // Nothing changed; only the relative times move on.
        for (const el of body.querySelectorAll('time')) el.replaceWith(time(el.getAttribute('datetime')));
        return;
      }
      etag = answer.etag;
      const data = answer.data;
      const jobs = data.jobs || [];
      const total = data.total ?? jobs.length;
      for (const status of JOB_STATUSES) {
        const n = data.counts ? data.counts[status] : null;
        countOf[status].textContent = n === null || n === undefined ? '' : ` (${n})`;
      }
      // Keep keyboard focus on the same link across a live refresh.
      const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute('href') : null;
      replace(body, jobs.length ? jobs.map(row) : emptyRow());
      if (focused) body.querySelector(`a[href="${CSS.escape(focused)}"]`)?.focus();
      const noun = total === 1 ? 'job' : 'jobs';
      // Pages go by id (`before`), so a page's number is known only when reached by "Older".
      const pages = Math.max(1, Math.ceil(total / PAGE));
      const pageNumber = filters.before ? Number(query.get('page')) || null : 1;
      const where = pageNumber && pages > 1 ? `Page ${pageNumber} of ${pages} · ` : '';
      replace(status, jobs.length === total
        ? `${total} ${noun}`
        : `${where}${jobs.length} of ${total} ${noun}${filters.before ? `, older than #${filters.before}` : ', newest first'}`);
      const link = (label, params) => {
        const q = new URLSearchParams(query);
        q.delete('before');
        q.delete('page');
        for (const [k, v] of Object.entries(params)) q.set(k, v);
        return h('a', { class: 'button', href: `#/jobs${q.toString() ? `?${q}` : ''}`, text: label });
      };
      const older = { before: String(jobs.length ? jobs[jobs.length - 1].id : ''), ...(pageNumber ? { page: String(pageNumber + 1) } : {}) };
      replace(pager,
        filters.before ? link('← Newest', {}) : null,
        jobs.length === PAGE ? link('Older →', older) : null);
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(status, message('error', `Cannot list the jobs: ${err.message}`));
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!live.checked || filters.before) return;
    timer = window.setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      schedule();
    }, REFRESH_MS);
  }
  live.addEventListener('change', schedule);
  load().then(schedule);
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}
