// The engine at a glance, for admins: queue depth, running tasks, jobs by status, and the last
// hour's completions, failures and retries per model and per task type, per-model charts of
// the hour (charts.js), and the webhook delivery log with redelivery.

import { ApiError } from './api.js';
import { drawCharts, loadChartLibrary } from './charts.js';
import { h, message, replace, time } from './dom.js';

const REFRESH_MS = 5000;
/** Webhook deliveries shown: the newest. */
const DELIVERIES = 20;

/**
 * @param {HTMLElement} view
 * @param {any} ctx
 */
export function renderAdmin(view, ctx) {
  ctx.title('Engine');
  const controller = new AbortController();
  let timer = 0;
  const status = h('p', { class: 'list-status' });
  const body = h('div', { class: 'admin' });
  const charts = h('div', { class: 'charts' });
  const chartStatus = h('p', { class: 'list-status' });
  const deliveries = h('div', { class: 'deliveries' });
  replace(view,
    h('h1', { text: 'Engine' }),
    h('p', { class: 'lead' }, 'What every process sharing this database is doing. Counts over the last hour; refreshed every few seconds. Prometheus metrics are at ',
      h('a', { href: '/metrics', text: '/metrics' }), '.'),
    status,
    body,
    h('h2', { text: 'Last hour, per model, over time' }),
    h('p', { class: 'lead', text: 'Tasks completed per minute, their mean run time, failures and spend, in 2-minute buckets.' }),
    chartStatus,
    charts,
    h('h2', { text: 'Webhook deliveries' }),
    h('p', { class: 'lead' }, 'The newest events sent to the ',
      h('code', { text: '[[webhooks]]' }), ' endpoints: at least once, in order per job, retried with backoff. A redelivery sends one again with the same ',
      h('code', { text: 'webhook-id' }), '.'),
    deliveries);

  const redeliverButton = (delivery) => h('button', {
    type: 'button',
    class: 'button-quiet',
    'aria-label': `Redeliver delivery ${delivery.id}`,
    text: 'Redeliver',
    onclick: async (event) => {
      event.currentTarget.disabled = true;
      try {
        await ctx.api.redeliver(delivery.id);
        await loadDeliveries();
      } catch (err) {
        replace(deliveries, message('error', `Cannot redeliver ${delivery.id}: ${err.message}`));
      }
    },
  });

  const deliveryTable = (list) => h('div', { class: 'table-wrap', tabindex: 0 },
    h('table', { class: 'activity' },
      h('caption', { text: 'Webhook deliveries, newest first' }),
      h('thead', {}, h('tr', {}, ['Delivery', 'Endpoint', 'Event', 'Job', 'Status', 'Attempts', 'Last error', 'Created', '']
        .map((c, i) => h('th', { scope: 'col', class: i === 5 ? 'num' : null, text: c })))),
      h('tbody', {}, list.length
        ? list.map((d) => h('tr', { class: d.status === 'failed' ? 'has-failures' : null },
          h('th', { scope: 'row' }, h('code', { text: `msg_${d.id}` })),
          h('td', {}, h('code', { text: d.webhook })),
          h('td', {}, h('code', { text: d.event })),
          h('td', {}, h('a', { href: `#/jobs/${d.jobId}`, text: `#${d.jobId}` })),
          h('td', {}, h('span', { class: `badge badge-${d.status}`, text: d.status })),
          h('td', { class: 'num', text: d.attempts }),
          h('td', {}, d.lastError ? h('span', { class: 'bad', text: d.lastError }) : h('span', { class: 'muted', text: '—' })),
          h('td', {}, time(d.createdAt)),
          h('td', {}, d.status === 'pending' ? null : redeliverButton(d))))
        : h('tr', {}, h('td', { colspan: 9, class: 'empty', text: 'No deliveries: no [[webhooks]] endpoint is configured, or no event happened yet.' })))));

  async function loadDeliveries() {
    try {
      const answer = await ctx.api.webhookDeliveries(DELIVERIES, controller.signal);
      replace(deliveries, deliveryTable(answer.deliveries || []));
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(deliveries, message('error', `Cannot read the webhook deliveries: ${err.message}`));
    }
  }

  const card = (label, value, note) => h('div', { class: 'stat card' },
    h('span', { class: 'stat-label', text: label }),
    h('span', { class: 'stat-value', text: String(value) }),
    note ? h('span', { class: 'stat-note', text: note }) : null);

  const table = (caption, nameHeader, rows, nullName) => h('div', { class: 'table-wrap', tabindex: 0 },
    h('table', { class: 'activity' },
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, [nameHeader, 'Queued', 'Running', 'Completed', 'Failed', 'Cancelled', 'Retries']
        .map((c, i) => h('th', { scope: 'col', class: i ? 'num' : null, text: c })))),
      h('tbody', {}, rows.length
        ? rows.map((row) => h('tr', { class: row.failed ? 'has-failures' : null },
          h('th', { scope: 'row' }, row.name === null ? h('span', { class: 'muted', text: nullName }) : h('code', { text: row.name })),
          ['queued', 'running', 'completed', 'failed', 'cancelled', 'retries'].map((k) => h('td', { class: `num${k === 'failed' && row[k] ? ' bad' : ''}`, text: row[k] }))))
        : h('tr', {}, h('td', { colspan: 7, class: 'empty', text: 'No tasks in the last hour.' })))));

  // Each model's cluster-wide limits and what uses them now: running in any process, and a
  // pause a provider's 429 put on it for every worker.
  const modelTable = (models) => h('div', { class: 'table-wrap', tabindex: 0 },
    h('table', { class: 'activity' },
      h('caption', { text: 'Models: limits across every worker, running now, and pauses after a provider said 429' }),
      h('thead', {}, h('tr', {}, ['Model', 'Kind', 'Running', 'At once', 'Per minute', 'Paused until']
        .map((c, i) => h('th', { scope: 'col', class: i > 1 && i < 5 ? 'num' : null, text: c })))),
      h('tbody', {}, models.map((m) => h('tr', { class: m.pausedUntil ? 'has-failures' : null },
        h('th', { scope: 'row' }, h('code', { text: m.name })),
        h('td', { text: m.kind }),
        h('td', { class: 'num', text: m.running ?? '—' }),
        // A model without a cluster-wide limit (a free simulated one) reports nothing running.
        h('td', { class: 'num', text: m.running === undefined ? 'no limit' : m.maxConcurrency }),
        h('td', { class: 'num', text: m.requestsPerMinute ?? '—' }),
        h('td', {}, m.pausedUntil ? time(m.pausedUntil) : h('span', { class: 'muted', text: 'not paused' })))))));

  async function load() {
    try {
      const [stats, models] = await Promise.all([
        ctx.api.adminStats(controller.signal),
        ctx.api.models(controller.signal),
      ]);
      const jobs = stats.jobsByStatus || {};
      replace(body,
        h('h2', { text: 'Now' }),
        h('div', { class: 'stats' },
          card('Queue: ready', stats.queue.ready, 'claimable now'),
          card('Queue: retry later', stats.queue.scheduled, 'waiting for a backoff'),
          card('Running tasks', stats.queue.running, 'in any process'),
          card('Active jobs', (jobs.pending ?? 0) + (jobs.running ?? 0), 'pending or running')),
        h('h2', { text: 'Active jobs by status' }),
        h('ul', { class: 'status-counts' }, Object.entries(jobs).map(([s, n]) => h('li', {},
          h('a', { href: `#/jobs?status=${s}` }, h('span', { class: `badge badge-${s}`, text: s }), ` ${n}`)))),
        h('h2', { text: 'Models' }),
        modelTable(models.models || []),
        h('h2', { text: 'Last hour, per model' }),
        table('Tasks per model: queued and running now; completed, failed, cancelled and retried in the last hour',
          'Model', stats.models, 'default / not started'),
        h('h2', { text: 'Last hour, per step type' }),
        table('Tasks per step type: queued and running now; completed, failed, cancelled and retried in the last hour',
          'Step type', stats.taskTypes, '—'));
      replace(status, 'Read at ', time(stats.generatedAt), ` from ${stats.backend}.`);
      await Promise.all([loadCharts(), loadDeliveries()]);
    } catch (err) {
      if (err.name === 'AbortError') return;
      const text = err instanceof ApiError && err.status === 403
        ? 'Engine statistics need a token with role admin.'
        : `Cannot read the engine statistics: ${err.message}`;
      replace(status, message('error', text));
    }
  }

  async function loadCharts() {
    try {
      const [uPlot, series] = await Promise.all([loadChartLibrary(), ctx.api.adminSeries(60, controller.signal)]);
      drawCharts(charts, series, uPlot);
      replace(chartStatus);
    } catch (err) {
      if (err.name === 'AbortError') return;
      replace(chartStatus, message('error', `Cannot draw the charts: ${err.message}`));
    }
  }

  function schedule() {
    timer = window.setTimeout(async () => {
      if (document.visibilityState === 'visible') await load();
      schedule();
    }, REFRESH_MS);
  }
  if (!ctx.isAdmin) {
    replace(status, message('info', 'Engine statistics need a token with role admin. Ask for one, or mint one with `nosyntask-server token --user ID --role admin`.'));
    return () => {};
  }
  load().then(schedule);
  return () => {
    controller.abort();
    clearTimeout(timer);
    for (const plot of charts.plots || []) plot.destroy();
    charts.resizer?.disconnect();
  };
}
