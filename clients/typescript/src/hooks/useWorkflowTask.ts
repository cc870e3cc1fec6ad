'use client';
import { useCallback, useEffect, useRef, useState } from 'react';

import { ApiError } from '../http.js';
import type { JsonObject, WorkflowJob, WorkflowJobSummary } from '../types.js';
import type { WorkflowParams, WorkflowType } from '../workflows.js';
import { useNosyntaskClient } from './context.js';
import { invokeCallback, useLatest } from './useLatest.js';
import { useWorkflow } from './useWorkflow.js';

/** How many active jobs to look through when resuming (the server's default is only 5). */
const ACTIVE_LOOKUP_LIMIT = 100;

/** A job parameter that says what a job is about, e.g. `characterId` of a views generation. */
export interface WorkflowTarget {
  /** The name of the parameter in the job's `input_params`. */
  param: string;
  /** Only jobs whose parameter equals this (compared as strings); null: any job of the type. */
  value: string | number | null;
}

/** Options of {@link useWorkflowTask}. */
export interface UseWorkflowTaskOptions {
  /** The workflow type this hook starts and resumes. */
  workflowType: WorkflowType;
  projectId: number | null;
  /** Poll and resume only while true (e.g. while a modal is open). */
  isActive: boolean;
  /** Restricts the jobs this hook tracks to one target (one character, one scene, one script). */
  target?: WorkflowTarget;
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the event stream instead of polling. */
  stream?: boolean;
  /** A tracked job completed. The job is consumed after this returns (not if it throws). */
  onCompleted?: (job: WorkflowJob) => void | Promise<void>;
  /** A tracked job failed. The job is consumed after this returns. */
  onFailed?: (job: WorkflowJob) => void | Promise<void>;
}

/** What {@link useWorkflowTask} returns. */
export interface UseWorkflowTaskResult {
  /** A job is being started or tracked and its result not yet handed over. */
  isBusy: boolean;
  /** The tracked job's id. */
  jobId: number | null;
  /** The target value (as a string) of the tracked job, e.g. the scene id being generated. */
  targetId: string | null;
  job: WorkflowJob | null;
  isRunning: boolean;
  isCompleted: boolean;
  isFailed: boolean;
  isCancelled: boolean;
  /** The tracked job's overall progress 0–100. */
  progress: number;
  /** Why the last start, resume or job failed; cleared by the next start. */
  error: string | null;
  /**
   * Starts the workflow with `params`, unless an unfinished job for the same target exists: then
   * tracks that one instead. Resolves with the tracked job id, or null when starting failed
   * (`error` says why).
   */
  start: (params: JsonObject) => Promise<number | null>;
  /** Looks for an unfinished or unconsumed job of this type and target and tracks it. */
  checkAndResume: () => Promise<void>;
  /** Cancels the tracked job. */
  cancel: () => Promise<void>;
}

function targetOf(params: JsonObject | null | undefined, target: WorkflowTarget | undefined): string | null {
  if (!target) return null;
  const value: unknown = params?.[target.param];
  return value === undefined || value === null ? null : String(value);
}

/** Whether a job belongs to a hook following `target` (any job when the target value is null). */
function matches(job: WorkflowJobSummary, target: WorkflowTarget | undefined): boolean {
  if (!target || target.value === null || target.value === undefined) return true;
  return targetOf(job.input_params, target) === String(target.value);
}

/**
 * The shared engine of the NanoStory feature hooks: one workflow type, optionally one target, one
 * tracked job at a time. After a page reload it picks up unfinished (or finished but unconsumed)
 * jobs through `getActiveWorkflows`; it hands finished jobs to the caller, then consumes them and
 * moves on to the next one; it reuses an unfinished job instead of starting a duplicate.
 */
