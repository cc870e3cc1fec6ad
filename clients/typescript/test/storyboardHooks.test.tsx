import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import {
  getActiveWorkflows,
  useCharacterExtraction,
  useSceneExtraction,
  useSceneImageGeneration,
  type WorkflowJob,
} from '../src/index';
import { asNewUser, eventually } from './helpers';
import { MODELS } from './serverConfig';

const FAST = 50;
const UNTIL_DONE = { timeout: 20_000 };

async function activeIds(projectId: number): Promise<number[]> {
  const { jobs } = await getActiveWorkflows(projectId, { limit: 100 });
  return jobs.map((job) => job.id);
}

const SCENES = [
  {
    order: 1,
    description: 'Li Lei walks into the old library at dusk, carrying a lantern.',
    characters: ['Li Lei'],
    location: 'old library',
    dialogue: 'Is anyone here?',
  },
  {
    order: 2,
    description: 'Han Meimei steps out from behind a shelf, holding a map.',
    characters: ['Han Meimei', 'Li Lei'],
    location: 'old library',
    dialogue: 'I have been waiting for you.',
  },
];

describe('useSceneImageGeneration', () => {
  it('tells which scene is being generated', async () => {
    const { projectId } = await asNewUser();
    const onComplete = vi.fn();
    const { result } = renderHook(() =>
      useSceneImageGeneration({ sceneId: null, projectId, isActive: true, onComplete, interval: FAST }),
    );
    await act(async () => {
      await result.current.startGeneration({ sceneId: 5, sceneName: 'Harbour at dawn', modelName: MODELS.slowImage });
    });
    expect(result.current.generatingSceneId).toBe('5');
    expect(result.current.isGenerating).toBe(true);
    await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1), UNTIL_DONE);
    expect((onComplete.mock.calls[0]?.[0] as WorkflowJob).tasks.at(-1)?.result_data).toMatchObject({
      imageUrl: expect.any(String),
    });
    await waitFor(() => expect(result.current.generatingSceneId).toBeNull(), UNTIL_DONE);
  });
});

describe('useCharacterExtraction and useSceneExtraction', () => {
  it('extracts characters with progress and calls onCompleted once', async () => {
    const { projectId } = await asNewUser();
    const onCompleted = vi.fn();
    const { result } = renderHook(() =>
      useCharacterExtraction({ projectId, scriptId: 71, scenes: SCENES, isActive: true, onCompleted, interval: FAST }),
    );
    expect(result.current.isExtracting).toBe(false);
    await act(async () => {
      await result.current.startExtraction();
    });
    expect(result.current.isExtracting).toBe(true);
    await waitFor(() => expect(onCompleted).toHaveBeenCalledTimes(1), UNTIL_DONE);
    const job = onCompleted.mock.calls[0]?.[0] as WorkflowJob;
    expect(job.workflow_type).toBe('character_extraction');
    expect(job.tasks.at(-1)?.result_data?.characters).toEqual(expect.any(Array));
    await waitFor(() => expect(result.current.isExtracting).toBe(false), UNTIL_DONE);
    expect(result.current.error).toBeNull();
  });

  it('extracts scenes', async () => {
    const { projectId } = await asNewUser();
    const onCompleted = vi.fn();
    const { result } = renderHook(() =>
      useSceneExtraction({ projectId, scriptId: 81, scenes: SCENES, isActive: true, onCompleted, interval: FAST }),
    );
    await act(async () => {
      await result.current.startExtraction();
    });
    await waitFor(() => expect(onCompleted).toHaveBeenCalledTimes(1), UNTIL_DONE);
    expect((onCompleted.mock.calls[0]?.[0] as WorkflowJob).tasks.at(-1)?.result_data?.scenes).toEqual(
      expect.any(Array),
    );
    expect(result.current.extractionProgress).toBeGreaterThanOrEqual(0);
  });

  it('shows a failed extraction as error, calls onFailed and consumes the job', async () => {
    const { projectId } = await asNewUser();
    const onCompleted = vi.fn();
    const onFailed = vi.fn();
    const { result } = renderHook(() =>
      useCharacterExtraction({
        projectId,
        scriptId: 91,
        scenes: SCENES,
        modelName: MODELS.brokenText,
        isActive: true,
        onCompleted,
        onFailed,
        interval: FAST,
      }),
    );
    await act(async () => {
      await result.current.startExtraction();
    });
    const jobId = result.current.job?.id ?? (await getActiveWorkflows(projectId)).jobs[0]?.id;
    await waitFor(() => expect(onFailed).toHaveBeenCalledTimes(1), UNTIL_DONE);
    expect(onCompleted).not.toHaveBeenCalled();
    await waitFor(() => expect(result.current.isExtracting).toBe(false), UNTIL_DONE);
    expect(result.current.error).toBeTruthy();
    await eventually(async () => !(await activeIds(projectId)).includes(jobId as number));
  });

  it('reports a start the server refuses in error without throwing', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() =>
      useSceneExtraction({ projectId, scriptId: 101, scenes: [], isActive: true, onCompleted: () => {}, interval: FAST }),
    );
    await act(async () => {
      await result.current.startExtraction();
    });
    expect(result.current.error).toBeTruthy();
    expect(result.current.isExtracting).toBe(false);
  });
});
