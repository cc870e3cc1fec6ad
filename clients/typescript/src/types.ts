/**
 * Public types of the client, derived from the generated OpenAPI types (`src/generated/api.ts`) by
 * path and status code rather than by schema name, so that a change of the server's wire format
 * shows up here as a type error.
 */
import type { paths } from './generated/api.js';

/** A JSON object as the server stores it (`input_params`, `result_data`). */
// The spec's examples read result fields directly (`result.frontViewUrl`), so values stay `any`.
export type JsonObject = Record<string, any>;

type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;

/** The JSON body of the 2xx answers of one operation. */
type Success<Op> = Op extends { responses: infer R }
  ? { [S in keyof R]: S extends 200 | 201 | 202 ? Json<R[S]> : never }[keyof R]
  : never;

type Operation<P extends keyof paths, M extends 'get' | 'post'> = NonNullable<paths[P][M]>;

/** The JSON request body of one operation. */
type RequestBody<Op> = Op extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

/** The query parameters of one operation. */
type Query<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

type Replace<T, V> = Omit<T, keyof V> & V;

type GeneratedJob = Success<Operation<'/api/workflows/{jobId}', 'get'>>;
type GeneratedTask = NonNullable<GeneratedJob['tasks']>[number];
type GeneratedJobSummary = Success<Operation<'/api/workflows', 'get'>>['jobs'][number];

/** One step of a job (a `generation_tasks` row), as `GET /api/workflows/{jobId}` returns it. */
export type WorkflowTask = Replace<
  GeneratedTask,
  { input_params?: JsonObject | null; result_data?: JsonObject | null }
>;

/** A job with its tasks, as `GET /api/workflows/{jobId}` returns it. */
export type WorkflowJob = Replace<
  GeneratedJob,
  { input_params: JsonObject; tasks: WorkflowTask[] }
>;

/** A job without its tasks, as the list and active endpoints return it. */
export type WorkflowJobSummary = Replace<GeneratedJobSummary, { input_params: JsonObject }>;

/**
 * What a task's or a job's model calls used and cost: `prompt_tokens`, `completion_tokens`,
 * `images`, `video_seconds`, `cost_micros` (millionths of the models' price currency; each
 * absent when not reported), and `models`, each model's part by its configured name. `null` on a
 * task or job when nothing was reported.
 */
export type WorkflowUsage = NonNullable<GeneratedTask['usage']>;

/** One model's part of a {@link WorkflowUsage}. */
export type WorkflowUsageAmounts = WorkflowUsage['models'][string];

/** `pending | running | completed | failed | cancelled`. */
export type JobStatus = GeneratedJob['status'];

/** A task's status: `pending | running | completed | failed | cancelled`. */
export type TaskStatus = GeneratedTask['status'];

/** The answer of `POST /api/workflows`. */
export type StartWorkflowResponse = Success<Operation<'/api/workflows', 'post'>>;

/** The request body of `POST /api/workflows`. */
export type StartWorkflowRequest = RequestBody<Operation<'/api/workflows', 'post'>>;

/** The answer of `GET /api/workflows` and `GET /api/workflows/active`. */
export interface WorkflowListResponse {
  jobs: WorkflowJobSummary[];
}

/** The query parameters of `GET /api/workflows`. */
export type WorkflowListQuery = Query<Operation<'/api/workflows', 'get'>>;

/** The query parameters of `GET /api/workflows/active`. */
export type ActiveWorkflowsQuery = Query<Operation<'/api/workflows/active', 'get'>>;

/** The answer of `POST /api/workflows/{jobId}/consume`. */
export type ConsumeWorkflowResponse = Success<Operation<'/api/workflows/{jobId}/consume', 'post'>>;

/** The answer of `POST /api/workflows/{jobId}/cancel`. */
export type CancelWorkflowResponse = Success<Operation<'/api/workflows/{jobId}/cancel', 'post'>>;

/** The answer of `POST /api/workflows/{jobId}/resume`. */
export type ResumeWorkflowResponse = Success<Operation<'/api/workflows/{jobId}/resume', 'post'>>;

/** The answer of `GET /api/workflows/types`. */
export type WorkflowTypesResponse = Success<Operation<'/api/workflows/types', 'get'>>;

/** One registered workflow type, with its steps and the JSON Schema of its params. */
export type WorkflowTypeInfo = WorkflowTypesResponse['workflows'][number];

/** The answer of `GET /api/models`. */
export type ModelsResponse = Success<Operation<'/api/models', 'get'>>;

/** The statuses after which a job no longer changes by itself. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

/** Whether a job (or task) status is terminal: `completed`, `failed` or `cancelled`. */
export function isTerminalStatus(status: JobStatus | TaskStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}
