'use client';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import { ApiError } from '../http.js';
import type { Subscription } from '../hub.js';
import { isTerminalStatus, type JobStatus, type WorkflowJob, type WorkflowJobSummary } from '../types.js';
import type { WorkflowParams, WorkflowType } from '../workflows.js';
import { useNosyntaskClient } from './context.js';
import {
  defaultRunStorage,
  IDEMPOTENCY_WINDOW_MS,
  newIdempotencyKey,
  TaskStore,
  type RunStorage,
} from './taskStore.js';
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
  /**
   * Where each key's start is remembered, so that a reload re-attaches the key to its job and a
   * repeated start reuses its idempotency key. Default `localStorage` (memory without one). Pass
   * the same object on every render: a new one re-reads the active list.
   */
  storage?: RunStorage;
}

/** What {@link useTaskRunner} returns. */
export interface UseTaskRunnerResult {
  /** Every task started and not cleared, by key. */
  tasks: Record<string, TaskState>;
  /**
   * Starts a workflow under `key` and resolves with its job id. While the key's job is pending or
   * running (in this or another component, or before a reload) it resolves with that job instead
   * of starting a second one; a finished key starts anew.
   */
  runTask: <T extends WorkflowType>(key: string, workflowType: T, params: WorkflowParams<T>) => Promise<number>;
  /**
   * Follows active jobs of these types (e.g. after a reload) under the key `keyOf(job)` returns
   * (null skips the job); keys already tracked are left alone. Keys started by `runTask` are
   * re-attached on mount without it.
   */
  recoverTasks: (workflowTypes: string[], keyOf: (job: WorkflowJobSummary) => string | null) => Promise<void>;
  /** Stops tracking `key` and forgets its state. */
  clearTask: (key: string) => void;
  /** Stops polling `key` but keeps its last state. */
  stopPolling: (key: string) => void;
  /** Whether any task is pending or running. */
  isRunning: boolean;
}

/** How many active jobs to look through when re-attaching. */
const ACTIVE_LOOKUP_LIMIT = 100;

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

const isActive = (status: JobStatus | undefined) => status === 'pending' || status === 'running';

/**
 * Runs several workflows at once, each under a key of your choosing (e.g. `img_${sceneId}`), and
 * follows each until it finishes. Keys survive a reload: on mount the runner re-attaches each key
 * it started to its job, if that job is still in the active list.
 */
