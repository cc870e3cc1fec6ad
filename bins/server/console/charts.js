// Per-model charts of the admin page: tasks completed per minute, mean run time, failures and
// spend over the window of `GET /api/admin/series`. Drawn by uPlot (MIT, vendored under
// console/vendor and served from the binary like the rest), loaded only when this page opens.
// Each chart also says what it shows in words (its figure's caption and the canvas's label), so
// a screen reader reads the figures the canvas draws.

import { h, replace } from './dom.js';

/** Line colours, told apart in light and dark schemes (and not by colour alone: see the legend). */
const PALETTE = ['#2f6fdf', '#d9480f', '#2b8a3e', '#ae3ec9', '#e67700', '#0c8599', '#c2255c', '#5c940d'];

let loading = null;

/** uPlot, from the console's own origin (a classic script: its build defines `window.uPlot`). */
export function loadChartLibrary() {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      document.head.appendChild(h('link', { rel: 'stylesheet', href: '/console/vendor/uPlot.min.css' }));
      const script = h('script', { src: '/console/vendor/uPlot.iife.min.js' });
      script.addEventListener('load', () => resolve(window.uPlot));
      script.addEventListener('error', () => {
        loading = null;
        reject(new Error('the chart library did not load'));
      });
      document.head.appendChild(script);
    });
  }
  return loading;
}

/**
 * The figures a chart draws, one column per model: `[x, ...ys]` as uPlot takes them.
 * @param {any} series the answer of `GET /api/admin/series`
 * @returns {{key: string, title: string, unit: string, columns: (number | null)[][], format: (v: number) => string}[]}
 */
export function chartData(series) {
  const x = series.buckets.map((b) => Date.parse(b) / 1000);
  const perMinute = 60 / Math.max(series.bucketSecs, 1);
  const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;
  const of = (pick) => [x, ...series.models.map(pick)];
  return [
    {
      key: 'throughput', title: 'Tasks completed per minute', unit: '/min',
      columns: of((m) => m.completed.map((n) => round(n * perMinute, 2))),
      format: (v) => `${round(v, 2)}/min`,
    },
    {
      key: 'latency', title: 'Mean run time of a completed task', unit: 's',
      columns: of((m) => m.meanMs.map((ms) => (ms === null ? null : round(ms / 1000, 3)))),
      format: (v) => `${round(v, 3)} s`,
    },
    {
      key: 'failures', title: 'Tasks failed', unit: '',
      columns: of((m) => m.failed),
      format: (v) => String(v),
    },
    {
      key: 'spend', title: 'Spend (prices’ currency)', unit: '',
      columns: of((m) => m.costMicros.map((c) => round(c / 1e6, 4))),
      format: (v) => String(round(v, 4)),
    },
  ];
}

function swatch(colour) {
  const el = h('span', { class: 'chart-swatch', 'aria-hidden': 'true' });
  // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
  el.style.background = colour;
  return el;
}

/** "sim-image: 12 in all, most 3/min; …": what a chart shows, in words. */
export function describe(chart, names) {
  const parts = names.map((name, i) => {
    const values = chart.columns[i + 1].filter((v) => v !== null && v !== undefined);
    if (!values.length || values.every((v) => v === 0)) return `${name}: none`;
    const max = Math.max(...values);
    const last = [...chart.columns[i + 1]].reverse().find((v) => v !== null && v !== undefined);
    return `${name}: highest ${chart.format(max)}, latest ${chart.format(last ?? 0)}`;
  });
  return `${chart.title}. ${parts.join('; ') || 'No model finished a task in this window.'}`;
}

/**
 * Draws (or redraws in place) the four charts of `series` into `box`.
 * @param {HTMLElement} box
 * @param {any} series
 * @param {any} uPlot
 */
export function drawCharts(box, series, uPlot) {
  box.lastSeries = series;
  if (!box.schemeWatch) {
    // Axis colours are painted into the canvas: a change of colour scheme draws the charts anew.
    box.schemeWatch = window.matchMedia('(prefers-color-scheme: dark)');
    box.schemeWatch.addEventListener('change', () => {
      box.dataset.shape = '';
      drawCharts(box, box.lastSeries, uPlot);
    });
  }
  const names = series.models.map((m) => m.name ?? 'no model named');
  const charts = chartData(series);
  const shape = names.join('\n');
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue('--text').trim() || '#1a1d23';
  const grid = style.getPropertyValue('--border').trim() || '#d3d8e0';
  if (box.dataset.shape !== shape || !box.plots) {
    for (const plot of box.plots || []) plot.destroy();
    box.resizer?.disconnect();
    box.dataset.shape = shape;
    // One legend for the four charts, in the page's own markup (colour and name).
    const legend = h('ul', { class: 'chart-legend', 'aria-label': 'Models' }, names.map((name, n) =>
      h('li', {}, swatch(PALETTE[n % PALETTE.length]), h('code', { text: name }))));
    const figures = charts.map((chart) => h('figure', { class: 'chart card', 'data-chart': chart.key },
      h('figcaption', { class: 'chart-title', text: chart.title }),
      h('div', { class: 'chart-canvas', role: 'img' })));
    replace(box, names.length ? [legend, h('div', { class: 'chart-grid' }, figures)]
      : h('p', { class: 'muted', text: 'No model finished a task in this window.' }));
    const width = () => Math.max(240, (figures[0]?.clientWidth || 600) - 24);
    box.plots = names.length ? charts.map((chart, i) => new uPlot({
      width: width(),
      height: 180,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [
        { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56 },
      ],
      series: [{}, ...names.map((name, n) => ({
        label: name,
        stroke: PALETTE[n % PALETTE.length],
        width: 2,
        spanGaps: chart.key === 'latency',
        value: (_u, v) => (v === null || v === undefined ? '—' : chart.format(v)),
        points: { show: true, size: 5 },
      }))],
    }, chart.columns, figures[i].querySelector('.chart-canvas'))) : [];
    // A chart follows its card's width (a phone, a resized window).
    box.resizer = new ResizeObserver(() => {
      for (const plot of box.plots) plot.setSize({ width: width(), height: 180 });
    });
    if (figures[0]) box.resizer.observe(figures[0]);
  } else {
    box.plots.forEach((plot, i) => plot.setData(charts[i].columns));
  }
  box.querySelectorAll('.chart').forEach((figure, i) => {
    figure.querySelector('.chart-canvas').setAttribute('aria-label', describe(charts[i], names));
  });
}
