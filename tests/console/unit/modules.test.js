// Unit tests of the console's pure modules (no DOM): the SSE parser, token claims, media
// discovery, and the params form model.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SseParser } from '../../../bins/server/console/sse.js';
import { applyChanges, tokenClaims } from '../../../bins/server/console/api.js';
import { relative } from '../../../bins/server/console/when.js';
import { runNumbers, runs, spans } from '../../../bins/server/console/timeline.js';
import { chartData, describe } from '../../../bins/server/console/charts.js';
import { records, texts } from '../../../bins/server/console/results.js';
import { findMedia, humanize, mediaKind, safeUrl } from '../../../bins/server/console/media.js';
import { costText, usageByModel, usageText } from '../../../bins/server/console/usage.js';
import { fieldsNamed, fieldsOf, initialText, parseValue } from '../../../bins/server/console/params.js';

test('SSE: events split across chunks, comments, retry, multi-line data, CRLF', () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push('retry: 1000\n\n: keep-alive\n\nevent: jo'), []);
  assert.equal(parser.retry, 1000);
  assert.deepEqual(parser.push('b\ndata: {"id":1,\ndata: "x":2}\n'), []);
  assert.deepEqual(parser.push('\n'), [{ event: 'job', data: '{"id":1,\n"x":2}', id: null }]);
  assert.deepEqual(parser.push('data:plain\r'), []);
  assert.deepEqual(parser.push('\n\r\n'), [{ event: 'message', data: 'plain', id: null }]);
  assert.deepEqual(parser.push('id: 7\nevent: job\ndata: 1\r\rdata: 2\n\n'), [
    { event: 'job', data: '1', id: '7' },
    { event: 'message', data: '2', id: '7' },
  ]);
});

test('token claims: userId or numeric sub, role, exp; garbage is null', () => {
  const encode = (claims) => `x.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.y`;
  assert.deepEqual(tokenClaims(encode({ userId: 4, role: 'admin', exp: 10 })), { userId: 4, role: 'admin', exp: 10 });
  assert.deepEqual(tokenClaims(encode({ sub: '9', exp: 5 })), { userId: 9, role: 'user', exp: 5 });
  assert.deepEqual(tokenClaims(encode({ name: '张三 ✓' })), { userId: null, role: 'user', exp: null });
  assert.equal(tokenClaims('not-a-token'), null);
  assert.equal(tokenClaims('a.%%%.c'), null);
});

test('media: safe URLs only, kinds by extension then by field name, one entry per URL', () => {
  assert.equal(safeUrl('/files/a.png'), '/files/a.png');
  assert.equal(safeUrl('https://cdn.example/x.mp4'), 'https://cdn.example/x.mp4');
  for (const bad of ['javascript:alert(1)', '//evil.example/x.png', 'data:image/png;base64,AA', '/\\evil', 42]) {
    assert.equal(safeUrl(bad), null, String(bad));
  }
  assert.equal(mediaKind('/files/a.gif', 'videoUrl'), 'image');
  assert.equal(mediaKind('/files/a.webm?x=1', 'url'), 'video');
  assert.equal(mediaKind('https://x/y', 'videoUrl'), 'video');
  assert.equal(mediaKind('https://x/y', 'startFrame'), 'image');
  assert.equal(mediaKind('https://x/y', 'docs'), null);
  assert.equal(humanize('frontViewUrl'), 'front view');
  assert.equal(humanize('image_url'), 'image');
  const found = findMedia({
    backViewUrl: '/files/b.png',
    frontViewUrl: '/files/f.png',
    imageUrl: '/files/f.png',
    sideViewUrl: '/files/s.png',
    videoUrl: '/files/v.gif',
    clip: 'https://cdn.example/c.mp4',
    link: 'https://example.com/page',
    prompts: { front: 'a /files/nothing.txt' },
    shots: [{ startFrame: '/files/s1.jpg' }],
    evil: 'javascript:alert(1)',
  });
  assert.deepEqual(found.map((m) => [m.url, m.kind, m.keys]), [
    ['/files/f.png', 'image', ['frontViewUrl', 'imageUrl']],
    ['/files/s1.jpg', 'image', ['startFrame']],
    ['/files/s.png', 'image', ['sideViewUrl']],
    ['/files/v.gif', 'image', ['videoUrl']],
    ['https://cdn.example/c.mp4', 'video', ['clip']],
    ['/files/b.png', 'image', ['backViewUrl']],
  ]);
});

