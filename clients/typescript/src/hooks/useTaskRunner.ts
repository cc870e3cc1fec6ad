import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { consumeWorkflow, startWorkflow } from '../api.js';
import { isTerminalStatus, type JobStatus, type JsonObject, type WorkflowJob } from '../types.js';
import { watchWorkflow, type Watcher } from '../watch.js';
import { useLatest } from './useLatest.js';

/** The state of one keyed task of {@link useTaskRunner}. */
export interface TaskState {
  jobId: number;
  status: JobStatus;
  /** Overall progress 0–100. */
  progress: number;
  /** The last step's `result_data` once completed, else null. */
  result: any | null;
  /** The job's `error_message` once failed, or why its status could not be read. */
  error: string | null;
}

/** Options of {@link useTaskRunner}. */
export interface UseTaskRunnerOptions {
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Project the jobs belong to. Default 0. */
  projectId?: number;
  /**
   * Mark jobs consumed once they are finished and their result is in `tasks`, so they leave
   * `getActiveWorkflows`. Default true.
   */
  consume?: boolean;
}

/** What {@link useTaskRunner} returns. */
export interface UseTaskRunnerResult {
  /** Every task started and not cleared, by key. */
  tasks: Record<string, TaskState>;
  /** Starts a workflow under `key` (replacing what that key tracked) and resolves with its job id. */
  runTask: (key: string, workflowType: string, params: JsonObject) => Promise<number>;
  /** Stops tracking `key` and forgets its state. */
  clearTask: (key: string) => void;
  /** Stops polling `key` but keeps its last state. */
  stopPolling: (key: string) => void;
  /** Whether any task is pending or running. */
  isRunning: boolean;
}

function taskStateOf(job: WorkflowJob): TaskState {
  const lastTask = job.tasks?.length ? job.tasks[job.tasks.length - 1] : undefined;
  return {
    jobId: job.id,
    status: job.status,
    progress: job.progress,
    result: job.status === 'completed' ? (lastTask?.result_data ?? null) : null,
    error: job.status === 'failed' ? (job.error_message ?? 'The workflow failed') : null,
  };
}

/**
 * Runs several workflows at once, each under a key of your choosing (e.g. `img_${sceneId}`), and
 * polls each until it finishes.
 */
export function useTaskRunner(options: UseTaskRunnerOptions = {}): UseTaskRunnerResult {
  const [tasks, setTasks] = useState<Record<string, TaskState>>({});
  const optionsRef = useLatest(options);
  const watchers = useRef(new Map<string, Watcher>());
  // The latest runTask call per key: an older call that resolves later must not win.
  const runs = useRef(new Map<string, number>());
  const nextRun = useRef(0);
  const mounted = useRef(true);

  const stopPolling = useCallback((key: string) => {
    watchers.current.get(key)?.stop();
    watchers.current.delete(key);
  }, []);

  const clearTask = useCallback(
    (key: string) => {
      stopPolling(key);
      runs.current.delete(key);
      setTasks((prev) => {
        if (!(key in prev)) return prev;
        const next = { ...prev };
        delete next[key];
        return next;
      });
    },
    [stopPolling],
  );

  const update = useCallback((key: string, jobId: number, change: (task: TaskState) => TaskState) => {
    setTasks((prev) => {
      const task = prev[key];
      return task && task.jobId === jobId ? { ...prev, [key]: change(task) } : prev;
    });
  }, []);

  const runTask = useCallback(
    async (key: string, workflowType: string, params: JsonObject): Promise<number> => {
      const run = ++nextRun.current;
      runs.current.set(key, run);
      stopPolling(key);
      const { jobId } = await startWorkflow(workflowType, optionsRef.current.projectId ?? 0, params);
      if (!mounted.current || runs.current.get(key) !== run) return jobId;

      setTasks((prev) => ({
        ...prev,
        [key]: { jobId, status: 'pending', progress: 0, result: null, error: null },
      }));
      const watcher = watchWorkflow(jobId, {
        interval: optionsRef.current.interval,
        onJob(job) {
          update(key, jobId, () => taskStateOf(job));
          if (isTerminalStatus(job.status)) {
            watchers.current.delete(key);
            if (optionsRef.current.consume ?? true) {
              consumeWorkflow(jobId).catch((error: unknown) =>
                console.warn(`[nosyntask] consuming job ${jobId} failed:`, error),
              );
            }
          }
        },
        onError(error) {
          const message = error instanceof Error ? error.message : String(error);
          update(key, jobId, (task) => ({ ...task, error: message }));
        },
      });
      watchers.current.set(key, watcher);
      return jobId;
    },
    [optionsRef, stopPolling, update],
  );

  useEffect(() => {
    mounted.current = true;
    const current = watchers.current;
    return () => {
      mounted.current = false;
      for (const watcher of current.values()) watcher.stop();
      current.clear();
    };
  }, []);

  const isRunning = useMemo(
    () => Object.values(tasks).some((task) => task.status === 'pending' || task.status === 'running'),
    [tasks],
  );

  return { tasks, runTask, clearTask, stopPolling, isRunning };
}