export function useTaskRunner(options: UseTaskRunnerOptions = {}): UseTaskRunnerResult {
  const client = useNosyntaskClient();
  const [tasks, setTasks] = useState<Record<string, TaskState>>({});
  const tasksRef = useRef(tasks);
  const optionsRef = useLatest(options);
  const watchers = useRef(new Map<string, Subscription>());
  // The start in flight per key: a second runTask of the key waits for it instead of starting.
  const starting = useRef(new Map<string, Promise<number>>());
  const mounted = useRef(true);
  const projectId = options.projectId ?? 0;
  const storage = options.storage;
  const store = useMemo(() => new TaskStore(storage ?? defaultRunStorage(), projectId), [storage, projectId]);
  const storeRef = useLatest(store);

  const setTask = useCallback((change: (prev: Record<string, TaskState>) => Record<string, TaskState>) => {
    setTasks((prev) => {
      const next = change(prev);
      tasksRef.current = next;
      return next;
    });
  }, []);

  const stopPolling = useCallback((key: string) => {
    watchers.current.get(key)?.unsubscribe();
    watchers.current.delete(key);
  }, []);

  const clearTask = useCallback(
    (key: string) => {
      stopPolling(key);
      starting.current.delete(key);
      storeRef.current.remove(key);
      setTask((prev) => {
        if (!(key in prev)) return prev;
        const next = { ...prev };
        delete next[key];
        return next;
      });
    },
    [setTask, stopPolling, storeRef],
  );

  const update = useCallback(
    (key: string, jobId: number, change: (task: TaskState) => TaskState) => {
      setTask((prev) => {
        const task = prev[key];
        return task && task.jobId === jobId ? { ...prev, [key]: change(task) } : prev;
      });
    },
    [setTask],
  );

  /** Follows `jobId` under `key`, through the client's one watcher for that job. */
  const attach = useCallback(
    (key: string, jobId: number, status: JobStatus = 'pending') => {
      if (!mounted.current) return;
      stopPolling(key);
      setTask((prev) => ({
        ...prev,
        [key]: { jobId, status, progress: 0, result: null, error: null },
      }));
      const runStore = storeRef.current;
      const watcher = client.watch(jobId, {
        interval: optionsRef.current.interval,
        onJob(job) {
          update(key, jobId, () => taskStateOf(job));
          if (!isTerminalStatus(job.status)) return;
          stopPolling(key);
          if (optionsRef.current.consume ?? true) {
            if (runStore.get(key)?.jobId === jobId) runStore.remove(key);
            client
              .consumeWorkflow(jobId)
              .catch((error: unknown) => console.warn(`[nosyntask] consuming job ${jobId} failed:`, error));
          }
        },
        onError(error) {
          const message = error instanceof Error ? error.message : String(error);
          update(key, jobId, (task) => ({ ...task, error: message }));
          // A job that no longer exists is not re-attached after a reload.
          if (error instanceof ApiError && error.status === 404 && runStore.get(key)?.jobId === jobId) {
            runStore.remove(key);
          }
        },
      });
      watchers.current.set(key, watcher);
    },
    [client, optionsRef, setTask, stopPolling, storeRef, update],
  );

  /** Starts `key` (or finds the job its remembered start made) and resolves with the job id. */
  const start = useCallback(
    async (key: string, workflowType: WorkflowType, params: WorkflowParams<WorkflowType>): Promise<number> => {
      const runStore = storeRef.current;
      const remembered = runStore.get(key);
      if (remembered?.jobId !== undefined && remembered.workflowType === workflowType) {
        // Started by another component, or before a reload: reuse it while it runs.
        try {
          const job = await client.getWorkflowStatus(remembered.jobId);
          if (isActive(job.status)) {
            attach(key, job.id, job.status);
            return job.id;
          }
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 404)) throw error;
        }
      }
      // A start whose answer never came (or another component's start in flight) is repeated with
      // the same idempotency key, so the server returns the job it made, if it made one.
      const reuse =
        remembered &&
        remembered.jobId === undefined &&
        remembered.workflowType === workflowType &&
        Date.now() - remembered.startedAt < IDEMPOTENCY_WINDOW_MS;
      const run = reuse ? remembered : { workflowType, idempotencyKey: newIdempotencyKey(), startedAt: Date.now() };
      runStore.set(key, run);
      let jobId: number;
      try {
        ({ jobId } = await client.startWorkflow(workflowType, optionsRef.current.projectId ?? 0, params, {
          idempotencyKey: run.idempotencyKey,
        }));
      } catch (error) {
        // Refused (bad params, quota): nothing was started. No answer: it may have been; keep the key.
        if (!(error instanceof ApiError && error.status === 0)) runStore.remove(key);
        throw error;
      }
      runStore.set(key, { ...run, jobId });
      attach(key, jobId);
      return jobId;
    },
    [attach, client, optionsRef, storeRef],
  );

  const runTask = useCallback(
    <T extends WorkflowType>(key: string, workflowType: T, params: WorkflowParams<T>): Promise<number> => {
      const inFlight = starting.current.get(key);
      if (inFlight) return inFlight;
      const current = tasksRef.current[key];
      if (current && isActive(current.status) && watchers.current.has(key)) return Promise.resolve(current.jobId);
      const promise = start(key, workflowType, params as WorkflowParams<WorkflowType>).finally(() => {
        if (starting.current.get(key) === promise) starting.current.delete(key);
      });
      starting.current.set(key, promise);
      return promise;
    },
    [start],
  );

  const recoverTasks = useCallback(
    async (workflowTypes: string[], keyOf: (job: WorkflowJobSummary) => string | null) => {
      const project = optionsRef.current.projectId ?? 0;
      if (!project) return;
      try {
        const { jobs } = await client.getActiveWorkflows(project, { limit: ACTIVE_LOOKUP_LIMIT });
        for (const job of jobs) {
          if (!workflowTypes.includes(job.workflow_type)) continue;
          const key = keyOf(job);
          if (!key || tasksRef.current[key] || starting.current.has(key)) continue;
          attach(key, job.id, job.status);
        }
      } catch (error) {
        console.error('[nosyntask] recovering tasks failed:', error);
      }
    },
    [attach, client, optionsRef],
  );

  // Re-attach the keys this project's runner started before a reload (or in another component)
  // whose jobs are still active; forget those whose jobs are gone or consumed.
  useEffect(() => {
    const remembered = store.entries().filter(([, run]) => run.jobId !== undefined);
    if (remembered.length === 0) return undefined;
    const controller = new AbortController();
    client
      .getActiveWorkflows(projectId, { limit: ACTIVE_LOOKUP_LIMIT, signal: controller.signal })
      .then(({ jobs }) => {
        if (controller.signal.aborted) return;
        const active = new Map(jobs.map((job) => [job.id, job]));
        for (const [key, run] of remembered) {
          const job = active.get(run.jobId as number);
          if (!job) {
            if (store.get(key)?.jobId === run.jobId) store.remove(key);
          } else if (!tasksRef.current[key] && !starting.current.has(key)) {
            attach(key, job.id, job.status);
          }
        }
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) console.warn('[nosyntask] re-attaching tasks failed:', error);
      });
    return () => controller.abort();
  }, [attach, client, projectId, store]);

  useEffect(() => {
    mounted.current = true;
    const current = watchers.current;
    return () => {
      mounted.current = false;
      for (const watcher of current.values()) watcher.unsubscribe();
      current.clear();
    };
  }, []);

  const isRunning = useMemo(() => Object.values(tasks).some((task) => isActive(task.status)), [tasks]);

  return { tasks, runTask, recoverTasks, clearTask, stopPolling, isRunning };
}
