import { getWorkflowStatus, startWorkflow, type WorkflowResult } from '@nosyntask/client';

// The params are checked against the workflow's own: a missing `characterName`, a `width` given as
// a string or a misspelt workflow type is a compile error.
export async function generateViews(projectId: number, characterId: number): Promise<WorkflowResult<'character_views_generation'> | null> {
  const { jobId } = await startWorkflow('character_views_generation', projectId, {
    characterId,
    characterName: '张三',
    style: '动漫风格',
  });

  // With the type argument, `result_data` has the workflow's result type.
  const job = await getWorkflowStatus<'character_views_generation'>(jobId);
  const views = job.tasks[0]?.result_data;
  if (job.status !== 'completed' || !views) return null;
  console.log('front view:', views.frontViewUrl, 'prompt:', views.prompts.front);
  return views;
}
