import {
  consumeWorkflow,
  getActiveWorkflows,
  startWorkflow,
  type WorkflowParams,
  type WorkflowType,
} from '@nosyntask/client';

// Look for an active job before starting another one of the same type.
export async function generateOnce(
  projectId: number,
  params: WorkflowParams<'prompt_generate'>,
  setGeneratingJobId: (jobId: number) => void,
) {
  const { jobs } = await getActiveWorkflows(projectId);
  const existingJob = jobs.find((j) => j.workflow_type === 'prompt_generate');

  if (existingJob) {
    console.log('already running:', existingJob.id);
    setGeneratingJobId(existingJob.id);
    return;
  }

  const { jobId } = await startWorkflow('prompt_generate', projectId, params);
  setGeneratingJobId(jobId);
}

// Retry a failed job: consume it, then start again (or `resumeWorkflow(failedJobId)` to continue
// from the failed step, keeping finished steps' results).
export async function retry<T extends WorkflowType>(
  failedJobId: number,
  workflowType: T,
  projectId: number,
  params: WorkflowParams<T>,
  setGeneratingJobId: (jobId: number) => void,
) {
  await consumeWorkflow(failedJobId);
  const { jobId } = await startWorkflow(workflowType, projectId, params);
  setGeneratingJobId(jobId);
}
