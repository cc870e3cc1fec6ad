// Acceptance test of the web console in headless Chromium against the real server binary:
// sign in with the development token, start character_views_generation from the form (after a
// 422 that names the field), watch its progress reach 100 % live and its three images load,
// cancel a second running job, see another user's token show none of these jobs (and run the
// sample script as that user), and read the admin statistics. Screenshots go to test-artifacts/console/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

import { accessibilityViolations } from '../lib/axe.js';
import { launchBrowser } from '../lib/browser.js';
import { REPO, slowModels, startServer } from '../lib/server.js';

const SHOTS = join(REPO, 'test-artifacts', 'console');
const LONG = 60000;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
/** A webhook receiver on loopback: it accepts every delivery and counts them. */
let receiver;
let received = 0;
const problems = [];
const foreignRequests = [];
const failedResponses = [];

before(async () => {
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => { received += 1; res.writeHead(204).end(); });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `\n[[webhooks]]\nname = "app"\nurl = "http://127.0.0.1:${receiver.address().port}/hooks"\n`
    + 'secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n';
  server = await startServer({ config: slowModels() + hook });
  browser = await launchBrowser();
  page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(LONG);
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Error answers are checked one by one below; Chromium also logs each as an error.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      failedResponses.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
    }
  });
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(server.base) && !url.startsWith('data:')) foreignRequests.push(url);
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.close();
});

const shot = (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

/**
 * Screenshots the page on a desktop and a phone, light and dark, and checks each against WCAG
 * 2.1 A/AA with axe-core; on the phone nothing may be wider than the screen.
 */
async function shotAndAudit(name) {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(viewport);
    if (size === 'phone') {
      const { width, wide } = await page.evaluate(() => ({
        width: document.documentElement.scrollWidth,
        // What sticks out, to say where to look.
        wide: [...document.querySelectorAll('body *')]
          .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
          .slice(0, 5)
          .map((el) => `${el.tagName.toLowerCase()}.${el.className} (${Math.round(el.getBoundingClientRect().right)} px)`),
      }));
      assert.ok(width <= PHONE.width, `${name} is ${width} px wide on a ${PHONE.width} px phone: ${wide.join(', ')}`);
    }
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await shot(`${name}-${size}-${scheme}`);
      const violations = await accessibilityViolations(page);
      assert.deepEqual(violations, [], `accessibility violations on ${name} (${size}, ${scheme}):\n${violations.join('\n')}`);
    }
  }
  await page.setViewportSize(DESKTOP);
  await page.emulateMedia({ colorScheme: 'light' });
}

async function signIn(token) {
  await page.getByLabel('Access token (JWT)').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Jobs' }).waitFor();
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sign in to the nosyntask console' }).waitFor();
}