test('params: fields in a useful order with controls, defaults and groups', () => {
  const { fields, anyOf } = fieldsOf({
    type: 'object',
    required: ['prompt'],
    anyOf: [{ required: ['scriptContent'] }, { required: ['scenes'] }],
    properties: {
      duration: { type: 'integer', default: 5, minimum: 1, maximum: 10 },
      kind: { type: 'string', enum: ['image', 'video'], default: 'image' },
      modelName: { type: 'string', maxLength: 200, description: 'Name of a configured video model' },
      prompt: { type: 'string', maxLength: 8000 },
      scenes: { type: 'array' },
      scriptContent: { type: 'string', maxLength: 200000 },
      title: { type: 'string', maxLength: 200 },
      loud: { type: 'boolean' },
    },
  });
  assert.deepEqual(fields.map((f) => [f.name, f.control]), [
    ['prompt', 'textarea'],
    ['scenes', 'json'],
    ['scriptContent', 'textarea'],
    ['kind', 'select'],
    ['title', 'input'],
    ['duration', 'input'],
    ['loud', 'select'],
    ['modelName', 'input'],
  ]);
  assert.deepEqual(anyOf, [['scriptContent', 'scenes']]);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));
  assert.equal(byName.prompt.required, true);
  assert.equal(byName.scenes.oneOf, true);
  assert.equal(byName.modelName.modelKind, 'video');
  assert.equal(initialText(byName.duration), '5');
  assert.deepEqual(parseValue(byName.duration, '7'), { value: 7 });
  assert.deepEqual(parseValue(byName.duration, '1.5'), { value: 1.5 });
  assert.deepEqual(parseValue(byName.duration, ''), {});
  assert.match(parseValue(byName.duration, 'ten').error, /^duration: must be a number/);
  assert.deepEqual(parseValue(byName.scenes, '[{"a":1}]'), { value: [{ a: 1 }] });
  assert.match(parseValue(byName.scenes, '[oops').error, /^scenes: not valid JSON/);
  assert.deepEqual(parseValue(byName.loud, 'false'), { value: false });
  assert.deepEqual(parseValue(byName.prompt, '  a cat  '), { value: '  a cat  ' });
  const names = fields.map((f) => f.name);
  assert.deepEqual(fieldsNamed('invalid params: duration: must be between 1 and 10', names), ['duration']);
  assert.deepEqual(fieldsNamed('invalid params: scriptContent or scenes: one is required', names), ['scenes', 'scriptContent']);
  assert.deepEqual(fieldsNamed('projectId must be an integer', [...names, 'projectId']), []);
});

test('usage: tokens, images, video seconds and cost in one line; each model\'s part', () => {
  const usage = {
    prompt_tokens: 1200, completion_tokens: 800, images: 1, video_seconds: 5, cost_micros: 508800,
    models: {
      'DeepSeek Chat': { prompt_tokens: 1200, completion_tokens: 800, cost_micros: 8800 },
      'Wan i2v': { video_seconds: 5, cost_micros: 500000 },
      Empty: {},
    },
  };
  assert.equal(usageText(usage), '1,200 prompt + 800 completion tokens · 1 image · 5 s of video · cost 0.5088');
  assert.deepEqual(usageByModel(usage), [
    ['DeepSeek Chat', '1,200 prompt + 800 completion tokens · cost 0.0088'],
    ['Wan i2v', '5 s of video · cost 0.5'],
  ]);
  assert.equal(usageText({ images: 3 }), '3 images');
  assert.equal(usageText({ models: {} }), null);
  assert.equal(usageText(null), null);
  assert.equal(costText(0), '0');
  assert.equal(costText(12_000_000), '12');
  assert.equal(costText(1), '0.000001');
});

test('a changes event merges into the job it follows', () => {
  const job = { id: 7, progress: 10, input_params: { scriptContent: 'long' }, tasks: [
    { id: 1, progress: 100, result_data: { a: 1 } },
    { id: 2, progress: 0, waiting_reason: 'busy' },
  ] };
  const next = applyChanges(job, { id: 7, progress: 40, tasks: [{ id: 2, progress: 30, waiting_reason: null }, { id: 3, progress: 0 }] });
  assert.deepEqual(next, { id: 7, progress: 40, input_params: { scriptContent: 'long' }, tasks: [
    { id: 1, progress: 100, result_data: { a: 1 } },
    { id: 2, progress: 30, waiting_reason: null },
    { id: 3, progress: 0 },
  ] });
  // The job it was made from is left as it was.
  assert.equal(job.progress, 10);
  assert.equal(job.tasks.length, 2);
});

test('relative times use the largest unit, past and future', () => {
  const now = Date.parse('2025-01-31T08:00:00Z');
  assert.equal(relative('2025-01-31T07:59:58Z', now), 'just now');
  assert.equal(relative('2025-01-31T07:59:30Z', now), '30 s ago');
  assert.equal(relative('2025-01-31T07:58:00Z', now), '2 min ago');
  assert.equal(relative('2025-01-31T05:00:00Z', now), '3 h ago');
  assert.equal(relative('2025-01-29T08:00:00Z', now), '2 d ago');
  assert.equal(relative('2025-01-31T08:00:12Z', now), 'in 12 s');
  assert.equal(relative('not a time', now), null);
});

