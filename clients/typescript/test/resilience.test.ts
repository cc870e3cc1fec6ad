// How a watcher behaves when things go wrong: a server that answers nothing (backoff), a hidden tab
// (pause), an event stream that a proxy holds back (fallback to polling).
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterEach, describe, expect, it, vi } from 'vitest';
import { inject } from 'vitest';

import {
  backoffDelay,
  configure,
  getWorkflowStatus,
  startWorkflow,
  watchWorkflow,
  type WorkflowJob,
} from '../src/index';
import { asNewUser, eventually, tokenFor } from './helpers';
import { MODELS } from './serverConfig';

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Resolves once `check()` holds, looking between real I/O turns (fake timers do not delay it). */
async function settled(check: () => boolean, turns = 20_000): Promise<void> {
  for (let i = 0; i < turns; i += 1) {
    if (check()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('the watcher did not settle');
}

let visibility: DocumentVisibilityState = 'visible';
function setVisibility(state: DocumentVisibilityState): void {
  visibility = state;
  document.dispatchEvent(new Event('visibilitychange'));
}
Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });

afterEach(() => {
  vi.useRealTimers();
  visibility = 'visible';
});

describe('backoff', () => {
  it('doubles the wait per failure up to the cap, with jitter between half and all of it', () => {
    expect(backoffDelay(1, 2000, 30_000, () => 0)).toBe(1000);
    expect(backoffDelay(1, 2000, 30_000, () => 1)).toBe(2000);
    expect(backoffDelay(3, 2000, 30_000, () => 1)).toBe(8000);
    expect(backoffDelay(9, 2000, 30_000, () => 0)).toBe(15_000);
    expect(backoffDelay(9, 2000, 30_000, () => 1)).toBe(30_000);
  });

  it('a dead server sees fewer than 15 requests in 60 s from one watcher', async () => {
    // A loopback server that counts each request and drops its connection without an answer.
    let requests = 0;
    const dead = createServer((req) => {
      requests += 1;
      req.socket.destroy();
    });
    const url = await listen(dead);
    configure({ baseUrl: url, getToken: () => tokenFor(1) });
    let errors = 0;

    // Fake clock for the watcher's waits; the requests themselves are real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const start = Date.now();
    const watcher = watchWorkflow(1, {
      onJob: () => {
        throw new Error('a dead server has no jobs');
      },
      onError: () => {
        errors += 1;
      },
    });
    try {
      let inFirstMinute = 0;
      for (;;) {
        // Wait (really) for the request in flight to fail and the next wait to be scheduled.
        await settled(() => errors === requests && vi.getTimerCount() > 0);
        if (Date.now() - start > 60_000) break;
        inFirstMinute = requests;
        await vi.advanceTimersToNextTimerAsync();
      }
      expect(inFirstMinute).toBeGreaterThanOrEqual(4); // it does keep trying
      expect(inFirstMinute).toBeLessThan(15);
      console.log(`dead server: ${inFirstMinute} requests in the first 60 s (fake clock)`);
    } finally {
      watcher.stop();
      vi.useRealTimers();
      await close(dead);
      configure({ baseUrl: inject('serverUrl') });
    }
  });
});

describe('hidden tab', () => {
  it('pauses polling while the page is hidden and resumes when it is visible again', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'while hidden',
      modelName: MODELS.slowText,
    });
    const reads = () => requests.filter((r) => r.endsWith(`/api/workflows/${jobId}`)).length;
    const seen: WorkflowJob[] = [];
    const watcher = watchWorkflow(jobId, { interval: 20, onJob: (job) => seen.push(job) });
    try {
      await eventually(() => seen.length >= 2);
      setVisibility('hidden');
      await new Promise((r) => setTimeout(r, 60)); // the read in flight (if any) lands
      const atHide = reads();
      await new Promise((r) => setTimeout(r, 400)); // 20 intervals
      expect(reads()).toBe(atHide);

      setVisibility('visible');
      await eventually(() => reads() > atHide, 2000);
      await eventually(() => seen[seen.length - 1]?.status === 'completed');
    } finally {
      watcher.stop();
    }
  });

  it('does not start polling in a tab that opens hidden until it is shown', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'opened hidden' });
    setVisibility('hidden');
    const seen: WorkflowJob[] = [];
    const watcher = watchWorkflow(jobId, { interval: 20, onJob: (job) => seen.push(job) });
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(requests.filter((r) => r.includes(`/api/workflows/${jobId}`))).toEqual([]);
      setVisibility('visible');
      await eventually(() => seen[seen.length - 1]?.status === 'completed');
    } finally {
      watcher.stop();
    }
  });
});

describe('a silent event stream', () => {
  it('falls back to polling when a proxy holds the stream back', async () => {
    const { projectId } = await asNewUser();
    const upstream = new URL(inject('serverUrl'));
    const seenPaths: string[] = [];
    // A buffering proxy: it forwards requests, but holds every event stream's body back.
    const proxy = createServer((req, res) => {
      seenPaths.push(req.url ?? '');
      if (req.url?.endsWith('/events')) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.flushHeaders();
        return; // never a byte of the body
      }
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (answer: IncomingMessage) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    const proxyUrl = await listen(proxy);
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'behind a proxy' });
    configure({ baseUrl: proxyUrl });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const seen: WorkflowJob[] = [];
    const watcher = watchWorkflow(jobId, {
      stream: true,
      streamIdleTimeout: 300,
      interval: 50,
      onJob: (job) => seen.push(job),
    });
    try {
      await eventually(() => seen[seen.length - 1]?.status === 'completed', 10_000);
      // One stream was tried; then it polled.
      expect(seenPaths.filter((p) => p.endsWith('/events'))).toHaveLength(1);
      expect(seenPaths.filter((p) => p.endsWith(`/api/workflows/${jobId}`)).length).toBeGreaterThan(0);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('polling instead'));
    } finally {
      watcher.stop();
      warn.mockRestore();
      configure({ baseUrl: inject('serverUrl') });
      await close(proxy);
    }
    expect((await getWorkflowStatus(jobId)).status).toBe('completed');
  });
});
