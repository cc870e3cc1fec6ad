import { act, renderHook, waitFor } from '@testing-library/react';
import type { ReactNode } from 'react';
import { describe, expect, it } from 'vitest';

import {
  getActiveWorkflows,
  getConfig,
  getWorkflowList,
  getWorkflowStatus,
  NosyntaskClient,
  NosyntaskProvider,
  startWorkflow,
  useTaskRunner,
  useWorkflow,
} from '../src/index';
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
      // @ts-expect-error -- `prompt` is required; the server refuses the start too.
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

  it('runTask twice on the same key starts one job, at once or while it runs', async () => {
    const { projectId } = await asNewUser();
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    const params = { description: 'once', modelName: MODELS.slowText };
    let ids: number[] = [];
    await act(async () => {
      ids = await Promise.all([
        result.current.runTask('k', 'prompt_generate', params),
        result.current.runTask('k', 'prompt_generate', params),
      ]);
    });
    expect(ids[1]).toBe(ids[0]);
    await waitFor(() => expect(result.current.tasks.k?.status).toMatch(/pending|running/));
    let again = 0;
    await act(async () => {
      again = await result.current.runTask('k', 'prompt_generate', params);
    });
    expect(again).toBe(ids[0]);
    expect((await getWorkflowList({ projectId })).jobs.map((j) => j.id)).toEqual([ids[0]]);

    // Once finished, the key starts anew.
    await waitFor(() => expect(result.current.tasks.k?.status).toBe('completed'), UNTIL_DONE);
    let next = 0;
    await act(async () => {
      next = await result.current.runTask('k', 'prompt_generate', { description: 'again' });
    });
    expect(next).not.toBe(ids[0]);
  });

  it('two components running the same key get the same job', async () => {
    const { projectId } = await asNewUser();
    const a = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    const b = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    const params = { description: 'shared key', modelName: MODELS.slowText };
    let ids: number[] = [];
    await act(async () => {
      ids = await Promise.all([
        a.result.current.runTask('scene_1', 'prompt_generate', params),
        b.result.current.runTask('scene_1', 'prompt_generate', params),
      ]);
    });
    expect(ids[1]).toBe(ids[0]);
    expect((await getWorkflowList({ projectId })).jobs).toHaveLength(1);
    await waitFor(() => expect(b.result.current.tasks.scene_1?.status).toBe('completed'), UNTIL_DONE);
  });

  it('a start whose answer was lost is repeated with the same idempotency key', async () => {
    const { projectId } = await asNewUser();
    const realFetch = getConfig().fetch as typeof fetch;
    let dropped = 0;
    const client = new NosyntaskClient({
      ...getConfig(),
      // The first start reaches the server, but its answer is lost on the way back.
      fetch: async (input, init) => {
        const response = await realFetch(input, init);
        if (init?.method === 'POST' && String(input).endsWith('/api/workflows') && dropped === 0) {
          dropped += 1;
          throw new TypeError('fetch failed');
        }
        return response;
      },
    });
    const wrapper = ({ children }: { children: ReactNode }) => (
      <NosyntaskProvider client={client}>{children}</NosyntaskProvider>
    );
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }), { wrapper });
    const params = { description: 'answer lost', modelName: MODELS.slowText };
    await act(async () => {
      await expect(result.current.runTask('lost', 'prompt_generate', params)).rejects.toMatchObject({
        code: 'network_error',
      });
    });
    let jobId = 0;
    await act(async () => {
      jobId = await result.current.runTask('lost', 'prompt_generate', params);
    });
    expect(dropped).toBe(1);
    expect((await getWorkflowList({ projectId })).jobs.map((j) => j.id)).toEqual([jobId]);
  });

  it('re-attaches a running key after a reload and delivers its result', async () => {
    const { projectId } = await asNewUser();
    // Each "page" has its own client (watchers, caches); localStorage outlives the reload.
    const page = () => {
      const client = new NosyntaskClient(getConfig());
      return ({ children }: { children: ReactNode }) => (
        <NosyntaskProvider client={client}>{children}</NosyntaskProvider>
      );
    };
    const before = renderHook(() => useTaskRunner({ interval: FAST, projectId }), { wrapper: page() });
    let jobId = 0;
    await act(async () => {
      jobId = await before.result.current.runTask('img_7', 'prompt_generate', {
        description: 'survives a reload',
        modelName: MODELS.slowText,
      });
    });
    before.unmount();

    const after = renderHook(() => useTaskRunner({ interval: FAST, projectId }), { wrapper: page() });
    await waitFor(() => expect(after.result.current.tasks.img_7?.jobId).toBe(jobId), UNTIL_DONE);
    await waitFor(() => expect(after.result.current.tasks.img_7?.status).toBe('completed'), UNTIL_DONE);
    expect(after.result.current.tasks.img_7?.result).toMatchObject({ prompt: expect.any(String) });
    // Delivered and consumed: a third page load has nothing to re-attach.
    await eventually(async () => (await getActiveWorkflows(projectId)).jobs.length === 0);
    after.unmount();
    const third = renderHook(() => useTaskRunner({ interval: FAST, projectId }), { wrapper: page() });
    await new Promise((r) => setTimeout(r, 200));
    expect(third.result.current.tasks).toEqual({});
    expect(Object.keys(localStorage).filter((k) => k.includes(`:${projectId}:`))).toEqual([]);
  });

  it('recoverTasks follows active jobs under the keys the caller maps them to', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'started elsewhere',
      storyboardId: 42,
      modelName: MODELS.slowText,
    });
    const { result } = renderHook(() => useTaskRunner({ interval: FAST, projectId }));
    await act(async () => {
      await result.current.recoverTasks(['prompt_generate'], (job) => `img_${job.input_params.storyboardId}`);
    });
    expect(result.current.tasks.img_42?.jobId).toBe(jobId);
    await waitFor(() => expect(result.current.tasks.img_42?.status).toBe('completed'), UNTIL_DONE);
  });

  it('one watcher per job however many components follow it', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const client = new NosyntaskClient(getConfig());
    const wrapper = ({ children }: { children: ReactNode }) => (
      <NosyntaskProvider client={client}>{children}</NosyntaskProvider>
    );
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'watched thrice',
      modelName: MODELS.slowText,
    });
    const began = Date.now();
    const { result } = renderHook(
      () => {
        const first = useWorkflow(jobId, { interval: FAST });
        const second = useWorkflow(jobId, { interval: FAST });
        const third = useWorkflow(jobId, { interval: FAST });
        const runner = useTaskRunner({ interval: FAST, projectId, consume: false });
        return { first, second, third, runner };
      },
      { wrapper },
    );
    await act(async () => {
      await result.current.runner.recoverTasks(['prompt_generate'], () => 'watched');
    });
    expect(client.watchedJobs).toBe(1);
    await waitFor(() => {
      for (const hook of [result.current.first, result.current.second, result.current.third]) {
        expect(hook.isCompleted).toBe(true);
      }
      expect(result.current.runner.tasks.watched?.status).toBe('completed');
    }, UNTIL_DONE);
    const reads = requests.filter((r) => r.endsWith(`/api/workflows/${jobId}`)).length;
    // One poller's worth of reads (four independent ones would make about four times as many).
    expect(reads).toBeLessThanOrEqual((Date.now() - began) / FAST + 3);
  });
});
