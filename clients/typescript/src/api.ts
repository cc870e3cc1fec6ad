/**
 * The REST API of nosyntask, one function per endpoint, with the names and signatures the NanoStory
 * frontend already uses (`startWorkflow`, `getWorkflowStatus`, ...).
 */
import { onConfigure, request, send } from './client.js';
import type {
  ActiveWorkflowsQuery,
  CancelWorkflowResponse,
  ConsumeWorkflowResponse,
  JobStatus,
  JsonObject,
  ModelsResponse,
  ResumeWorkflowResponse,
  StartWorkflowRequest,
  StartWorkflowResponse,
  WorkflowJob,
  WorkflowListQuery,
  WorkflowListResponse,
  WorkflowTypesResponse,
} from './types.js';

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** Options of {@link startWorkflow}. */
export interface StartWorkflowOptions extends CallOptions {
  /**
   * The same key from the same user within 24 h returns the original job (`deduplicated: true`)
   * instead of starting a second one: pass one to make a retried click safe.
   */
  idempotencyKey?: string;
}

/**
 * Starts a workflow job. The answer comes once the job and its tasks are stored.
 *
 * ```ts
 * const { jobId } = await startWorkflow('character_views_generation', projectId, { characterName: '张三' });
 * ```
 */
export function startWorkflow(
  workflowType: string,
  projectId: number,
  params: JsonObject = {},
  options: StartWorkflowOptions = {},
): Promise<StartWorkflowResponse> {
  // Params are free-form JSON checked by the server against the workflow's schema.
  const body: StartWorkflowRequest = {
    workflowType,
    projectId,
    params: params as StartWorkflowRequest['params'],
  };
  if (options.idempotencyKey !== undefined) body.idempotencyKey = options.idempotencyKey;
  return request<StartWorkflowResponse>('POST', '/api/workflows', { body, signal: options.signal });
}

// Status polling sends the last ETag so an unchanged job costs the server a 304 and no body.
const MAX_CACHED_JOBS = 200;
const etagCache = new Map<number, { etag: string; job: WorkflowJob }>();
onConfigure(() => etagCache.clear());

/** A job with all its tasks (status, progress, results). */
export async function getWorkflowStatus(jobId: number, options: CallOptions = {}): Promise<WorkflowJob> {
  const cached = etagCache.get(jobId);
  const response = await send('GET', `/api/workflows/${encodeURIComponent(jobId)}`, {
    headers: cached ? { 'If-None-Match': cached.etag } : undefined,
    signal: options.signal,
  });
  if (response.status === 304 && cached) return cached.job;
  const job = (await response.json()) as WorkflowJob;
  const etag = response.headers.get('ETag');
  etagCache.delete(jobId);
  if (etag) {
    etagCache.set(jobId, { etag, job });
    if (etagCache.size > MAX_CACHED_JOBS) {
      const oldest = etagCache.keys().next();
      if (!oldest.done) etagCache.delete(oldest.value);
    }
  }
  return job;
}

/** Filters of {@link getWorkflowList}. */
export interface WorkflowListOptions extends CallOptions {
  projectId?: number;
  workflowType?: string;
  /** One status or several. */
  status?: JobStatus | JobStatus[];
  /** Default 50, at most 200. */
  limit?: number;
  /** Only jobs older than this cursor: the `id` of the last job of the previous page. */
  before?: WorkflowListQuery['before'];
}

/** The user's jobs, newest first, without their tasks. */
export function getWorkflowList(options: WorkflowListOptions = {}): Promise<WorkflowListResponse> {
  const status = Array.isArray(options.status) ? options.status.join(',') : options.status;
  const query: WorkflowListQuery = {
    projectId: options.projectId,
    workflowType: options.workflowType,
    status,
    limit: options.limit,
    before: options.before,
  };
  return request<WorkflowListResponse>('GET', '/api/workflows', { query, signal: options.signal });
}

/** Options of {@link getActiveWorkflows}. */
export interface ActiveWorkflowsOptions extends CallOptions {
  /** Default 5 (the server's). */
  limit?: number;
}

/**
 * The user's jobs in a project that still need the frontend: pending or running, or finished and
 * not yet consumed. Newest first.
 */
export function getActiveWorkflows(
  projectId: number,
  options: ActiveWorkflowsOptions = {},
): Promise<WorkflowListResponse> {
  const query: ActiveWorkflowsQuery = { projectId, limit: options.limit };
  return request<WorkflowListResponse>('GET', '/api/workflows/active', { query, signal: options.signal });
}

/** Marks a finished job as handled so it leaves {@link getActiveWorkflows}. Idempotent. */
export function consumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ConsumeWorkflowResponse> {
  return request<ConsumeWorkflowResponse>('POST', `/api/workflows/${encodeURIComponent(jobId)}/consume`, {
    signal: options.signal,
  });
}

/** Cancels a job and its unfinished tasks. Idempotent; a completed job answers 409. */
export function cancelWorkflow(jobId: number, options: CallOptions = {}): Promise<CancelWorkflowResponse> {
  return request<CancelWorkflowResponse>('POST', `/api/workflows/${encodeURIComponent(jobId)}/cancel`, {
    signal: options.signal,
  });
}

/**
 * Continues a failed or cancelled job from its first unfinished step, keeping the results of the
 * finished ones. Any other status answers 409.
 */
export function resumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ResumeWorkflowResponse> {
  return request<ResumeWorkflowResponse>('POST', `/api/workflows/${encodeURIComponent(jobId)}/resume`, {
    signal: options.signal,
  });
}

/** The workflow types the server runs, with their steps and parameter schemas. */
export function getWorkflowTypes(options: CallOptions = {}): Promise<WorkflowTypesResponse> {
  return request<WorkflowTypesResponse>('GET', '/api/workflows/types', { signal: options.signal });
}

/** The configured AI models (never their secrets). */
export function getModels(options: CallOptions = {}): Promise<ModelsResponse> {
  return request<ModelsResponse>('GET', '/api/models', { signal: options.signal });
}
