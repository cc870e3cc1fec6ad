/**
 * A client instance: one configuration (server, token), one ETag cache and one shared watcher per
 * job. The module-level functions (`configure`, `startWorkflow`, ...) and the React hooks use
 * {@link defaultClient} unless a `<NosyntaskProvider client={...}>` gives them another one.
 */
import { streamJobEvents, type StreamOptions } from './events.js';
import { request, send, type ClientConfig } from './http.js';
import { WatchHub, type Subscriber, type Subscription } from './hub.js';
import type {
  ActiveWorkflowsQuery,
  CancelWorkflowResponse,
  ConsumeWorkflowResponse,
  JobStatus,
  ModelsResponse,
  ResumeWorkflowResponse,
  StartWorkflowRequest,
  StartWorkflowResponse,
  WorkflowJob,
  WorkflowListQuery,
  WorkflowListResponse,
  WorkflowTypesResponse,
} from './types.js';
import { createWatcher, type Watcher, type WatchOptions } from './watch.js';
import type { TypedWorkflowJob, WorkflowParams, WorkflowType } from './workflows.js';

/** Options every call accepts. */
export interface CallOptions {
  /** Aborts the request. */
  signal?: AbortSignal;
}

/** Options of `startWorkflow`. */
export interface StartWorkflowOptions extends CallOptions {
  /**
   * The same key from the same user within 24 h returns the original job (`deduplicated: true`)
   * instead of starting a second one: pass one to make a retried click safe.
   */
  idempotencyKey?: string;
}

/** Filters of `getWorkflowList`. */
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

/** Options of `getActiveWorkflows`. */
export interface ActiveWorkflowsOptions extends CallOptions {
  /** Default 5 (the server's). */
  limit?: number;
}

// Status polling sends the last ETag so an unchanged job costs the server a 304 and no body.
const MAX_CACHED_JOBS = 200;

/** One connection to a nosyntask server. */
export class NosyntaskClient {
  private config: ClientConfig;
  private readonly listeners = new Set<() => void>();
  private readonly etagCache = new Map<number, { etag: string; job: WorkflowJob }>();
  private readonly hub = new WatchHub((jobId, options) => this.watchWorkflow(jobId, options));

  constructor(config: Partial<ClientConfig> = {}) {
    this.config = { baseUrl: '', getToken: () => null, ...config };
  }

  /** Changes the given options; the others keep their value. */
  configure(options: Partial<ClientConfig>): void {
    this.config = { ...this.config, ...options };
    this.etagCache.clear();
    for (const listener of this.listeners) listener();
  }

  /** The configuration in force. */
  getConfig(): Readonly<ClientConfig> {
    return this.config;
  }

