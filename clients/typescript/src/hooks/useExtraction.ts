'use client';
import { useCallback } from 'react';

import type { JsonObject, WorkflowJob } from '../types.js';
import type { WorkflowType } from '../workflows.js';
import { useWorkflowTask } from './useWorkflowTask.js';

/** Props of {@link useCharacterExtraction} and {@link useSceneExtraction}. */
export interface UseExtractionProps {
  projectId: number | null;
  /** The script extracted from; jobs of other scripts are not followed. */
  scriptId: number | null;
  /** The storyboard scenes to extract from. */
  scenes: any[];
  /** Poll and resume only while true. */
  isActive: boolean;
  /** The extraction finished and its result is stored: reload. */
  onCompleted: (job: WorkflowJob) => void;
  /** The extraction failed (`job.error_message` says why). */
  onFailed?: (job: WorkflowJob) => void;
  /** Extract from the script text instead, when there are no scenes yet. */
  scriptContent?: string;
  /** The text model to use; the server's default otherwise. */
  modelName?: string;
  /** Milliseconds between polls. Default 2000. */
  interval?: number;
  /** Follow the event stream instead of polling. */
  stream?: boolean;
}

/** What {@link useCharacterExtraction} and {@link useSceneExtraction} return. */
export interface UseExtractionResult {
  isExtracting: boolean;
  /** Overall progress 0–100. */
  extractionProgress: number;
  /**
   * Starts the extraction, or follows the one already running for this script. Never rejects: a
   * failure to start is in `error`.
   */
  startExtraction: () => Promise<void>;
  /** Cancels the running extraction. */
  cancelExtraction: () => Promise<void>;
  /** The job being followed. */
  job: WorkflowJob | null;
  /** Why the last extraction failed or could not start. */
  error: string | null;
}

/** The shared body of the two extraction hooks. */
export function useExtraction(workflowType: WorkflowType, props: UseExtractionProps): UseExtractionResult {
  const task = useWorkflowTask({
    workflowType,
    projectId: props.projectId,
    isActive: props.isActive,
    target: { param: 'scriptId', value: props.scriptId },
    interval: props.interval,
    stream: props.stream,
    onCompleted: (job) => props.onCompleted(job),
    onFailed: props.onFailed,
  });
  const { start } = task;
  const { projectId, scriptId, scenes, scriptContent, modelName } = props;
  const startExtraction = useCallback(async () => {
    const params: JsonObject = { projectId, scriptId };
    if (scenes.length > 0 || !scriptContent) params.scenes = scenes;
    if (scriptContent) params.scriptContent = scriptContent;
    if (modelName) params.modelName = modelName;
    await start(params);
  }, [start, projectId, scriptId, scenes, scriptContent, modelName]);
  return {
    isExtracting: task.isBusy,
    extractionProgress: task.progress,
    startExtraction,
    cancelExtraction: task.cancel,
    job: task.job,
    error: task.error,
  };
}
