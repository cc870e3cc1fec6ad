// Type tests, compiled by `tsc --noEmit` in `npm test` (never run): each `@ts-expect-error` must
// meet an error, or the compilation fails; the other lines must compile.
import {
  getWorkflowStatus,
  isWorkflowOfType,
  NosyntaskClient,
  startWorkflow,
  useTaskRunner,
  type TypedWorkflowJob,
  type WorkflowJob,
  type WorkflowResult,
  type WorkflowType,
} from '../src/index';

export async function typeTests(projectId: number, jobId: number, anyJob: WorkflowJob) {
  // Params are checked per workflow type.
  await startWorkflow('character_views_generation', projectId, { characterName: '张三', style: '动漫风格' });
  await startWorkflow('character_views_generation', projectId, { characterName: '张三', characterId: 3, width: 512 });
  // Keys the workflow does not know are kept by the server, so they are allowed.
  await startWorkflow('frame_generation', projectId, { prompt: 'x', storyboardId: 1, episodeNumber: 2 });
  // Either of two params will do where the workflow says so (anyOf).
  await startWorkflow('scene_extraction', projectId, { scenes: [] });
  await startWorkflow('scene_extraction', projectId, { scriptContent: '...' });
  await startWorkflow('prompt_generate', null, { description: 'a model test outside any project' });

  // @ts-expect-error -- an unknown workflow type does not compile
  await startWorkflow('character_view_generation', projectId, { characterName: '张三' });
  // @ts-expect-error -- a required param is missing
  await startWorkflow('character_views_generation', projectId, { style: '动漫风格' });
  // @ts-expect-error -- a param of the wrong type
  await startWorkflow('character_views_generation', projectId, { characterName: '张三', width: '512' });
  // @ts-expect-error -- a param outside its enum
  await startWorkflow('prompt_generate', projectId, { description: 'x', kind: 'audio' });
  // @ts-expect-error -- neither of the two alternatives
  await startWorkflow('scene_extraction', projectId, { scriptId: 1 });
  const someString: string = 'prompt_generate';
  // @ts-expect-error -- a plain string is not a workflow type
  await startWorkflow(someString, projectId, { description: 'x' });
  await startWorkflow(someString as WorkflowType, projectId, { description: 'x' } as never);

  // result_data is typed for a typed job.
  const views = await getWorkflowStatus<'character_views_generation'>(jobId);
  const front: string | undefined = views.tasks[0]?.result_data?.frontViewUrl;
  const backPrompt: string | undefined = views.tasks[0]?.result_data?.prompts.back;
  const name: string = views.input_params.characterName;
  // @ts-expect-error -- not a field of the views result
  void views.tasks[0]?.result_data?.videoUrl;
  // @ts-expect-error -- frontViewUrl is a string
  const wrong: number | undefined = views.tasks[0]?.result_data?.frontViewUrl;

  // A multi-step workflow: the last step's result is the workflow's result.
  const shots: WorkflowResult<'storyboard_generation'>['scenes'] = [];
  const located: WorkflowResult<'scene_image_generation'>['imageUrl'] = '';
  const extracted: WorkflowResult<'script_to_storyboard'>['scenes'][number]['lighting'] = '';

  // The same through a client instance and a type guard.
  const client = new NosyntaskClient();
  const video = await client.getWorkflowStatus<'scene_video'>(jobId);
  const videoUrl: string | undefined = video.tasks[0]?.result_data?.videoUrl;
  if (isWorkflowOfType(anyJob, 'frame_generation')) {
    const start: string | undefined = anyJob.tasks[0]?.result_data?.startFrame;
    void start;
  }
  // Untyped jobs stay as loose as before (the seed's examples read result fields directly).
  const untyped: TypedWorkflowJob = anyJob;
  const loose: unknown = untyped.tasks[0]?.result_data?.anything;

  return { front, backPrompt, name, wrong, shots, located, extracted, videoUrl, loose };
}

export function useTypedRunner(projectId: number) {
  const { runTask } = useTaskRunner({ projectId });
  void runTask('img_1', 'frame_generation', { prompt: 'a beach', width: 640, height: 360 });
  // @ts-expect-error -- runTask checks the params of its workflow type too
  void runTask('img_1', 'frame_generation', { width: 640 });
  // @ts-expect-error -- and its type
  void runTask('img_1', 'frame_generations', { prompt: 'x' });
}