/** The job id of the job page shown. */
async function shownJobId() {
  await page.waitForURL(/#\/jobs\/\d+$/);
  return Number(new URL(page.url()).hash.replace('#/jobs/', ''));
}

const jobStatus = () => page.locator('.job-status .badge').textContent();

/** Rows of the jobs table (without the "no jobs" row). */
async function listedJobIds() {
  await page.locator('.list-status').filter({ hasText: /\d+ jobs?/ }).waitFor();
  const links = await page.locator('table.jobs tbody a[href^="#/jobs/"]').allTextContents();
  return links.map((text) => Number(text.replace('#', '')));
}

let firstJob;
let secondJob;

test('sign in with the development token', async () => {
  await page.goto(`${server.base}/`);
  await page.waitForURL(/#\/signin$/);
  await page.getByRole('heading', { level: 1, name: 'Sign in to the nosyntask console' }).waitFor();
  await shotAndAudit('01-sign-in');
  await signIn(server.devToken);
  assert.match(await page.locator('#whoami').textContent(), /User 1 · user/);
  // Admin-only navigation stays hidden for a user token.
  assert.equal(await page.getByRole('link', { name: 'Engine' }).count(), 0);
  await shot('02-jobs-empty');
});

test('the start form shows the 422 message naming the field', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Start a workflow' }).click();
  await page.getByRole('heading', { level: 1, name: 'Start a workflow' }).waitFor();
  await page.getByLabel('Workflow', { exact: true }).selectOption('character_views_generation');
  await page.getByRole('group', { name: 'Params of character_views_generation' }).waitFor();
  // Defaults from the schema are filled in.
  assert.equal(await page.locator('#param-width').inputValue(), '512');
  assert.equal(await page.locator('#param-height').inputValue(), '768');
  await page.getByRole('button', { name: 'Fill in the example' }).click();
  assert.equal(await page.locator('#param-characterName').inputValue(), 'Lin Mei');
  await page.locator('#param-width').fill('5');
  await page.getByRole('button', { name: 'Start workflow' }).click();
  const alert = page.locator('.form-status [role="alert"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /width: must be between 64 and 4096/);
  const width = page.locator('#param-width');
  assert.equal(await width.getAttribute('aria-invalid'), 'true');
  // The message also sits under the field, tied to it for screen readers, which has focus.
  assert.equal(await page.locator('#param-width-error').textContent(), 'width: must be between 64 and 4096');
  assert.match(await width.getAttribute('aria-describedby'), /param-width-error/);
  assert.equal(await width.evaluate((el) => el === document.activeElement), true);
  await shotAndAudit('03-start-invalid-params');
});

test('a character_views_generation job runs live to 100 % and shows its three images', async () => {
  await page.locator('#param-width').fill('512');
  await page.getByRole('button', { name: 'Start workflow' }).click();
  firstJob = await shownJobId();
  await page.getByRole('heading', { level: 1, name: `Job #${firstJob}` }).waitFor();
  // One notice says the job started; it goes away by itself (checked once the job is done).
  const started = page.locator('.flash', { hasText: `Started job ${firstJob}.` });
  assert.equal(await started.count(), 1);
  assert.equal(await page.locator('.flash').count(), 1);
  // Progress moves while the job runs (three slow images), seen through the event stream.
  const seen = new Set();
  let midShot = false;
  const deadline = Date.now() + LONG;
  for (;;) {
    const text = (await page.locator('.job-progress .progress-value').textContent()) ?? '';
    const value = Number(text.replace(/[^\d]/g, ''));
    seen.add(value);
    if (!midShot && value > 0 && value < 100) {
      await page.locator('.live-indicator[data-state="live"]').waitFor();
      await shot('04-job-running');
      midShot = true;
    }
    if (value === 100) break;
    assert.ok(Date.now() < deadline, `progress stuck at ${text}`);
    await page.waitForTimeout(100);
  }
  assert.ok([...seen].some((v) => v > 0 && v < 100), `no intermediate progress among ${[...seen]}`);
  await page.locator('.job-status .badge', { hasText: 'completed' }).waitFor();
  await page.locator('.live-indicator[data-state="ended"]').waitFor();
  assert.equal(await page.locator('.steps .step .badge').first().textContent(), 'completed');
  await started.waitFor({ state: 'detached' });
  // The params named no model: the kind's default the step ran with is named.
  const model = page.locator('.steps .step .facts > div', { hasText: 'Model' }).locator('dd');
  assert.equal(await model.textContent(), 'sim-image');
  // Times read relative, with the local date and time on hover.
  const created = page.locator('.card .facts > div', { hasText: 'Created' }).locator('time');
  assert.match(await created.textContent(), /^(just now|\d+ s ago)$/);
  assert.match(await created.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);

  const images = page.locator('.gallery img');
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('.gallery img')];
    return imgs.length === 3 && imgs.every((img) => img.complete && img.naturalWidth > 0);
  }, undefined, { timeout: LONG });
  const sources = await images.evaluateAll((imgs) => imgs.map((img) => ({ src: img.getAttribute('src'), alt: img.alt, w: img.naturalWidth })));
  assert.equal(new Set(sources.map((s) => s.src)).size, 3);
  for (const { src, w } of sources) {
    assert.match(src, /^http:\/\/127\.0\.0\.1:\d+\/files\/.+\.png$/);
    assert.ok(w > 0);
  }
  assert.deepEqual(sources.map((s) => s.alt), ['front view', 'side view', 'back view']);
  // The result JSON is shown pretty-printed, and copies with a click.
  const result = await page.locator('.steps pre.json').first().textContent();
  assert.match(result, /"frontViewUrl": "http:\/\/127\.0\.0\.1:\d+\/files\//);
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });
  await page.locator('.steps .json-box').first().getByRole('button', { name: 'Copy' }).click();
  await page.locator('.steps .json-box').first().getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), result);
  // The job's input is collapsible (open while short).
  const input = page.locator('details', { has: page.locator('summary', { hasText: /^JSON, \d+ characters$/ }) });
  assert.equal(await input.getAttribute('open'), '');
  // Finished: cancel is off; consume is on.
  assert.equal(await page.getByRole('button', { name: 'Cancel job' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Mark consumed' }).isEnabled(), true);
  await shotAndAudit('05-job-completed');
  await page.getByRole('button', { name: 'Mark consumed' }).click();
  await page.locator('.action-status', { hasText: `Job ${firstJob} marked consumed.` }).waitFor();
  await page.locator('.job-status', { hasText: 'consumed' }).waitFor();
});

test('a second running job is cancelled from its page, resumed and cancelled again', async () => {
  await page.goto(`${server.base}/#/start?type=scene_video`);
  await page.getByRole('group', { name: 'Params of scene_video' }).waitFor();
  await page.getByRole('button', { name: 'Fill in the example' }).click();
  await page.getByRole('button', { name: 'Start workflow' }).click();
  secondJob = await shownJobId();
  assert.notEqual(secondJob, firstJob);
  await page.locator('.job-status .badge', { hasText: 'running' }).waitFor();
  await page.locator('.live-indicator[data-state="live"]').waitFor();
  await shot('06-job-running-video');
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.locator('.action-status', { hasText: `Job ${secondJob} cancelled.` }).waitFor();
  await page.locator('.job-status .badge', { hasText: 'cancelled' }).waitFor();
  await page.locator('.steps .step .step-head .badge', { hasText: 'cancelled' }).waitFor();
  assert.equal(await page.getByRole('button', { name: 'Cancel job' }).isDisabled(), true);
  assert.equal(await page.getByRole('button', { name: 'Resume' }).isEnabled(), true);
  await shotAndAudit('07-job-cancelled');
  // Resume follows the job live again; cancel it once more.
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.locator('.action-status', { hasText: `Job ${secondJob} resumes from its first unfinished step.` }).waitFor();
  await page.locator('.job-status .badge', { hasText: 'running' }).waitFor();
  await page.locator('.live-indicator[data-state="live"]').waitFor();
  assert.equal(await page.getByRole('button', { name: 'Resume' }).isDisabled(), true);
  // The resume kept the cancelled attempt: the running step shows it in its history, open.
  const cancelledAttempts = page.locator('.steps .step table.attempts tr.attempt-cancelled');
  await cancelledAttempts.first().waitFor();
  assert.match(await cancelledAttempts.first().innerText(), /cancelled/);
  await page.getByRole('button', { name: 'Cancel job' }).click();
  await page.locator('.job-status .badge', { hasText: 'cancelled' }).waitFor();
  await cancelledAttempts.nth(1).waitFor();
  // Runs are numbered across the resume (its retry quota starts again, the count of runs does not).
  assert.deepEqual(await cancelledAttempts.locator('td:first-child').allTextContents(), ['1', '2']);
  const stepFacts = page.locator('.steps .step').first().locator('.facts > div', { hasText: 'Attempts' }).locator('dd');
  assert.match(await stepFacts.textContent(), /^1 of \d+ · 2 runs in all$/);
  // "Ran for" adds up the attempts; the time the job sat cancelled is not in it.
  const summary = page.locator('.card .facts').first();
  const fact = (name) => summary.locator('> div', { has: page.locator('dt', { hasText: new RegExp(`^${name}$`) }) }).locator('dd').textContent();
  const millis = (text) => {
    const m = /^([\d.]+) (ms|s)$/.exec(text);
    assert.ok(m, text);
    return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  };
  assert.ok(millis(await fact('Ran for')) < millis(await fact('Since first start')),
    `${await fact('Ran for')} vs ${await fact('Since first start')}`);
  // The timeline puts both cancelled attempts of the step on the job's time axis.
  const track = page.locator('.timeline .tl-track').first();
  assert.equal(await track.locator('.tl-seg.tl-cancelled').count(), 2);
  assert.equal(await track.locator('.tl-mark').count(), 1);
  assert.match(await track.getAttribute('aria-label'), /^Step 1: attempt 1 cancelled.*; resumed, attempt 2 cancelled/);
  await shotAndAudit('07b-job-attempt-history');
});

test('the jobs list shows both jobs, newest first, and filters by status', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Jobs' }).click();
  await page.getByRole('heading', { level: 1, name: 'Jobs' }).waitFor();
  assert.deepEqual(await listedJobIds(), [secondJob, firstJob]);
  await page.getByRole('checkbox', { name: 'cancelled' }).check();
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/status=cancelled/);
  await page.locator('.list-status', { hasText: '1 job' }).waitFor();
  assert.deepEqual(await listedJobIds(), [secondJob]);
  // Each status shows how many jobs it would list, whichever is checked.
  const countOf = (status) => page.locator('.statuses label', { hasText: status }).locator('.count').textContent();
  assert.equal(await countOf('cancelled'), ' (1)');
  assert.equal(await countOf('completed'), ' (1)');
  assert.equal(await countOf('failed'), ' (0)');
  await page.getByRole('link', { name: 'Reset' }).click();
  await page.locator('.list-status', { hasText: '2 jobs' }).waitFor();
  // Search in the params: a word of the first job's appearance, in another case.
  await page.getByRole('searchbox', { name: 'Params contain' }).fill('YELLOW RAINCOAT');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/q=YELLOW/);
  await page.locator('.list-status', { hasText: '1 job' }).waitFor();
  assert.deepEqual(await listedJobIds(), [firstJob]);
  await page.getByRole('searchbox', { name: 'Params contain' }).fill('no such words anywhere');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('.empty', { hasText: 'No jobs match these filters.' }).waitFor();
  await page.getByRole('link', { name: 'Reset' }).click();
  await page.locator('.list-status', { hasText: '2 jobs' }).waitFor();
  await shotAndAudit('08-jobs-list');
  // On a phone the jobs table fits the screen: not even its own scroll box scrolls.
  await page.setViewportSize(PHONE);
  const fit = await page.locator('table.jobs').evaluate((table) => ({
    table: table.getBoundingClientRect().width,
    hidden: table.parentElement.scrollWidth - table.parentElement.clientWidth,
  }));
  await page.setViewportSize(DESKTOP);
  assert.ok(fit.table <= PHONE.width && fit.hidden === 0, `jobs table on a phone: ${JSON.stringify(fit)}`);
  // A job opens by its id.
  await page.getByLabel('Job id').fill(String(firstJob));
  await page.getByRole('button', { name: 'Open job' }).click();
  await page.getByRole('heading', { level: 1, name: `Job #${firstJob}` }).waitFor();
  await page.goBack();
  await page.getByRole('heading', { level: 1, name: 'Jobs' }).waitFor();

  // Several jobs at once: resuming both resumes the cancelled one and says why not the other.
  await page.getByRole('checkbox', { name: `Select job #${secondJob}` }).check();
  await page.getByRole('checkbox', { name: `Select job #${firstJob}` }).check();
  await page.locator('.bulk-count', { hasText: '2 selected' }).waitFor();
  await page.getByRole('button', { name: 'Resume selected' }).click();
  const outcome = page.locator('.bulk-outcome [role="alert"]');
  await outcome.waitFor();
  assert.match(await outcome.textContent(), new RegExp(`^Resumed 1 of 2 jobs\\. Not done: #${firstJob}: `));
  await page.locator('table.jobs tr', { hasText: `#${secondJob}` }).locator('.badge', { hasText: 'running' }).waitFor();
  // Cancelling asks first; keeping them changes nothing.
  await page.getByRole('checkbox', { name: `Select job #${secondJob}` }).check();
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  const confirm = page.getByRole('dialog', { name: 'Cancel the selected jobs?' });
  await confirm.waitFor();
  assert.match(await confirm.textContent(), /1 job will stop\. .*still billed/);
  await shotAndAudit('08b-jobs-bulk-cancel-confirm');
  await confirm.getByRole('button', { name: 'Keep them running' }).click();
  await confirm.waitFor({ state: 'hidden' });
  assert.equal(await page.locator('table.jobs tr', { hasText: `#${secondJob}` }).locator('.badge').textContent(), 'running');
  await page.getByRole('button', { name: 'Cancel selected' }).click();
  await confirm.getByRole('button', { name: 'Cancel the jobs' }).click();
  await page.locator('.bulk-outcome [role="status"]', { hasText: 'Cancelled 1 of 1 job.' }).waitFor();
  await page.locator('table.jobs tr', { hasText: `#${secondJob}` }).locator('.badge', { hasText: 'cancelled' }).waitFor();
});

