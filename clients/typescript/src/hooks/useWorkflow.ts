'use client';
import { useCallback, useEffect, useRef, useState } from 'react';

import { isTerminalStatus, type WorkflowJob } from '../types.js';
import type { Subscription } from '../hub.js';
import { useNosyntaskClient } from './context.js';
import { invokeCallback, useLatest } from './useLatest.js';

/** Options (and callbacks) of {@link useWorkflow}. */
export interface UseWorkflowOptions {
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the server's event stream instead of polling. Default false. */
  stream?: boolean;
  /** The job completed; called once per job. */
  onCompleted?: (job: WorkflowJob) => void | Promise<void>;
  /** The job failed (its `error_message` says why); called once per job. */
  onFailed?: (job: WorkflowJob) => void | Promise<void>;
  /** The job was cancelled; called once per job. */
  onCancelled?: (job: WorkflowJob) => void | Promise<void>;
  /** The job's overall progress (0–100) changed, the first reading included. */
  onProgress?: (progress: number, job: WorkflowJob) => void;
}

/** What {@link useWorkflow} returns. */
export interface UseWorkflowResult {
  /** The last state read from the server, or null before the first read (or without a job). */
  job: WorkflowJob | null;
  /** pending or running. */
  isRunning: boolean;
  isCompleted: boolean;
  isFailed: boolean;
  isCancelled: boolean;
  /** The last failed read (cleared by the next good one); a non-retryable one stops polling. */
  error: Error | null;
  /** Reads the job now, restarting polling if an error had stopped it. */
  refresh: () => Promise<void>;
}

interface State {
  jobId: number | null;
  job: WorkflowJob | null;
  error: Error | null;
}

/**
 * Polls a workflow job (every 2 s by default, or follows its event stream with `stream: true`) until
 * it is completed, failed or cancelled, and calls the matching callback once. `jobId` null stops.
 *
 * Callbacks may change on every render without restarting the polling.
 */
export function useWorkflow(jobId: number | null, options: UseWorkflowOptions = {}): UseWorkflowResult {
  const { interval, stream = false } = options;
  const [state, setState] = useState<State>({ jobId: null, job: null, error: null });
  const optionsRef = useLatest(options);
  const client = useNosyntaskClient();
  const watcherRef = useRef<Subscription | null>(null);
  // Per hook instance, so a job seen again (StrictMode, a jobId toggled back) never re-notifies.
  const notified = useRef(new Set<number>());
  const lastProgress = useRef<{ jobId: number; progress: number } | null>(null);

  useEffect(() => {
    if (jobId === null || jobId === undefined) return undefined;
    // One watcher per job for the whole client, however many components follow it.
    const watcher = client.watch(jobId, {
      interval,
      stream,
      onJob(job) {
        setState({ jobId, job, error: null });
        const callbacks = optionsRef.current;
        const previous = lastProgress.current;
        if (previous === null || previous.jobId !== job.id || previous.progress !== job.progress) {
          lastProgress.current = { jobId: job.id, progress: job.progress };
          void invokeCallback('onProgress', callbacks.onProgress, job.progress, job);
        }
        if (!isTerminalStatus(job.status) || notified.current.has(job.id)) return;
        notified.current.add(job.id);
        if (job.status === 'completed') void invokeCallback('onCompleted', callbacks.onCompleted, job);
        else if (job.status === 'failed') void invokeCallback('onFailed', callbacks.onFailed, job);
        else void invokeCallback('onCancelled', callbacks.onCancelled, job);
      },
      onError(error) {
        const asError = error instanceof Error ? error : new Error(String(error));
        setState((s) => (s.jobId === jobId ? { ...s, error: asError } : { jobId, job: null, error: asError }));
      },
    });
    watcherRef.current = watcher;
    return () => {
      watcher.unsubscribe();
      if (watcherRef.current === watcher) watcherRef.current = null;
    };
  }, [client, jobId, interval, stream, optionsRef]);

  const refresh = useCallback(async () => {
    await watcherRef.current?.refresh();
  }, []);

  // A state read for another job id is never shown.
  const current = jobId !== null && state.jobId === jobId ? state : null;
  const job = current?.job ?? null;
  const status = job?.status;
  return {
    job,
    isRunning: status === 'pending' || status === 'running',
    isCompleted: status === 'completed',
    isFailed: status === 'failed',
    isCancelled: status === 'cancelled',
    error: current?.error ?? null,
    refresh,
  };
}
