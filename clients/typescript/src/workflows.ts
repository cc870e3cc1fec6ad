/**
 * Per-workflow types: the params each workflow type takes and the `result_data` it produces.
 * (Placeholder until the generated catalogue lands.)
 */
import type { JsonObject, WorkflowJob } from './types.js';

export type WorkflowType = string;
export type WorkflowParams<T extends WorkflowType> = T extends string ? JsonObject : never;
export type TypedWorkflowJob<T extends WorkflowType = WorkflowType> = T extends string ? WorkflowJob : never;
