/**
 * Following one job until it reaches a terminal state, by polling or by the event stream. Framework
 * free: the React hooks are thin wrappers around it.
 */
import { getWorkflowStatus } from './api.js';
import { ApiError, isAbortError } from './client.js';
import { streamWorkflowEvents } from './events.js';
import { isTerminalStatus, type WorkflowJob } from './types.js';

/** Default polling interval, as in the NanoStory frontend. */
export const DEFAULT_INTERVAL_MS = 2000;

/** Options of {@link watchWorkflow}. */
export interface WatchOptions {
  /** Milliseconds between polls (and before reopening a broken stream). Default 2000. */
  interval?: number;
  /** Follow the Server-Sent Events stream instead of polling; polls once whenever it breaks off. */
  stream?: boolean;
  /** Every state of the job read from the server, the terminal one last. */
  onJob: (job: WorkflowJob) => void;
  /**
   * A failed read. Retryable errors (no answer, 429, 5xx) are retried after the interval (or the
   * server's `Retry-After`); any other error (404, 401, ...) halts the watcher until `refresh()`.
   */
  onError?: (error: unknown) => void;
}

/** A running {@link watchWorkflow}. */
export interface Watcher {
  /** Reads the job now; restarts a watcher halted by an error. Resolves after the read. */
  refresh(): Promise<void>;
  /** Stops for good: aborts the request in flight and any timer. */
  stop(): void;
}

/**
 * Reads a job now and then every `interval` ms (or follows its event stream), reporting each state,
 * until it is completed, failed or cancelled, or `stop()` is called.
 */
export function watchWorkflow(jobId: number, options: WatchOptions): Watcher {
  const interval = Math.max(0, options.interval ?? DEFAULT_INTERVAL_MS);
  const controller = new AbortController();
  const { signal } = controller;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finished = false; // the job reached a terminal state
  let halted = false; // a permanent error: wait for refresh()
  let streaming = false;

  const report = (job: WorkflowJob): void => {
    if (signal.aborted) return;
    if (isTerminalStatus(job.status)) finished = true;
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
    const retryAfter = error instanceof ApiError && error.retryAfter ? error.retryAfter * 1000 : 0;
    return Math.max(interval, retryAfter);
  };

  const poll = async (): Promise<number | null> => {
    try {
      report(await getWorkflowStatus(jobId, { signal }));
      return interval;
    } catch (error) {
      return failed(error);
    }
  };

  const follow = async (): Promise<number | null> => {
    streaming = true;
    try {
      await streamWorkflowEvents(jobId, report, { signal });
    } catch (error) {
      const delay = failed(error);
      if (delay === null) return null;
    } finally {
      streaming = false;
    }
    // The stream ended without a terminal state (a restart, a proxy timeout): catch up by polling.
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
    schedule(await (options.stream ? follow() : poll()));
  };

  void tick();

  return {
    async refresh() {
      if (signal.aborted) return;
      halted = false;
      const delay = await poll();
      schedule(delay);
    },
    stop() {
      controller.abort();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
