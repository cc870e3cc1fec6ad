/**
 * The REST API of nosyntask, one function per endpoint, with the names and signatures the NanoStory
 * frontend already uses (`startWorkflow`, `getWorkflowStatus`, ...). Each calls {@link defaultClient};
 * `new NosyntaskClient(config)` has the same functions as methods.
 */
import {
  defaultClient,
  type ActiveWorkflowsOptions,
  type CallOptions,
  type StartWorkflowOptions,
  type WorkflowListOptions,
} from './client.js';
import type { StreamOptions } from './events.js';
import type {
  CancelWorkflowResponse,
  ConsumeWorkflowResponse,
  ModelsResponse,
  ResumeWorkflowResponse,
  StartWorkflowResponse,
  WorkflowListResponse,
  WorkflowJob,
  WorkflowTypesResponse,
} from './types.js';
import type { Watcher, WatchOptions } from './watch.js';
import type { TypedWorkflowJob, WorkflowParams, WorkflowType } from './workflows.js';

export type { ActiveWorkflowsOptions, CallOptions, StartWorkflowOptions, WorkflowListOptions };

/**
 * Starts a workflow job. The answer comes once the job and its tasks are stored. The params are
 * checked against the workflow type's own (`WorkflowParams<T>`); an unknown type does not compile.
 *
 * ```ts
 * const { jobId } = await startWorkflow('character_views_generation', projectId, { characterName: '张三' });
 * ```
 */
export function startWorkflow<T extends WorkflowType>(
  workflowType: T,
  projectId: number | null,
  params: WorkflowParams<T>,
  options: StartWorkflowOptions = {},
): Promise<StartWorkflowResponse> {
  return defaultClient.startWorkflow(workflowType, projectId, params, options);
}

/**
 * A job with all its tasks (status, progress, results). Sends the last ETag, so an unchanged job
 * costs a 304. `getWorkflowStatus<'character_views_generation'>(id)` types its `result_data`.
 */
export function getWorkflowStatus<T extends WorkflowType = WorkflowType>(
  jobId: number,
  options: CallOptions = {},
): Promise<TypedWorkflowJob<T>> {
  return defaultClient.getWorkflowStatus<T>(jobId, options);
}

/** The user's jobs, newest first, without their tasks. */
export function getWorkflowList(options: WorkflowListOptions = {}): Promise<WorkflowListResponse> {
  return defaultClient.getWorkflowList(options);
}

/**
 * The user's jobs in a project that still need the frontend: pending or running, or finished and
 * not yet consumed. Newest first.
 */
export function getActiveWorkflows(
  projectId: number,
  options: ActiveWorkflowsOptions = {},
): Promise<WorkflowListResponse> {
  return defaultClient.getActiveWorkflows(projectId, options);
}

/** Marks a finished job as handled so it leaves {@link getActiveWorkflows}. Idempotent. */
export function consumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ConsumeWorkflowResponse> {
  return defaultClient.consumeWorkflow(jobId, options);
}

/** Cancels a job and its unfinished tasks. Idempotent; a completed job answers 409. */
export function cancelWorkflow(jobId: number, options: CallOptions = {}): Promise<CancelWorkflowResponse> {
  return defaultClient.cancelWorkflow(jobId, options);
}

/**
 * Continues a failed or cancelled job from its first unfinished step, keeping the results of the
 * finished ones. Any other status answers 409.
 */
export function resumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ResumeWorkflowResponse> {
  return defaultClient.resumeWorkflow(jobId, options);
}

/** The workflow types the server runs, with their steps and parameter schemas. */
export function getWorkflowTypes(options: CallOptions = {}): Promise<WorkflowTypesResponse> {
  return defaultClient.getWorkflowTypes(options);
}

/** The configured AI models (never their secrets). */
export function getModels(options: CallOptions = {}): Promise<ModelsResponse> {
  return defaultClient.getModels(options);
}

/**
 * Follows a job's Server-Sent Events: calls `onJob` with the full job on every change, and resolves
 * with the last job once the server ends the stream (after a terminal state) or `signal` aborts it.
 * Rejects with an `ApiError` when the stream cannot be opened, breaks off (`network_error`) or
 * stays silent longer than `idleTimeout` (`stream_timeout`, default 20 s).
 */
export function streamWorkflowEvents(
  jobId: number,
  onJob: (job: WorkflowJob) => void,
  options: StreamOptions = {},
): Promise<WorkflowJob | null> {
  return defaultClient.streamWorkflowEvents(jobId, onJob, options);
}

/**
 * Reads a job now and then every `interval` ms (or follows its event stream), reporting each state,
 * until it is completed, failed or cancelled, or `stop()` is called. Errors back off exponentially
 * with jitter; polling pauses while the page is hidden. A watcher of its own: hooks share one per
 * job through `NosyntaskClient.watch`.
 */
export function watchWorkflow(jobId: number, options: WatchOptions): Watcher {
  return defaultClient.watchWorkflow(jobId, options);
}
