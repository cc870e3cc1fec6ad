'use client';
import { useCallback } from 'react';

import type { JsonObject, WorkflowJob } from '../types.js';
import { numericId } from './ids.js';
import { useWorkflowTask } from './useWorkflowTask.js';

/** Props of {@link useSceneImageGeneration}. */
export interface UseSceneImageGenerationProps {
  /** The scene this hook follows; null: any scene of the project. */
  sceneId: string | null;
  projectId: number | null;
  /** Poll and resume only while true. */
  isActive: boolean;
  /** A scene image finished: reload the scenes. */
  onComplete: (job: WorkflowJob) => void;
  /** A generation failed (`job.error_message` says why). */
  onFailed?: (job: WorkflowJob) => void;
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the event stream instead of polling. */
  stream?: boolean;
}

/** Parameters of `scene_image_generation` (`sceneName` or `description` is required). */
export interface SceneImageParams extends JsonObject {
  sceneId?: number | string;
  sceneName?: string;
  description?: string;
  environment?: string;
  lighting?: string;
  mood?: string;
  style?: string;
  modelName?: string;
  width?: number;
  height?: number;
}

/** What {@link useSceneImageGeneration} returns. */
export interface UseSceneImageGenerationResult {
  isGenerating: boolean;
  generatingJobId: number | null;
  /** The scene whose image is being generated, as a string. */
  generatingSceneId: string | null;
  job: WorkflowJob | null;
  isRunning: boolean;
  isCompleted: boolean;
  isFailed: boolean;
  /** Picks up the next unfinished (or finished, unconsumed) scene image generation. */
  checkAndResumeNextWorkflow: () => Promise<void>;
  /**
   * Starts a scene image generation (pass `sceneId`), or follows the one already running for that
   * scene. Resolves with the job id, or null on error.
   */
  startGeneration: (params: SceneImageParams) => Promise<number | null>;
  /** Cancels the generation being followed. */
  cancelGeneration: () => Promise<void>;
  /** Overall progress 0–100. */
  progress: number;
  /** Why the last generation failed or could not start. */
  error: string | null;
}

/**
 * Scene image generation (`scene_image_generation`): tracks which scene is being generated, polls
 * it, picks it up again after a page reload, hands the finished job to `onComplete` and consumes it.
 */
export function useSceneImageGeneration(props: UseSceneImageGenerationProps): UseSceneImageGenerationResult {
  const task = useWorkflowTask({
    workflowType: 'scene_image_generation',
    projectId: props.projectId,
    isActive: props.isActive,
    target: { param: 'sceneId', value: numericId(props.sceneId) },
    interval: props.interval,
    stream: props.stream,
    onCompleted: (job) => props.onComplete(job),
    onFailed: props.onFailed,
  });
  const { start } = task;
  const startGeneration = useCallback((params: SceneImageParams) => start(params), [start]);
  return {
    isGenerating: task.isBusy,
    generatingJobId: task.jobId,
    generatingSceneId: task.targetId,
    job: task.job,
    isRunning: task.isRunning,
    isCompleted: task.isCompleted,
    isFailed: task.isFailed,
    checkAndResumeNextWorkflow: task.checkAndResume,
    startGeneration,
    cancelGeneration: task.cancel,
    progress: task.progress,
    error: task.error,
  };
}
