// Signed media in headless Chromium (issue 14, acceptance 3): a server in `urls = "signed"` mode
// generates an image (simulated model) and a video (a Replicate stand-in that delivers a WebM
// clip recorded by Chromium's own MediaRecorder), and a page served from ANOTHER origin shows
// them with <img> and <video> at the signed URLs job reads carry: both load. The same URLs
// without their signature, with a wrong one and with an expired one are 403 JSON, and the
// <img>/<video> on them fail.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

import { launchBrowser } from '../lib/browser.js';
import { startServer } from '../lib/server.js';

const LONG = 60000;
const SIGNING_KEY = 'console-signing-key-0123456789abcdef';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('node:http').Server[]} */
const helpers = [];
let clip = Buffer.alloc(0);

function listen(handler) {
  const http = createServer(handler);
  helpers.push(http);
  return new Promise((resolve) => http.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${http.address().port}`)));
}

/** A short WebM clip, recorded from a canvas by the browser itself. */
async function recordClip(page) {
  const base64 = await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 90;
    const ctx = canvas.getContext('2d');
    const stream = canvas.captureStream(25);
    const recorder = new MediaRecorder(stream, { mimeType: 'video/webm;codecs=vp8' });
    const chunks = [];
    recorder.ondataavailable = (e) => chunks.push(e.data);
    const stopped = new Promise((r) => (recorder.onstop = r));
    recorder.start();
    let frame = 0;
    const timer = setInterval(() => {
      ctx.fillStyle = `hsl(${(frame * 20) % 360} 80% 50%)`;
      ctx.fillRect(0, 0, 160, 90);
      frame += 1;
    }, 40);
    await new Promise((r) => setTimeout(r, 800));
    clearInterval(timer);
    recorder.stop();
    await stopped;
    const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
  });
  return Buffer.from(base64, 'base64');
}

/** Replicate's prediction API, delivering `clip`. */
function replicateStandIn(base) {
  return (req, res) => {
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'POST' && req.url === '/v1/models/acme/clip/predictions') {
      req.resume();
      return json(201, { id: 'clip-1', status: 'starting', output: null, error: null, urls: { get: `${base()}/v1/predictions/clip-1` } });
    }
    if (req.method === 'GET' && req.url === '/v1/predictions/clip-1') {
      return json(200, { id: 'clip-1', status: 'succeeded', output: `${base()}/delivery/clip.webm`, error: null });
    }
    if (req.method === 'GET' && req.url === '/delivery/clip.webm') {
      res.writeHead(200, { 'content-type': 'video/webm' });
      return res.end(clip);
    }
    json(404, { detail: 'Not found' });
  };
}

before(async () => {
  browser = await launchBrowser();
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  clip = await recordClip(page);
  assert.ok(clip.length > 100 && clip.subarray(0, 4).equals(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), 'not a WebM clip');
  let providerBase = '';
  providerBase = await listen(replicateStandIn(() => providerBase));
  const config = `
[artifacts]
urls = "signed"
signing_key = "${SIGNING_KEY}"
url_ttl_secs = 600

[[models]]
name = "sim-text"
kind = "text"
adapter = "simulated"
default = true

[[models]]
name = "sim-image"
kind = "image"
adapter = "simulated"
default = true

[[models]]
name = "clip"
kind = "video"
adapter = "replicate"
base_url = "${providerBase}/v1"
model = "acme/clip"
api_key_env = "HOME"
default = true
[models.async_task]
poll_interval_ms = 100
`;
  server = await startServer({ config });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const http of helpers) http.close();
});

async function api(path, init = {}) {
  const response = await fetch(`${server.base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${server.devToken}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  return response.json();
}

async function completed(workflowType, params) {
  const started = await api('/api/workflows', { method: 'POST', body: JSON.stringify({ workflowType, projectId: 1, params }) });
  const id = started.jobId ?? started.id;
  const deadline = Date.now() + LONG;
  for (;;) {
    const job = await api(`/api/workflows/${id}`);
    if (job.status === 'completed') return job;
    assert.notEqual(job.status, 'failed', JSON.stringify(job));
    assert.ok(Date.now() < deadline, `job ${id} did not complete: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('signed media load in <img> and <video> on another origin; bad signatures are 403 JSON', async () => {
  const frame = await completed('frame_generation', { prompt: 'a lighthouse at dawn', width: 256, height: 144 });
  const image = frame.tasks[0].result_data.startFrame;
  const scene = await completed('scene_video', { prompt: 'waves at the lighthouse', duration: 5 });
  const video = scene.tasks[0].result_data.videoUrl;
  for (const url of [image, video]) {
    assert.match(url, new RegExp(`^${server.base}/files/[0-9a-f]{2}/[0-9a-f]{62}\\.(png|webm)\\?exp=\\d+&sig=[0-9a-f]{64}$`));
  }
  assert.match(video, /\.webm\?/);

  // Refused: no signature, a wrong one, an expired one (a valid signature made with the
  // server's key for a time in the past).
  const [path, query] = image.split('?');
  const exp = Number(new URLSearchParams(query).get('exp'));
  const { createHmac } = await import('node:crypto');
  const key = path.slice(path.indexOf('/files/') + '/files/'.length);
  const past = Math.floor(Date.now() / 1000) - 10;
  const expired = `${path}?exp=${past}&sig=${createHmac('sha256', SIGNING_KEY).update(`${key}\n${past}`).digest('hex')}`;
  const wrong = `${path}?exp=${exp}&sig=${'0'.repeat(64)}`;
  for (const [what, url] of [['unsigned', path], ['wrong', wrong], ['expired', expired]]) {
    const response = await fetch(url);
    assert.equal(response.status, 403, what);
    assert.match(response.headers.get('content-type'), /^application\/json/, what);
    assert.equal((await response.json()).code, 'forbidden', what);
  }

  // A page on another origin embeds the media.
  const page = await browser.context.newPage();
  const pageBase = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>media</title>
<img id="img" alt="frame" src="${image}">
<video id="video" muted playsinline preload="auto" src="${video}"></video>
<img id="unsigned" alt="unsigned" src="${path}">
<video id="unsigned-video" muted preload="auto" src="${video.split('?')[0]}"></video>`);
  });
  assert.notEqual(new URL(pageBase).origin, new URL(server.base).origin);
  await page.goto(`${pageBase}/`);
  await page.waitForFunction(() => {
    const img = document.getElementById('img');
    const video = document.getElementById('video');
    return img.complete && img.naturalWidth > 0 && video.readyState >= 2;
  }, undefined, { timeout: LONG });
  const loaded = await page.evaluate(() => ({
    width: document.getElementById('img').naturalWidth,
    videoWidth: document.getElementById('video').videoWidth,
    unsignedWidth: document.getElementById('unsigned').naturalWidth,
    unsignedComplete: document.getElementById('unsigned').complete,
  }));
  assert.equal(loaded.width, 256);
  assert.equal(loaded.videoWidth, 160);
  assert.equal(loaded.unsignedComplete, true);
  assert.equal(loaded.unsignedWidth, 0, 'the unsigned image must not load');
  await page.waitForFunction(() => document.getElementById('unsigned-video').error !== null, undefined, { timeout: LONG });
  await page.close();
});
