'use client';
import { useCallback } from 'react';

import type { JsonObject, WorkflowJob } from '../types.js';
import { numericId } from './ids.js';
import { useWorkflowTask } from './useWorkflowTask.js';

/** Props of {@link useCharacterViewsGeneration}. */
export interface UseCharacterViewsGenerationProps {
  /** The character whose views this hook follows; null: any character of the project. */
  characterId: string | null;
  projectId: number | null;
  /** Poll and resume only while true (e.g. while the character modal is open). */
  isActive: boolean;
  /** A generation finished and its images are stored: reload the characters. */
  onComplete: (job: WorkflowJob) => void;
  /** A generation failed (`job.error_message` says why). */
  onFailed?: (job: WorkflowJob) => void;
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the event stream instead of polling. */
  stream?: boolean;
}

/** Parameters of `character_views_generation` (`characterName` is required). */
export interface CharacterViewsParams extends JsonObject {
  characterName: string;
  characterId?: number | string;
  appearance?: string;
  personality?: string;
  description?: string;
  style?: string;
  modelName?: string;
  width?: number;
  height?: number;
}

/** What {@link useCharacterViewsGeneration} returns. */
export interface UseCharacterViewsGenerationResult {
  isGenerating: boolean;
  generatingJobId: number | null;
  job: WorkflowJob | null;
  isRunning: boolean;
  isCompleted: boolean;
  isFailed: boolean;
  /** Picks up an unfinished (or finished, unconsumed) views generation of this character. */
  checkAndResumeNextWorkflow: () => Promise<void>;
  /**
   * Starts the three-view generation (the prop `characterId` is sent when `params` has none), or
   * follows the one already running for this character. Resolves with the job id, or null on error.
   */
  startGeneration: (params: CharacterViewsParams) => Promise<number | null>;
  /** Cancels the generation being followed. */
  cancelGeneration: () => Promise<void>;
  /** Overall progress 0–100. */
  progress: number;
  /** Why the last generation failed or could not start. */
  error: string | null;
}

/**
 * Character three-view generation (`character_views_generation`): polls the running generation,
 * picks it up again after a page reload, hands the finished job to `onComplete` and consumes it.
 */
export function useCharacterViewsGeneration(
  props: UseCharacterViewsGenerationProps,
): UseCharacterViewsGenerationResult {
  const task = useWorkflowTask({
    workflowType: 'character_views_generation',
    projectId: props.projectId,
    isActive: props.isActive,
    target: { param: 'characterId', value: numericId(props.characterId) },
    interval: props.interval,
    stream: props.stream,
    onCompleted: (job) => props.onComplete(job),
    onFailed: props.onFailed,
  });
  const { start } = task;
  const startGeneration = useCallback((params: CharacterViewsParams) => start(params), [start]);
  return {
    isGenerating: task.isBusy,
    generatingJobId: task.jobId,
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
