/**
 * `@nosyntask/client`: the TypeScript client of the nosyntask workflow engine and the React hooks of
 * the NanoStory frontend.
 */
export * from './core.js';
export {
  NosyntaskProvider,
  useNosyntaskClient,
  type NosyntaskProviderProps,
} from './hooks/context.js';
export type { RunStorage, StoredRun } from './hooks/taskStore.js';
export { useWorkflow, type UseWorkflowOptions, type UseWorkflowResult } from './hooks/useWorkflow.js';
export {
  useTaskRunner,
  type TaskState,
  type UseTaskRunnerOptions,
  type UseTaskRunnerResult,
} from './hooks/useTaskRunner.js';
export {
  useWorkflowTask,
  type UseWorkflowTaskOptions,
  type UseWorkflowTaskResult,
  type WorkflowTarget,
} from './hooks/useWorkflowTask.js';
export {
  useCharacterViewsGeneration,
  type CharacterViewsParams,
  type UseCharacterViewsGenerationProps,
  type UseCharacterViewsGenerationResult,
} from './hooks/useCharacterViewsGeneration.js';
export {
  useSceneImageGeneration,
  type SceneImageParams,
  type UseSceneImageGenerationProps,
  type UseSceneImageGenerationResult,
} from './hooks/useSceneImageGeneration.js';
export { useCharacterExtraction } from './hooks/useCharacterExtraction.js';
export { useSceneExtraction } from './hooks/useSceneExtraction.js';
export type { UseExtractionProps, UseExtractionResult } from './hooks/useExtraction.js';
