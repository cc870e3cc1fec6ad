// What the console costs on the wire with 200 jobs of 60,000-character scripts (ten users at
// their quota of 20 active jobs each, held pending by a slow text model with one slot): one
// refresh of the jobs list, and a job page's live updates. Sizes are Chromium's own count of
// the bytes received for each response (CDP Network.loadingFinished encodedDataLength: headers
// and the compressed body), and are printed. Also, with the same crowd: the quota answer as a
// user at the limit sees it, and a step waiting to retry (a model that always fails).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';

import { launchBrowser } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

const LONG = 60000;
const USERS = 10;
const JOBS_PER_USER = 20;
const SCRIPT_CHARS = 60000;

const config = `
[limits]
max_active_jobs_per_user = ${JOBS_PER_USER}

[[models]]
name = "sim-text"
kind = "text"
adapter = "simulated"
default = true
max_concurrency = 1
simulated = { latency_ms = 600000 }

[[models]]
name = "sim-text-watched"
kind = "text"
adapter = "simulated"
simulated = { latency_ms = 4000 }

[[models]]
name = "sim-text-failing"
kind = "text"
adapter = "simulated"
simulated = { latency_ms = 300, failure_rate = 1.0 }

[[models]]
name = "sim-image"
kind = "image"
adapter = "simulated"
default = true
simulated = { latency_ms = 1000 }

[[models]]
name = "sim-video"
kind = "video"
adapter = "simulated"
default = true
simulated = { latency_ms = 1000 }
`;

/** A script of `chars` characters of varied words (compresses like prose, not like "aaaa"). */
function script(seed, chars) {
  const words = ['the', 'keeper', 'lamp', 'storm', 'harbour', 'she', 'climbs', 'rope', 'gull', 'night',
    'INT.', 'EXT.', 'LIGHTHOUSE', 'DAWN', 'waves', 'break', 'against', 'rocks', 'father', 'letter'];
  let state = seed * 2654435761 % 4294967296;
  let text = `SCRIPT ${seed}\n`;
  while (text.length < chars) {
    state = (state * 1103515245 + 12345) % 2147483648;
    text += words[state % words.length] + (state % 7 === 0 ? '.\n' : ' ');
  }
  return text.slice(0, chars);
}

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
/** Responses seen by the page: url, status, encoded bytes once finished. */
const responses = new Map();
/** @type {import('playwright-core').CDPSession} */
let cdp;

