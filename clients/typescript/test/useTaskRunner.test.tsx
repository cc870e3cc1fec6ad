import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it } from 'vitest';

import { getActiveWorkflows, getWorkflowStatus, useTaskRunner } from '../src/index';
import { asNewUser, eventually } from './helpers';
import { MODELS } from './serverConfig';

const FAST = 50;
const UNTIL_DONE = { timeout: 20_000 };

describe('useTaskRunner', () => {
  it('runs several keyed tasks at once and keeps their states apart', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));

    let ids: number[] = [];
    await act(async () => {
      ids = await Promise.all([
        result.current.runTask('img_1', 'frame_generation', { prompt: 'a beach at dawn', width: 640, height: 360 }),
        result.current.runTask('img_2', 'frame_generation', { prompt: 'a city at night', width: 640, height: 360 }),
        result.current.runTask('slow', 'prompt_generate', { description: 'slow', modelName: MODELS.slowText }),
      ]);
    });
    expect(new Set(ids).size).toBe(3);
    expect(Object.keys(result.current.tasks).sort()).toEqual(['img_1', 'img_2', 'slow']);
    expect(result.current.tasks.img_1?.jobId).toBe(ids[0]);
    expect(result.current.isRunning).toBe(true);

    await waitFor(() => {
      for (const key of ['img_1', 'img_2', 'slow']) expect(result.current.tasks[key]?.status).toBe('completed');
    }, UNTIL_DONE);
    expect(result.current.isRunning).toBe(false);
    for (const key of ['img_1', 'img_2']) {
      const task = result.current.tasks[key];
      expect(task?.progress).toBe(100);
      expect(task?.error).toBeNull();
      expect(task?.result).toMatchObject({ startFrame: expect.any(String), endFrame: expect.any(String) });
    }
    expect(result.current.tasks.slow?.result).toMatchObject({ prompt: expect.any(String) });
    expect(result.current.tasks.img_1?.result).not.toEqual(result.current.tasks.img_2?.result);

    act(() => result.current.clearTask('img_1'));
    expect(result.current.tasks.img_1).toBeUndefined();
    expect(Object.keys(result.current.tasks).sort()).toEqual(['img_2', 'slow']);

    // Finished tasks are consumed once their result is in `tasks`.
    await eventually(async () => {
      const { jobs } = await getActiveWorkflows(projectId, { limit: 50 });
      return jobs.every((job) => !ids.includes(job.id));
    });
  });

  it('reports a failed task with its error', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    await act(async () => {
      await result.current.runTask('broken', 'prompt_generate', {
        description: 'never',
        modelName: MODELS.brokenText,
      });
    });
    await waitFor(() => expect(result.current.tasks.broken?.status).toBe('failed'), UNTIL_DONE);
    expect(result.current.tasks.broken?.error).toBeTruthy();
    expect(result.current.tasks.broken?.result).toBeNull();
    expect(result.current.isRunning).toBe(false);
  });

  it('rejects runTask with the server error when the params are invalid', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    await act(async () => {
      await expect(result.current.runTask('bad', 'frame_generation', {})).rejects.toMatchObject({
        status: 422,
        message: expect.stringContaining('prompt'),
      });
    });
    expect(result.current.tasks.bad).toBeUndefined();
  });

  it('stopPolling keeps the last state; the job goes on on the server', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    let jobId = 0;
    await act(async () => {
      jobId = await result.current.runTask('s', 'prompt_generate', { description: 'x', modelName: MODELS.slowText });
    });
    act(() => result.current.stopPolling('s'));
    const frozen = result.current.tasks.s;
    expect(frozen?.status).toMatch(/pending|running/);
    await eventually(async () => (await getWorkflowStatus(jobId)).status === 'completed');
    expect(result.current.tasks.s).toEqual(frozen);
  });
});