test("another user's token shows none of the first user's jobs", async () => {
  await signOut();
  await signIn(server.token(2));
  assert.match(await page.locator('#whoami').textContent(), /User 2 · user/);
  assert.deepEqual(await listedJobIds(), []);
  // No filters: not "no jobs match", but nothing yet, and how to start.
  await page.locator('td.empty', { hasText: 'No jobs yet.' }).getByRole('link', { name: 'Start a workflow' }).waitFor();
  await shotAndAudit('09-other-user-jobs');
  await page.goto(`${server.base}/#/jobs/${firstJob}`);
  await page.getByRole('heading', { level: 1, name: `Job #${firstJob} not found` }).waitFor();
  await shot('10-other-user-job-not-found');
});

let thirdJob;

test('the sample script runs storyboard generation for another user', async () => {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Start a workflow' }).click();
  await page.getByLabel('Workflow', { exact: true }).selectOption('storyboard_generation');
  await page.getByRole('group', { name: 'Params of storyboard_generation' }).waitFor();
  await page.getByRole('button', { name: 'Fill in the example' }).click();
  assert.match(await page.locator('#param-scriptContent').inputValue(), /^THE LIGHTHOUSE KEEPER'S DAUGHTER/);
  await page.getByRole('button', { name: 'Start workflow' }).click();
  thirdJob = await shownJobId();
  await page.locator('.job-status .badge', { hasText: 'completed' }).waitFor();
  const result = JSON.parse(await page.locator('.steps pre.json').first().textContent());
  assert.ok(Array.isArray(result.scenes) && result.scenes.length > 0, JSON.stringify(result));
  assert.equal(result.count, result.scenes.length);
  // The shots are also a table, one row per shot.
  const shots = page.getByRole('table', { name: `Scenes of step 1 (${result.scenes.length})` });
  assert.equal(await shots.locator('tbody tr').count(), result.scenes.length);
  const headers = await shots.locator('thead th').allTextContents();
  const description = headers.indexOf('Description');
  assert.ok(description >= 0, headers.join(', '));
  assert.equal(await shots.locator('tbody tr').first().locator('td').nth(description).textContent(), result.scenes[0].description);
  await shot('11-storyboard-completed');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Jobs' }).click();
  assert.deepEqual(await listedJobIds(), [thirdJob]);
});

test('an admin sees every job and the engine statistics', async () => {
  await page.goto(`${server.base}/#/jobs`);
  await signOut();
  await signIn(server.token(99, 'admin'));
  assert.deepEqual(await listedJobIds(), [thirdJob, secondJob, firstJob]);
  // Admins see whose job it is.
  await page.getByRole('columnheader', { name: 'User' }).waitFor();
  await page.getByRole('link', { name: 'Engine' }).click();
  await page.getByRole('heading', { level: 1, name: 'Engine' }).waitFor();
  const perStep = page.getByRole('table', { name: /Tasks per step type/ });
  await perStep.waitFor();
  const views = perStep.getByRole('row', { name: /character_views/ });
  // Queued, running, completed, failed, cancelled, retries.
  assert.deepEqual(await views.locator('td').allTextContents(), ['0', '0', '1', '0', '0', '0']);
  const video = perStep.getByRole('row', { name: /scene_video/ });
  assert.deepEqual(await video.locator('td').allTextContents(), ['0', '0', '0', '0', '1', '0']);
  const storyboard = perStep.getByRole('row', { name: /storyboard/ });
  assert.deepEqual(await storyboard.locator('td').allTextContents(), ['0', '0', '1', '0', '0', '0']);
  await page.getByRole('table', { name: /Tasks per model/ }).waitFor();
  // Every configured model with its limits (a free simulated one has none); none is paused.
  const models = page.getByRole('table', { name: /Models: limits/ });
  const cells = (name) => models.getByRole('row', { name }).locator('td').allTextContents();
  // Kind, running, at once, per minute, paused until.
  assert.deepEqual(await cells(/sim-image-limited/), ['image', '0', '2', '30', 'not paused']);
  assert.deepEqual(await cells(/^sim-video/), ['video', '—', 'no limit', '—', 'not paused']);
  // Per-model charts of the hour, drawn by the vendored chart library, each also said in words.
  const charts = page.locator('.charts figure.chart');
  await charts.nth(3).locator('canvas').waitFor();
  assert.deepEqual(await charts.locator('figcaption').allTextContents(),
    ['Tasks completed per minute', 'Mean run time of a completed task', 'Tasks failed', 'Spend (prices’ currency)']);
  const said = await charts.first().locator('.chart-canvas').getAttribute('aria-label');
  assert.match(said, /^Tasks completed per minute\. .*sim-image: highest [\d.]+\/min/);
  assert.match(await charts.nth(2).locator('.chart-canvas').getAttribute('aria-label'), /sim-image: none/);
  // One legend names the models the charts draw.
  assert.deepEqual((await page.locator('.chart-legend li').allTextContents()).sort(), ['sim-image', 'sim-text']);
  // The webhook delivery log: the jobs' events, delivered to the receiver; one is redelivered.
  const log = page.getByRole('table', { name: 'Webhook deliveries, newest first' });
  await log.getByRole('row', { name: /job\.completed/ }).first().waitFor();
  const delivered = log.getByRole('row', { name: /delivered/ });
  assert.ok(await delivered.count() > 0, 'some deliveries are delivered');
  const before = received;
  const redelivered = page.waitForResponse((r) => /\/redeliver$/.test(new URL(r.url()).pathname));
  await delivered.first().getByRole('button', { name: /^Redeliver delivery/ }).click();
  assert.equal((await redelivered).status(), 200);
  const deadline = Date.now() + 20000;
  while (received <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(received > before, 'the redelivery reached the receiver');
  await shotAndAudit('12-admin-engine');
});

test('the page made no request elsewhere, logged no error, and met only the expected error answers', () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(problems, []);
  assert.deepEqual(failedResponses, [
    '422 POST /api/workflows',
    // A completed job cannot be resumed: the bulk resume says so.
    `409 POST /api/workflows/${firstJob}/resume`,
    `404 GET /api/workflows/${firstJob}/events`,
  ]);
});