  /** Registers a function called after every {@link configure}; returns its unregistration. */
  onConfigure(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Starts a workflow job; see the module-level `startWorkflow`. */
  startWorkflow<T extends WorkflowType>(
    workflowType: T,
    projectId: number | null,
    params: WorkflowParams<T>,
    options: StartWorkflowOptions = {},
  ): Promise<StartWorkflowResponse> {
    // The document's body is one schema per workflow type; `WorkflowParams<T>` already ties the
    // params to `workflowType` (generated from the same schemas).
    const body = {
      workflowType,
      projectId,
      params,
    } as unknown as StartWorkflowRequest;
    if (options.idempotencyKey !== undefined) body.idempotencyKey = options.idempotencyKey;
    return request<StartWorkflowResponse>(this.config, 'POST', '/api/workflows', { body, signal: options.signal });
  }

  /** A job with all its tasks (status, progress, results). */
  async getWorkflowStatus<T extends WorkflowType = WorkflowType>(
    jobId: number,
    options: CallOptions = {},
  ): Promise<TypedWorkflowJob<T>> {
    const cached = this.etagCache.get(jobId);
    const response = await send(this.config, 'GET', `/api/workflows/${encodeURIComponent(jobId)}`, {
      headers: cached ? { 'If-None-Match': cached.etag } : undefined,
      signal: options.signal,
    });
    if (response.status === 304 && cached) return cached.job as TypedWorkflowJob<T>;
    const job = (await response.json()) as WorkflowJob;
    const etag = response.headers.get('ETag');
    this.etagCache.delete(jobId);
    if (etag) {
      this.etagCache.set(jobId, { etag, job });
      if (this.etagCache.size > MAX_CACHED_JOBS) {
        const oldest = this.etagCache.keys().next();
        if (!oldest.done) this.etagCache.delete(oldest.value);
      }
    }
    return job as TypedWorkflowJob<T>;
  }

  /** The user's jobs, newest first, without their tasks. */
  getWorkflowList(options: WorkflowListOptions = {}): Promise<WorkflowListResponse> {
    const status = Array.isArray(options.status) ? options.status.join(',') : options.status;
    const query: WorkflowListQuery = {
      projectId: options.projectId,
      workflowType: options.workflowType,
      status,
      limit: options.limit,
      before: options.before,
    };
    return request<WorkflowListResponse>(this.config, 'GET', '/api/workflows', { query, signal: options.signal });
  }

  /** The user's jobs in a project that still need the frontend (unfinished or unconsumed). */
  getActiveWorkflows(projectId: number, options: ActiveWorkflowsOptions = {}): Promise<WorkflowListResponse> {
    const query: ActiveWorkflowsQuery = { projectId, limit: options.limit };
    return request<WorkflowListResponse>(this.config, 'GET', '/api/workflows/active', {
      query,
      signal: options.signal,
    });
  }

  /** Marks a finished job as handled so it leaves the active list. Idempotent. */
  consumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ConsumeWorkflowResponse> {
    return request<ConsumeWorkflowResponse>(this.config, 'POST', `/api/workflows/${encodeURIComponent(jobId)}/consume`, {
      signal: options.signal,
    });
  }

  /** Cancels a job and its unfinished tasks. Idempotent; a completed job answers 409. */
  cancelWorkflow(jobId: number, options: CallOptions = {}): Promise<CancelWorkflowResponse> {
    return request<CancelWorkflowResponse>(this.config, 'POST', `/api/workflows/${encodeURIComponent(jobId)}/cancel`, {
      signal: options.signal,
    });
  }

  /** Continues a failed or cancelled job from its first unfinished step. */
  resumeWorkflow(jobId: number, options: CallOptions = {}): Promise<ResumeWorkflowResponse> {
    return request<ResumeWorkflowResponse>(this.config, 'POST', `/api/workflows/${encodeURIComponent(jobId)}/resume`, {
      signal: options.signal,
    });
  }

  /** The workflow types the server runs, with their steps and parameter schemas. */
  getWorkflowTypes(options: CallOptions = {}): Promise<WorkflowTypesResponse> {
    return request<WorkflowTypesResponse>(this.config, 'GET', '/api/workflows/types', { signal: options.signal });
  }

  /** The configured AI models (never their secrets). */
  getModels(options: CallOptions = {}): Promise<ModelsResponse> {
    return request<ModelsResponse>(this.config, 'GET', '/api/models', { signal: options.signal });
  }

  /** Follows a job's Server-Sent Events; see the module-level `streamWorkflowEvents`. */
  streamWorkflowEvents(
    jobId: number,
    onJob: (job: WorkflowJob) => void,
    options: StreamOptions = {},
  ): Promise<WorkflowJob | null> {
    return streamJobEvents(this.config, jobId, onJob, options);
  }

  /** A watcher of its own for one job (see `watchWorkflow`); {@link watch} shares one instead. */
  watchWorkflow(jobId: number, options: WatchOptions): Watcher {
    return createWatcher(this, jobId, options);
  }

  /**
   * Follows a job through the one watcher this client keeps per job, however many callers watch
   * it: the first subscriber starts it, the last one's `unsubscribe()` stops it, and a late
   * subscriber gets the last state read at once.
   */
  watch(jobId: number, subscriber: Subscriber): Subscription {
    return this.hub.subscribe(jobId, subscriber);
  }

  /** How many jobs have a shared watcher running (for tests and diagnostics). */
  get watchedJobs(): number {
    return this.hub.size;
  }
}

/** The client the module-level functions and the hooks use unless a provider says otherwise. */
export const defaultClient = new NosyntaskClient();

/**
 * Sets the base URL, token source and other options of {@link defaultClient}, used by every
 * module-level API function and hook. Options not given keep their previous value.
 *
 * ```ts
 * configure({ baseUrl: 'http://localhost:8080', getToken: () => localStorage.getItem('token') });
 * ```
 */
export function configure(options: Partial<ClientConfig>): void {
  defaultClient.configure(options);
}

/** The configuration of {@link defaultClient}. */
export function getConfig(): Readonly<ClientConfig> {
  return defaultClient.getConfig();
}