test("a step's timeline spans are its finished attempts, then the running one up to now", () => {
  const task = {
    status: 'running', attempts: 2, attempt_started_at: '2025-01-31T08:00:10Z',
    attempts_history: [
      { attempt: 1, started_at: '2025-01-31T08:00:00Z', ended_at: '2025-01-31T08:00:04Z', outcome: 'failed', error_message: 'boom' },
      // Parked before it started: nothing to draw.
      { attempt: 1, started_at: null, ended_at: '2025-01-31T08:00:05Z', outcome: 'handed_back', error_message: null },
    ],
  };
  const now = Date.parse('2025-01-31T08:00:20Z');
  assert.deepEqual(spans(task, now), [
    { from: Date.parse('2025-01-31T08:00:00Z'), to: Date.parse('2025-01-31T08:00:04Z'), outcome: 'failed', resumed: false, label: 'attempt 1 failed: boom' },
    { from: Date.parse('2025-01-31T08:00:10Z'), to: now, outcome: 'running', resumed: false, label: 'attempt 2 running' },
  ]);
  assert.deepEqual(spans({ status: 'pending', attempts_history: [] }, now), []);
  assert.equal(runs(task), 2);
});

test('runs are numbered across a resume, which starts the retry quota again', () => {
  // Cancelled in its first run, resumed (attempts back to 0), cancelled again, resumed, running.
  const task = {
    status: 'running', attempts: 1, attempt_started_at: '2025-01-31T08:01:00Z',
    attempts_history: [
      { attempt: 1, started_at: '2025-01-31T08:00:00Z', ended_at: '2025-01-31T08:00:04Z', outcome: 'cancelled', error_message: null },
      { attempt: 1, started_at: '2025-01-31T08:00:30Z', ended_at: '2025-01-31T08:00:34Z', outcome: 'cancelled', error_message: null },
    ],
  };
  assert.deepEqual(runNumbers(task.attempts_history), [1, 2]);
  assert.equal(runs(task), 3);
  assert.deepEqual(spans(task, Date.parse('2025-01-31T08:01:05Z')).map((s) => s.label),
    ['attempt 1 cancelled', 'resumed, attempt 2 cancelled', 'resumed, attempt 3 running']);
  // A retry goes on counting: no resume.
  const retried = {
    status: 'running', attempts: 2, attempt_started_at: '2025-01-31T08:00:10Z',
    attempts_history: [{ attempt: 1, started_at: '2025-01-31T08:00:00Z', ended_at: '2025-01-31T08:00:04Z', outcome: 'failed', error_message: 'HTTP 503' }],
  };
  assert.deepEqual(spans(retried, Date.parse('2025-01-31T08:00:20Z')).map((s) => s.resumed), [false, false]);
});

test('a result shows its lists of records as tables and its texts of several lines', () => {
  const result = {
    count: 2,
    scenes: [{ order: 1, description: 'dawn', camera: { move: 'pan' } }, { order: 2, description: 'dusk', mood: 'calm' }],
    tags: ['a', 'b'],
    script: 'INT. ROOM\nA man sits.',
    title: 'one line',
  };
  assert.deepEqual(records(result), [['scenes', ['order', 'description', 'mood'], result.scenes]]);
  assert.deepEqual(texts(result), [['script', 'INT. ROOM\nA man sits.']]);
  assert.deepEqual(records([1, 2]), []);
  assert.deepEqual(records(null), []);
});

test('charts: per-minute rates, seconds, failures and spend per model, said in words', () => {
  const series = {
    bucketSecs: 120,
    buckets: ['2025-01-31T08:00:00.000Z', '2025-01-31T08:02:00.000Z'],
    models: [
      { name: 'sim-image', completed: [4, 0], failed: [0, 1], meanMs: [1500, null], costMicros: [40000, 0] },
      { name: null, completed: [0, 2], failed: [0, 0], meanMs: [null, 20], costMicros: [0, 0] },
    ],
  };
  const [throughput, latency, failures, spend] = chartData(series);
  const x = [Date.parse('2025-01-31T08:00:00Z') / 1000, Date.parse('2025-01-31T08:02:00Z') / 1000];
  assert.deepEqual(throughput.columns, [x, [2, 0], [0, 1]]);
  assert.deepEqual(latency.columns, [x, [1.5, null], [null, 0.02]]);
  assert.deepEqual(failures.columns, [x, [0, 1], [0, 0]]);
  assert.deepEqual(spend.columns, [x, [0.04, 0], [0, 0]]);
  assert.equal(describe(throughput, ['sim-image', 'no model named']),
    'Tasks completed per minute. sim-image: highest 2/min, latest 0/min; no model named: highest 1/min, latest 1/min');
  assert.equal(describe(failures, ['sim-image', 'other']), 'Tasks failed. sim-image: highest 1, latest 1; other: none');
  assert.equal(describe(chartData({ ...series, models: [] })[0], []), 'Tasks completed per minute. No model finished a task in this window.');
});