async function start(token, body) {
  const response = await fetch(`${server.base}/api/workflows`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return JSON.parse(text).jobId;
}

/** Each user's token. */
const tokens = new Map();

before(async () => {
  server = await startServer({ config });
  for (let user = 1; user <= USERS; user += 1) {
    const token = user === 1 ? server.devToken : server.token(user);
    tokens.set(user, token);
    for (let n = 0; n < JOBS_PER_USER; n += 1) {
      await start(token, {
        workflowType: 'storyboard_generation',
        projectId: 1,
        params: { scriptContent: script(user * 100 + n, SCRIPT_CHARS) },
      });
    }
  }
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(LONG);
  cdp = await browser.context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    const url = new URL(response.url);
    // A 304 has no body to finish loading: its headers are all it costs.
    const bytes = response.status === 304 ? response.encodedDataLength : null;
    const encoding = Object.entries(response.headers).find(([k]) => k.toLowerCase() === 'content-encoding')?.[1] ?? 'identity';
    responses.set(requestId, { requestId, url: url.pathname + url.search, status: response.status, bytes, encoding });
  });
  cdp.on('Network.loadingFinished', ({ requestId, encodedDataLength }) => {
    const seen = responses.get(requestId);
    if (seen) seen.bytes = encodedDataLength;
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function signIn(token) {
  await page.goto(`${server.base}/`);
  await page.getByLabel('Access token (JWT)').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Jobs' }).waitFor();
}

const finished = (pattern) => [...responses.values()].filter((r) => pattern.test(r.url) && r.bytes !== null);
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

test('a user at the quota is told the limit once, and how long to wait', async () => {
  await signIn(server.devToken);
  await page.goto(`${server.base}/#/start?type=storyboard_generation`);
  await page.getByRole('group', { name: 'Params of storyboard_generation' }).waitFor();
  await page.getByRole('button', { name: 'Fill in the example' }).click();
  await page.getByRole('button', { name: 'Start workflow' }).click();
  const alert = page.locator('.form-status [role="alert"]');
  await alert.waitFor();
  assert.equal(await alert.textContent(),
    `Too many active jobs: ${JOBS_PER_USER} of ${JOBS_PER_USER} allowed; wait for one to finish. Try again in 5 s.`);
  await page.getByRole('button', { name: 'Sign out' }).click();
});

test('with 200 jobs of 60,000-character scripts, a jobs list refresh is under 50 KB', async () => {
  await signIn(server.token(99, 'admin'));
  await page.locator('.list-status', { hasText: `25 of ${USERS * JOBS_PER_USER} jobs, newest first` }).waitFor();
  // Two live refreshes after the first load.
  const lists = () => finished(/^\/api\/workflows\?/);
  const deadline = Date.now() + LONG;
  while (lists().length < 3) {
    assert.ok(Date.now() < deadline, `the list did not refresh: ${JSON.stringify([...responses.values()].filter((r) => r.url.startsWith('/api/')))}`);
    await page.waitForTimeout(200);
  }
  const sizes = lists();
  console.log(`jobs list, ${USERS * JOBS_PER_USER} jobs of ${SCRIPT_CHARS} characters, page of 25:`,
    sizes.map((r) => `${r.status} ${kb(r.bytes)}`).join(', '));
  for (const { bytes } of sizes) assert.ok(bytes < 50 * 1024, `a refresh took ${kb(bytes)}`);
  // What the same page weighed as the full list form (every job's input), for comparison.
  const full = await page.evaluate(async () => {
    const token = localStorage.getItem('nosyntask.console.token');
    const response = await fetch('/api/workflows?tasks=false&limit=25', { headers: { Authorization: `Bearer ${token}` } });
    return (await response.text()).length;
  });
  console.log(`the same page with every job's params: ${kb(full)} uncompressed`);
  assert.ok(full > 25 * SCRIPT_CHARS, 'the comparison did not carry the scripts');
  // Pages are numbered out of the total.
  await page.getByRole('link', { name: 'Older →' }).click();
  const pages = Math.ceil((USERS * JOBS_PER_USER) / 25);
  await page.locator('.list-status', { hasText: new RegExp(`^Page 2 of ${pages} · 25 of ${USERS * JOBS_PER_USER} jobs, older than #\\d+$`) }).waitFor();
  await page.getByRole('link', { name: 'Older →' }).click();
  await page.locator('.list-status', { hasText: `Page 3 of ${pages} ·` }).waitFor();
  await page.getByRole('link', { name: '← Newest' }).click();
  await page.locator('.list-status', { hasText: `Page 1 of ${pages} · 25 of` }).waitFor();
});

test("a job page's live updates average under 5 KB", async () => {
  const token = server.token(99, 'admin');
  // The 200 jobs wait for a model with one slot (one of them runs); waiting, they hold no
  // worker slot, so this job on a free model runs at once beside them.
  const auth = { headers: { Authorization: `Bearer ${token}` } };
  const list = await fetch(`${server.base}/api/workflows?status=pending&tasks=false&params=false&limit=200`, auth);
  const pending = (await list.json()).jobs;
  assert.ok(pending.length >= 150, `${pending.length} jobs wait`);
  const one = await (await fetch(`${server.base}/api/workflows/${pending[0].id}`, auth)).json();
  assert.match(one.tasks[0].waiting_reason ?? '', /waiting for model sim-text/, JSON.stringify(one.tasks[0]));
  const id = await start(token, {
    workflowType: 'storyboard_generation',
    projectId: 1,
    params: { scriptContent: script(9999, SCRIPT_CHARS), modelName: 'sim-text-watched' },
  });
  await page.goto(`${server.base}/#/jobs/${id}`);
  await page.locator('.job-status .badge', { hasText: 'completed' }).waitFor();
  await page.locator('.live-indicator[data-state="ended"]').waitFor();
  // A 60,000-character script's input starts folded.
  const input = page.locator('details', { has: page.locator('summary', { hasText: /^JSON, [\d,]+ characters$/ }) });
  assert.equal(await input.getAttribute('open'), null);
  const [stream] = finished(new RegExp(`^/api/workflows/${id}/events`));
  assert.ok(stream, 'the job page followed no event stream');
  // The messages of the stream as the page received them: the first is the whole job (the
  // page's load), the others the live updates.
  const { body } = await cdp.send('Network.getResponseBody', { requestId: stream.requestId });
  const kinds = [...body.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
  assert.equal(kinds[0], 'job');
  assert.ok(kinds.slice(1).every((kind) => kind === 'changes'), kinds.join(' '));
  const updates = kinds.length - 1;
  assert.ok(updates > 0, 'no live update');
  // Where one message ends on the wire is not reported, so the live updates are taken to cost
  // the whole stream (headers too) less the least the first message could have cost: its text
  // compressed as hard as gzip and brotli go. An upper bound of what they cost.
  const first = Buffer.from(body.slice(0, body.indexOf('\n\n', body.indexOf('event: job')) + 2));
  const load = Math.min(
    gzipSync(first, { level: 9 }).length,
    brotliCompressSync(first, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  );
  const live = stream.bytes - load;
  console.log(`job page: ${kinds.length} messages (${kinds.join(' ')}), ${stream.encoding}; stream ${kb(stream.bytes)}`,
    `in all, the first message at least ${kb(load)}; ${updates} live updates at most ${kb(live)}, ${kb(live / updates)} each`);
  assert.ok(live / updates < 5 * 1024, `updates averaged ${kb(live / updates)}`);
});

test('a step waiting to retry says so, with the time to wait, and agrees with its job', async () => {
  const id = await start(server.token(99, 'admin'), {
    workflowType: 'storyboard_generation',
    projectId: 1,
    params: { scriptContent: 'INT. LIGHTHOUSE - NIGHT\nThe lamp turns.', modelName: 'sim-text-failing' },
  });
  await page.goto(`${server.base}/#/jobs/${id}`);
  const step = page.locator('.steps .step').first();
  await step.locator('.step-head .badge', { hasText: 'waiting to retry' }).waitFor();
  const next = step.locator('.facts > div', { hasText: 'Next attempt' }).locator('dd');
  assert.match(await next.textContent(), /^retry in (\d+ ms|\d+\.\d s)$/);
  assert.equal(await step.locator('.facts > div', { hasText: 'Attempts' }).locator('dd').textContent(), '1 of 3');
  const jobProgress = await page.locator('.job-progress .progress-value').textContent();
  const stepProgress = await step.locator('.progress-value').textContent();
  assert.equal(stepProgress, jobProgress);
  // The failed attempt's progress is gone: the next one starts over.
  assert.equal(stepProgress, '0 %');
  // The failed attempt is in the step's history, with its error.
  assert.match(await step.locator('table.attempts tr.attempt-failed').first().innerText(), /simulated provider failure/);
});
