// The HTTP API of nosyntask, as the console uses it: bearer token on every call, the
// `{message, code}` error body turned into an ApiError, and job event streams read with fetch().

import { SseParser } from './sse.js';

/** An error answer of the API (or a network failure, with status 0). */
export class ApiError extends Error {
  /**
   * @param {number} status @param {string} code @param {string} message
   * @param {number | null} [retryAfter] seconds to wait, from a `Retry-After` header
   */
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Job statuses after which nothing changes until a resume. */
export const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'];

export class Api {
  /**
   * @param {string} token
   * @param {(err: ApiError) => void} onUnauthorized called on any 401 answer
   */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @param {AbortSignal} [signal]
   */
  async request(method, path, body, signal) {
    return (await this.send(method, path, body, signal)).data;
  }

  /**
   * A GET that answers `{notModified: true}` when the server still has the version `etag`
   * names (a 304: headers only), else `{data, etag}`.
   * @param {string} path @param {string | null} etag @param {AbortSignal} [signal]
   */
  conditional(path, etag, signal) {
    return this.send('GET', path, undefined, signal, etag ? { 'If-None-Match': etag } : {});
  }

  async send(method, path, body, signal, extra = {}) {
    const headers = this.headers({ Accept: 'application/json', ...extra });
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'Cannot reach the server. Is it running?');
    }
    if (response.status === 304) return { notModified: true, data: null, etag: extra['If-None-Match'] };
    return { notModified: false, data: await this.read(response), etag: response.headers.get('ETag') };
  }

  /** @param {Response} response */
  async read(response) {
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const retryAfter = Number.parseInt(response.headers.get('Retry-After') || '', 10);
      const err = new ApiError(
        response.status,
        (data && data.code) || `http_${response.status}`,
        (data && data.message) || `HTTP ${response.status}`,
        Number.isNaN(retryAfter) ? null : retryAfter,
      );
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized(err);
      throw err;
    }
    return data;
  }

  types(signal) {
    return this.request('GET', '/api/workflows/types', undefined, signal);
  }

  models(signal) {
    return this.request('GET', '/api/models', undefined, signal);
  }

  /**
   * The jobs list as summaries (no steps, no params), or `{notModified: true}` when `etag`
   * is still current.
   * @param {{projectId?: string, workflowType?: string, status?: string[], limit?: number, before?: string}} filters
   * @param {string | null} etag
   */
  list(filters, etag, signal) {
    const query = new URLSearchParams();
    if (filters.projectId) query.set('projectId', filters.projectId);
    if (filters.workflowType) query.set('workflowType', filters.workflowType);
    if (filters.status && filters.status.length) query.set('status', filters.status.join(','));
    if (filters.limit) query.set('limit', String(filters.limit));
    if (filters.before) query.set('before', filters.before);
    if (filters.q) query.set('q', filters.q);
    // The list shows no steps and no params (a script can be 60,000 characters); a job's
    // are read when it is opened.
    query.set('tasks', 'false');
    query.set('params', 'false');
    return this.conditional(`/api/workflows?${query}`, etag, signal);
  }

  /** The job and its ETag: `{data, etag}`. */
  job(id, signal) {
    return this.conditional(`/api/workflows/${encodeURIComponent(id)}`, null, signal);
  }

  start(body) {
    return this.request('POST', '/api/workflows', body);
  }

  cancel(id) {
    return this.request('POST', `/api/workflows/${encodeURIComponent(id)}/cancel`);
  }

  resume(id) {
    return this.request('POST', `/api/workflows/${encodeURIComponent(id)}/resume`);
  }

  consume(id) {
    return this.request('POST', `/api/workflows/${encodeURIComponent(id)}/consume`);
  }

  adminStats(signal) {
    return this.request('GET', '/api/admin/stats', undefined, signal);
  }

  /** The webhook delivery log, newest first (admins). */
  webhookDeliveries(limit, signal) {
    return this.request('GET', `/api/admin/webhooks/deliveries?limit=${encodeURIComponent(limit)}`, undefined, signal);
  }

  /** Sends a webhook delivery again, with the same delivery id (admins). */
  redeliver(id) {
    return this.request('POST', `/api/admin/webhooks/deliveries/${encodeURIComponent(id)}/redeliver`);
  }

  /** Per-model figures per time bucket over the last `minutes` (admins). */
  adminSeries(minutes, signal) {
    return this.request('GET', `/api/admin/series?minutes=${encodeURIComponent(minutes)}`, undefined, signal);
  }

  /**
   * Streams a job until the server ends the stream (after a terminal status) or `signal`
   * aborts. Yields the whole Job each time: the server sends it once, then only what changed
   * (`changes` events), which are merged here.
   * @param {string | number} id
   * @param {AbortSignal} signal
   * @param {{onRetry?: (retryMs: number) => void, onOpen?: () => void, held?: {job: any, etag: string | null} | null}} [options]
   *   onRetry: the reconnection delay the server asks for; onOpen: the stream is open; held: a
   *   read of the job just made, which the stream then starts from if it is still current
   */
  async *events(id, signal, { onRetry, onOpen, held = null } = {}) {
    let response;
    const since = held && held.etag ? { 'If-None-Match': held.etag } : {};
    try {
      response = await fetch(`/api/workflows/${encodeURIComponent(id)}/events?changes=true`, {
        headers: this.headers({ Accept: 'text/event-stream', ...since }),
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'Cannot reach the server. Is it running?');
    }
    if (!response.ok || !response.body) {
      await this.read(response);
      throw new ApiError(response.status, 'stream', 'The event stream did not open.');
    }
    if (onOpen) onOpen();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    const parser = new SseParser();
    let job = held && held.etag ? held.job : null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        for (const message of parser.push(value)) {
          if (message.event === 'job') job = JSON.parse(message.data);
          else if (message.event === 'changes' && job) job = applyChanges(job, JSON.parse(message.data));
          else continue;
          yield job;
        }
        if (parser.retry !== null && onRetry) onRetry(parser.retry);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

/**
 * `job` with a `changes` event applied: its fields replaced, and its tasks matched by id and
 * merged field by field (a new task added). A new object, so callers can compare versions.
 * @param {any} job @param {any} change
 */
export function applyChanges(job, change) {
  const { tasks: changedTasks, ...fields } = change;
  const next = { ...job, ...fields };
  if (changedTasks) {
    const tasks = [...(job.tasks || [])];
    for (const task of changedTasks) {
      const at = tasks.findIndex((t) => t.id === task.id);
      if (at === -1) tasks.push(task);
      else tasks[at] = { ...tasks[at], ...task };
    }
    next.tasks = tasks;
  }
  return next;
}

/**
 * The claims of a JWT, without checking its signature (the server does that).
 * @param {string} token
 * @returns {{userId: number | null, role: string, exp: number | null} | null}
 */
export function tokenClaims(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (!claims || typeof claims !== 'object') return null;
    const id = claims.userId ?? claims.sub;
    const userId = id === undefined || id === null || Number.isNaN(Number(id)) ? null : Number(id);
    return {
      userId,
      role: typeof claims.role === 'string' ? claims.role : 'user',
      exp: typeof claims.exp === 'number' ? claims.exp : null,
    };
  } catch {
    return null;
  }
}
