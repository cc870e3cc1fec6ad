import { act, renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import {
  getActiveWorkflows,
  getWorkflowStatus,
  startWorkflow,
  useCharacterViewsGeneration,
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

describe('useCharacterViewsGeneration', () => {
  it('generates, hands the finished job to onComplete once, then consumes it', async () => {
    const { projectId } = await asNewUser();
    const onComplete = vi.fn();
    const { result } = renderHook(() =>
      useCharacterViewsGeneration({ characterId: '11', projectId, isActive: true, onComplete, interval: FAST }),
    );
    let jobId: number | null = null;
    await act(async () => {
      jobId = await result.current.startGeneration({ characterName: '张三', style: '动漫风格' });
    });
    expect(jobId).toEqual(expect.any(Number));
    expect(result.current.isGenerating).toBe(true);
    expect(result.current.generatingJobId).toBe(jobId);

    await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1), UNTIL_DONE);
    const done = onComplete.mock.calls[0]?.[0] as WorkflowJob;
    expect(done.status).toBe('completed');
    expect(done.input_params.characterId).toBe(11);
    expect(done.tasks[0]?.result_data).toMatchObject({
      frontViewUrl: expect.any(String),
      sideViewUrl: expect.any(String),
      backViewUrl: expect.any(String),
    });

    await waitFor(() => expect(result.current.isGenerating).toBe(false), UNTIL_DONE);
    expect(result.current.generatingJobId).toBeNull();
    await eventually(async () => !(await activeIds(projectId)).includes(jobId as unknown as number));
    expect((await getWorkflowStatus(jobId as unknown as number)).is_consumed).toBe(true);
    expect(onComplete).toHaveBeenCalledTimes(1);
  });

  it('resumes a running generation after a page reload (unmount and remount)', async () => {
    const { projectId } = await asNewUser();
    const props = { characterId: '21', projectId, isActive: true, interval: FAST };
    const beforeReload = vi.fn();
    const first = renderHook(() => useCharacterViewsGeneration({ ...props, onComplete: beforeReload }));
    let jobId = 0;
    await act(async () => {
      jobId = (await first.result.current.startGeneration({ characterName: 'Reloaded', modelName: MODELS.slowImage }))!;
    });
    await waitFor(() => expect(first.result.current.isRunning).toBe(true), UNTIL_DONE);
    first.unmount();
    expect(await activeIds(projectId)).toContain(jobId);

    // A job of another character is not this hook's business.
    const other = await startWorkflow('character_views_generation', projectId, {
      characterId: 22,
      characterName: 'Someone else',
    });

    const afterReload = vi.fn();
    const second = renderHook(() => useCharacterViewsGeneration({ ...props, onComplete: afterReload }));
    await waitFor(() => expect(second.result.current.generatingJobId).toBe(jobId), UNTIL_DONE);
    expect(second.result.current.isGenerating).toBe(true);
    await waitFor(() => expect(afterReload).toHaveBeenCalledTimes(1), UNTIL_DONE);
    expect((afterReload.mock.calls[0]?.[0] as WorkflowJob).id).toBe(jobId);
    expect(beforeReload).not.toHaveBeenCalled();
    await eventually(async () => !(await activeIds(projectId)).includes(jobId));
    await waitFor(() => expect(second.result.current.isGenerating).toBe(false), UNTIL_DONE);
    // The other character's job was left alone (still active, not consumed by this hook).
    await eventually(async () => (await getWorkflowStatus(other.jobId)).status === 'completed');
    expect((await getWorkflowStatus(other.jobId)).is_consumed).toBe(false);
    second.unmount();
  });

  it('hands over a job that finished while the page was closed', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('character_views_generation', projectId, {
      characterId: 31,
      characterName: 'Finished while away',
    });
    await eventually(async () => (await getWorkflowStatus(jobId)).status === 'completed');
    const onComplete = vi.fn();
    const { result } = renderHook(() =>
      useCharacterViewsGeneration({ characterId: '31', projectId, isActive: true, onComplete, interval: FAST }),
    );
    await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1), UNTIL_DONE);
    await eventually(async () => !(await activeIds(projectId)).includes(jobId));
    await waitFor(() => expect(result.current.isGenerating).toBe(false), UNTIL_DONE);
  });

  it('reuses the running job instead of starting a duplicate', async () => {
    const { projectId } = await asNewUser();
    const props = { characterId: '41', projectId, isActive: true, onComplete: () => {}, interval: FAST };
    const a = renderHook(() => useCharacterViewsGeneration(props));
    const b = renderHook(() => useCharacterViewsGeneration(props));
    let first: number | null = null;
    let second: number | null = null;
    let third: number | null = null;
    await act(async () => {
      first = await a.result.current.startGeneration({ characterName: 'Once', modelName: MODELS.slowImage });
    });
    await act(async () => {
      second = await a.result.current.startGeneration({ characterName: 'Once', modelName: MODELS.slowImage });
      third = await b.result.current.startGeneration({ characterName: 'Once', modelName: MODELS.slowImage });
    });
    expect(first).toEqual(expect.any(Number));
    expect(second).toBe(first);
    expect(third).toBe(first);
    const { jobs } = await getActiveWorkflows(projectId, { limit: 100 });
    expect(jobs.filter((job) => job.workflow_type === 'character_views_generation')).toHaveLength(1);
    a.unmount();
    b.unmount();
  });

  it('cancels the generation it follows', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() =>
      useCharacterViewsGeneration({ characterId: '51', projectId, isActive: true, onComplete: () => {}, interval: FAST }),
    );
    let jobId = 0;
    await act(async () => {
      jobId = (await result.current.startGeneration({ characterName: 'Cancelled', modelName: MODELS.slowImage }))!;
    });
    await act(async () => {
      await result.current.cancelGeneration();
    });
    await waitFor(() => expect(result.current.isGenerating).toBe(false), UNTIL_DONE);
    expect((await getWorkflowStatus(jobId)).status).toBe('cancelled');
    expect(await activeIds(projectId)).not.toContain(jobId);
  });

  it('leaves a job unconsumed when onComplete throws, so the next page load offers it again', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('character_views_generation', projectId, {
      characterId: 71,
      characterName: 'Handed over twice',
    });
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const failing = vi.fn(() => {
      throw new Error('the page could not reload its characters');
    });
    const props = { characterId: '71', projectId, isActive: true, interval: FAST };
    const first = renderHook(() => useCharacterViewsGeneration({ ...props, onComplete: failing }));
    await waitFor(() => expect(failing).toHaveBeenCalledTimes(1), UNTIL_DONE);
    await waitFor(() => expect(first.result.current.isGenerating).toBe(false), UNTIL_DONE);
    expect(errors).toHaveBeenCalled();
    errors.mockRestore();
    expect(await activeIds(projectId)).toContain(jobId);
    first.unmount();

    const working = vi.fn();
    renderHook(() => useCharacterViewsGeneration({ ...props, onComplete: working }));
    await waitFor(() => expect(working).toHaveBeenCalledTimes(1), UNTIL_DONE);
    await eventually(async () => !(await activeIds(projectId)).includes(jobId));
    expect(failing).toHaveBeenCalledTimes(1);
  });

  it('follows the selected character: switching drops the other one’s job and picks up its own', async () => {
    const { projectId } = await asNewUser();
    const mine = await startWorkflow('character_views_generation', projectId, {
      characterId: 82,
      characterName: 'Second',
      modelName: MODELS.slowImage,
    });
    const { result, rerender } = renderHook(
      ({ characterId }) =>
        useCharacterViewsGeneration({ characterId, projectId, isActive: true, onComplete: () => {}, interval: FAST }),
      { initialProps: { characterId: '81' as string | null } },
    );
    await act(async () => {
      await result.current.startGeneration({ characterName: 'First', modelName: MODELS.slowImage });
    });
    const first = result.current.generatingJobId;
    expect(first).not.toBe(mine.jobId);
    rerender({ characterId: '82' });
    await waitFor(() => expect(result.current.generatingJobId).toBe(mine.jobId), UNTIL_DONE);
    // The first character's job was not cancelled or consumed: it goes on, and stays active.
    expect(await activeIds(projectId)).toContain(first);
  });

  it('drops the tracked job when the project changes', async () => {
    const { projectId } = await asNewUser();
    const otherProject = projectId + 1;
    const { result, rerender } = renderHook(
      ({ project }) =>
        useCharacterViewsGeneration({ characterId: '91', projectId: project, isActive: true, onComplete: () => {}, interval: FAST }),
      { initialProps: { project: projectId } },
    );
    let jobId: number | null = null;
    await act(async () => {
      jobId = await result.current.startGeneration({ characterName: 'Stays', modelName: MODELS.slowImage });
    });
    expect(result.current.generatingJobId).toBe(jobId);
    rerender({ project: otherProject });
    await waitFor(() => expect(result.current.generatingJobId).toBeNull(), UNTIL_DONE);
    expect(result.current.isGenerating).toBe(false);
  });

  it('drops a tracked job the server no longer knows', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() =>
      useCharacterViewsGeneration({ characterId: '92', projectId, isActive: true, onComplete: () => {}, interval: FAST }),
    );
    await act(async () => {
      await result.current.startGeneration({ characterName: 'Vanishes', modelName: MODELS.slowImage });
    });
    // Another user's token: the job answers 404 from now on, as a pruned job would.
    await asNewUser();
    await waitFor(() => expect(result.current.generatingJobId).toBeNull(), UNTIL_DONE);
    expect(result.current.error).toBeTruthy();
  });

  it('does not poll or resume while inactive', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('character_views_generation', projectId, {
      characterId: 61,
      characterName: 'Hidden',
    });
    const onComplete = vi.fn();
    const { result, rerender } = renderHook(
      ({ isActive }) => useCharacterViewsGeneration({ characterId: '61', projectId, isActive, onComplete, interval: FAST }),
      { initialProps: { isActive: false } },
    );
    await eventually(async () => (await getWorkflowStatus(jobId)).status === 'completed');
    expect(requests.some((r) => r.includes('/active'))).toBe(false);
    expect(result.current.generatingJobId).toBeNull();
    rerender({ isActive: true });
    await waitFor(() => expect(onComplete).toHaveBeenCalledTimes(1), UNTIL_DONE);
  });
});