export function useWorkflowTask(options: UseWorkflowTaskOptions): UseWorkflowTaskResult {
  const { workflowType, projectId, isActive, target, interval, stream } = options;
  const [jobId, setJobId] = useState<number | null>(null);
  const [targetId, setTargetId] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const client = useNosyntaskClient();
  const optionsRef = useLatest(options);
  const jobIdRef = useLatest(jobId);
  const targetIdRef = useLatest(targetId);
  // Jobs whose outcome this hook already handled: never tracked again, even if still listed active.
  const handled = useRef(new Set<number>());
  const startingRef = useRef(false);
  const mounted = useRef(true);
  // The project of the tracked job: switching projects drops it.
  const trackedProject = useRef<number | null>(null);

  const track = useCallback(
    (id: number | null, targetValue: string | null) => {
      if (!mounted.current) return;
      jobIdRef.current = id;
      targetIdRef.current = id === null ? null : targetValue;
      trackedProject.current = id === null ? null : optionsRef.current.projectId;
      setJobId(id);
      setTargetId(targetIdRef.current);
    },
    [jobIdRef, optionsRef, targetIdRef],
  );

  const isTracking = useCallback(
    () => jobIdRef.current !== null && !handled.current.has(jobIdRef.current),
    [jobIdRef],
  );

  /** The first job of `getActiveWorkflows` of this hook's type that `accept`s and is not handled. */
  const findActive = useCallback(
    async (accept: (job: WorkflowJobSummary) => boolean) => {
      const { projectId: project, workflowType: type } = optionsRef.current;
      if (project === null || project === undefined) return undefined;
      const { jobs } = await client.getActiveWorkflows(project, { limit: ACTIVE_LOOKUP_LIMIT });
      return jobs.find((job) => job.workflow_type === type && !handled.current.has(job.id) && accept(job));
    },
    [client, optionsRef],
  );

  const checkAndResume = useCallback(async () => {
    const { projectId: project, isActive: active, target: wantTarget } = optionsRef.current;
    if (project === null || project === undefined || !active || isTracking()) return;
    try {
      const found = await findActive((job) => matches(job, wantTarget));
      if (found && !isTracking()) track(found.id, targetOf(found.input_params, wantTarget));
      else if (!found && !isTracking()) track(null, null);
    } catch (cause) {
      if (mounted.current) setError(cause instanceof Error ? cause.message : String(cause));
    }
  }, [findActive, isTracking, optionsRef, track]);

  const finish = useCallback(
    async (job: WorkflowJob, callback: ((job: WorkflowJob) => unknown) | undefined, label: string) => {
      if (handled.current.has(job.id)) return;
      handled.current.add(job.id);
      const delivered = await invokeCallback(label, callback, job);
      // A result the caller could not take stays unconsumed, so a reload offers it again.
      if (delivered) {
        try {
          await client.consumeWorkflow(job.id);
        } catch (cause) {
          console.warn(`[nosyntask] consuming job ${job.id} failed:`, cause);
        }
      }
      if (jobIdRef.current === job.id) track(null, null);
      await checkAndResume();
    },
    [checkAndResume, client, jobIdRef, track],
  );

  const workflow = useWorkflow(isActive ? jobId : null, {
    interval,
    stream,
    onCompleted: (job) => finish(job, optionsRef.current.onCompleted, 'onCompleted'),
    onFailed: (job) => {
      if (mounted.current) setError(job.error_message ?? 'The workflow failed');
      return finish(job, optionsRef.current.onFailed, 'onFailed');
    },
    onCancelled: (job) => finish(job, undefined, 'onCancelled'),
  });

  const start = useCallback(
    async (params: JsonObject): Promise<number | null> => {
      const { workflowType: type, projectId: project, target: wantTarget } = optionsRef.current;
      if (project === null || project === undefined) {
        setError('No project is selected');
        return null;
      }
      if (startingRef.current) return jobIdRef.current;
      startingRef.current = true;
      setStarting(true);
      setError(null);
      const body = { ...params };
      if (wantTarget && wantTarget.value !== null && body[wantTarget.param] === undefined) {
        body[wantTarget.param] = wantTarget.value;
      }
      const startTarget = targetOf(body, wantTarget);
      try {
        // The same target exactly (a job without one only matches a start without one).
        const existing = await findActive(
          (job) =>
            (job.status === 'pending' || job.status === 'running') &&
            (!wantTarget || targetOf(job.input_params, wantTarget) === startTarget),
        );
        const id = existing ? existing.id : (await client.startWorkflow(type, project, body as WorkflowParams<typeof type>)).jobId;
        track(id, startTarget);
        return id;
      } catch (cause) {
        if (mounted.current) setError(cause instanceof Error ? cause.message : String(cause));
        return null;
      } finally {
        startingRef.current = false;
        if (mounted.current) setStarting(false);
      }
    },
    [client, findActive, jobIdRef, optionsRef, track],
  );

  const { refresh } = workflow;
  const cancel = useCallback(async () => {
    const id = jobIdRef.current;
    if (id === null) return;
    try {
      await client.cancelWorkflow(id);
      await refresh();
    } catch (cause) {
      if (mounted.current) setError(cause instanceof Error ? cause.message : String(cause));
    }
  }, [client, jobIdRef, refresh]);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  // On mount, on reactivation and when the project or target changes: drop a job tracked for
  // another project or target (it goes on on the server) and pick up this one's unfinished work.
  const targetValue = target?.value ?? null;
  useEffect(() => {
    if (!isActive || projectId === null) return;
    if (
      isTracking() &&
      (trackedProject.current !== projectId ||
        (targetValue !== null && targetIdRef.current !== String(targetValue)))
    ) {
      track(null, null);
    }
    void checkAndResume();
  }, [projectId, isActive, workflowType, targetValue, checkAndResume, isTracking, targetIdRef, track]);

  // A tracked job that no longer exists (pruned, or deleted) is dropped; other errors that stop
  // polling (an expired token) are shown.
  const pollError = workflow.error;
  useEffect(() => {
    if (!(pollError instanceof ApiError) || pollError.isRetryable) return;
    setError(pollError.message);
    const id = jobIdRef.current;
    if (pollError.status === 404 && id !== null) {
      handled.current.add(id);
      track(null, null);
      void checkAndResume();
    }
  }, [pollError, checkAndResume, jobIdRef, track]);

  return {
    isBusy: starting || jobId !== null,
    jobId,
    targetId,
    job: workflow.job,
    isRunning: workflow.isRunning,
    isCompleted: workflow.isCompleted,
    isFailed: workflow.isFailed,
    isCancelled: workflow.isCancelled,
    progress: workflow.job?.progress ?? 0,
    error,
    start,
    checkAndResume,
    cancel,
  };
}
