/**
 * Following one job until it reaches a terminal state, by polling or by the event stream. Framework
 * free: the React hooks are thin wrappers around it.
 */
import { isAbortError, ApiError } from './http.js';
import type { StreamOptions } from './events.js';
import { isTerminalStatus, type WorkflowJob } from './types.js';

/** Default polling interval, as in the NanoStory frontend. */
export const DEFAULT_INTERVAL_MS = 2000;
/** Longest wait between two tries after errors. */
export const DEFAULT_MAX_RETRY_DELAY_MS = 30_000;

/** Options of `watchWorkflow`. */
export interface WatchOptions {
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the Server-Sent Events stream instead of polling; polls once whenever it breaks off. */
  stream?: boolean;
  /**
   * Milliseconds of silence after which an event stream counts as held back (a buffering proxy):
   * the watcher then polls instead, for the rest of its life. Default 20,000.
   */
  streamIdleTimeout?: number;
  /**
   * The wait before the first retry after a failed read; each further failure doubles it (up to
   * `maxRetryDelay`), with jitter so that many clients do not retry in step. Default: the
   * interval, at least 1,000 ms.
   */
  retryDelay?: number;
  /** The longest wait between retries. Default 30,000 ms. */
  maxRetryDelay?: number;
  /** Pause polling while the page is hidden (`document.visibilityState`). Default true. */
  pauseWhenHidden?: boolean;
  /** Every state of the job read from the server, the terminal one last. */
  onJob: (job: WorkflowJob) => void;
  /**
   * A failed read. Retryable errors (no answer, 429, 5xx) are retried with backoff (never sooner
   * than the server's `Retry-After`); any other error (404, 401, ...) halts the watcher until
   * `refresh()`.
   */
  onError?: (error: unknown) => void;
}

/** A running watcher. */
export interface Watcher {
  /** Reads the job now; restarts a watcher halted by an error. Resolves after the read. */
  refresh(): Promise<void>;
  /** Stops for good: aborts the request in flight and any timer. */
  stop(): void;
}

/** What a watcher reads the job with (a `NosyntaskClient`). */
export interface JobSource {
  getWorkflowStatus(jobId: number, options: { signal?: AbortSignal }): Promise<WorkflowJob>;
  streamWorkflowEvents(jobId: number, onJob: (job: WorkflowJob) => void, options: StreamOptions): Promise<WorkflowJob | null>;
}

/**
 * The wait before retry number `failures` (1, 2, ...): `base` doubled per failure, capped at `max`,
 * then "equal jitter" — between half of that and all of it.
 */
export function backoffDelay(failures: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * 2 ** Math.max(0, failures - 1));
  return ceiling / 2 + (random() * ceiling) / 2;
}

function pageHidden(): boolean {
  return typeof document !== 'undefined' && document.visibilityState === 'hidden';
}

/**
 * Reads a job now and then every `interval` ms (or follows its event stream), reporting each state,
 * until it is completed, failed or cancelled, or `stop()` is called. `interval` and `stream` are
 * read again before every wait, so a caller may pass getters (the shared watchers do).
 */
export function createWatcher(source: JobSource, jobId: number, options: WatchOptions): Watcher {
  const interval = () => Math.max(0, options.interval ?? DEFAULT_INTERVAL_MS);
  const controller = new AbortController();
  const { signal } = controller;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finished = false; // the job reached a terminal state
  let halted = false; // a permanent error: wait for refresh()
  let streaming = false;
  let streamHeldBack = false; // a stream went silent: poll from now on
  let paused = false; // a tick came while the page was hidden
  let failures = 0; // consecutive failed reads

  const report = (job: WorkflowJob): void => {
    if (signal.aborted) return;
    failures = 0;
    if (isTerminalStatus(job.status)) {
      finished = true;
      unlisten();
    }
    options.onJob(job);
  };

  /** Reports the error; returns the delay before the next try, or null to halt. */
  const failed = (error: unknown): number | null => {
    if (signal.aborted || isAbortError(error)) return null;
    options.onError?.(error);
    if (error instanceof ApiError && !error.isRetryable) {
      halted = true;
      return null;
    }
    failures += 1;
    const base = options.retryDelay ?? Math.max(interval(), 1000);
    const delay = backoffDelay(failures, base, options.maxRetryDelay ?? DEFAULT_MAX_RETRY_DELAY_MS);
    const retryAfter = error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : 0;
    return Math.max(delay, retryAfter);
  };

  const poll = async (): Promise<number | null> => {
    try {
      report(await source.getWorkflowStatus(jobId, { signal }));
      return interval();
    } catch (error) {
      return failed(error);
    }
  };

  const follow = async (): Promise<number | null> => {
    streaming = true;
    try {
      await source.streamWorkflowEvents(jobId, report, { signal, idleTimeout: options.streamIdleTimeout });
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'stream_timeout')) {
        // Reopened after the backoff; the stream's first event is the job's current state.
        return failed(error);
      }
      // Something between us and the server holds the stream back, and will go on doing so.
      streamHeldBack = true;
      console.warn(`[nosyntask] the event stream of job ${jobId} stayed silent; polling instead`);
    } finally {
      streaming = false;
    }
    // The stream ended without a terminal state (a restart, a proxy timeout) or was given up:
    // catch up by polling.
    return finished ? null : poll();
  };

  const schedule = (delay: number | null): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (delay === null || finished || halted || signal.aborted || streaming) return;
    timer = setTimeout(() => void tick(), delay);
  };

  const tick = async (): Promise<void> => {
    timer = undefined;
    if ((options.pauseWhenHidden ?? true) && pageHidden()) {
      paused = true; // visibilitychange resumes
      return;
    }
    schedule(await (options.stream && !streamHeldBack ? follow() : poll()));
  };

  const onVisibility = (): void => {
    if (!paused || pageHidden() || signal.aborted) return;
    paused = false;
    void tick();
  };
  const listening = typeof document !== 'undefined';
  if (listening) document.addEventListener('visibilitychange', onVisibility);
  function unlisten(): void {
    if (listening) document.removeEventListener('visibilitychange', onVisibility);
  }

  void tick();

  return {
    async refresh() {
      if (signal.aborted) return;
      halted = false;
      paused = false;
      const delay = await poll();
      schedule(delay);
    },
    stop() {
      controller.abort();
      unlisten();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
