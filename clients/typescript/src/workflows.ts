/**
 * Per-workflow types, generated into `src/generated/workflows.ts`: the params each workflow type
 * takes (from the server's `paramsSchema`) and the `result_data` each of its steps leaves.
 *
 * ```ts
 * await startWorkflow('character_views_generation', projectId, { characterName: '张三' }); // checked
 * const job = await getWorkflowStatus<'character_views_generation'>(jobId);
 * job.tasks[0]?.result_data?.frontViewUrl; // string
 * ```
 */
import type { components, WorkflowCatalog } from './generated/workflows.js';
import type { WorkflowJob, WorkflowTask } from './types.js';

export type { WorkflowCatalog } from './generated/workflows.js';

/** The registered workflow types; any other string does not compile where a type is expected. */
export type WorkflowType = keyof WorkflowCatalog;

/** The params of workflow type `T` (unknown extra keys are allowed: the server keeps them). */
export type WorkflowParams<T extends WorkflowType> = WorkflowCatalog[T]['params'];

/** The `result_data` of each step of `T`, in step order. */
export type WorkflowStepResults<T extends WorkflowType> = WorkflowCatalog[T]['steps'];

/** The `result_data` of any step of `T`. */
export type WorkflowStepResult<T extends WorkflowType> = WorkflowStepResults<T>[number];

/** The `result_data` of the last step of `T`: the workflow's result (what `useTaskRunner` shows). */
export type WorkflowResult<T extends WorkflowType> = WorkflowStepResults<T> extends [...unknown[], infer Last]
  ? Last
  : never;

/** The named result schemas (`Shot`, `Character`, `CharacterViewsResult`, ...). */
export type WorkflowSchemas = components['schemas'];

/** A task of a job of type `T`, its `result_data` typed. */
export type TypedWorkflowTask<T extends WorkflowType> = Omit<WorkflowTask, 'result_data'> & {
  result_data?: WorkflowStepResult<T> | null;
};

/**
 * A job of type `T` with typed `input_params` and `result_data`. Without a type argument (or with
 * the union of all types) it is the untyped {@link WorkflowJob}.
 */
export type TypedWorkflowJob<T extends WorkflowType = WorkflowType> = [WorkflowType] extends [T]
  ? WorkflowJob
  : Omit<WorkflowJob, 'workflow_type' | 'input_params' | 'tasks'> & {
      workflow_type: T;
      input_params: WorkflowParams<T>;
      tasks: TypedWorkflowTask<T>[];
    };

/** Whether `job` is of workflow type `type`; narrows it to {@link TypedWorkflowJob}. */
export function isWorkflowOfType<T extends WorkflowType>(
  job: { workflow_type: string } | null | undefined,
  type: T,
): job is TypedWorkflowJob<T> & typeof job {
  return job?.workflow_type === type;
}
