// The start form's examples (bins/server/console/samples.js) against the real server: every
// workflow of the catalogue has one, and each one starts and runs to completion. The console
// offers them with a click, so an example the server refuses or that fails is a broken button.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SAMPLES } from '../../../bins/server/console/samples.js';
import { slowModels, startServer } from '../lib/server.js';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
let auth;

before(async () => {
  // Quick simulated models: the point is what the server accepts and what the workflows do.
  server = await startServer({ config: slowModels({ textMs: 20, imageMs: 20, videoMs: 50 }) });
  auth = { Authorization: `Bearer ${server.token(5)}` };
});

after(async () => {
  await server?.stop();
});

async function api(method, path, body) {
  const response = await fetch(`${server.base}${path}`, {
    method,
    headers: { ...auth, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}

test('every workflow of the catalogue has an example, and each example runs to completion', async () => {
  const { body: types } = await api('GET', '/api/workflows/types');
  const catalogue = types.workflows.map((t) => t.type);
  assert.ok(catalogue.length >= 15, `catalogue: ${catalogue.join(', ')}`);
  assert.deepEqual(catalogue.filter((type) => !SAMPLES[type]), [], 'workflows without an example');
  const started = [];
  for (const type of catalogue) {
    const { status, body } = await api('POST', '/api/workflows', { workflowType: type, projectId: 1, params: SAMPLES[type] });
    assert.equal(status, 202, `${type}: ${JSON.stringify(body)}`);
    started.push([type, body.jobId]);
  }
  for (const [type, id] of started) {
    let job;
    for (let i = 0; i < 600; i += 1) {
      ({ body: job } = await api('GET', `/api/workflows/${id}`));
      if (['completed', 'failed', 'cancelled'].includes(job.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(job.status, 'completed', `${type}: ${job.error_message ?? job.status}`);
  }
});
