import { renderHook, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';

import { cancelWorkflow, getWorkflowStatus, startWorkflow, useWorkflow, type WorkflowJob } from '../src/index';
import { asNewUser, eventually } from './helpers';
import { MODELS } from './serverConfig';

const FAST = 50;
const UNTIL_DONE = { timeout: 20_000 };

describe('useWorkflow', () => {
  it('polls a job to completion and fires onCompleted once', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'a lighthouse' });
    const onCompleted = vi.fn();
    const onFailed = vi.fn();
    const onProgress = vi.fn();

    const { result } = renderHook(() => useWorkflow(jobId, { interval: FAST, onCompleted, onFailed, onProgress }));
    await waitFor(() => expect(result.current.isCompleted).toBe(true), UNTIL_DONE);

    expect(result.current.job?.status).toBe('completed');
    expect(result.current.job?.tasks[0]?.result_data?.prompt).toEqual(expect.any(String));
    expect(result.current).toMatchObject({ isRunning: false, isFailed: false, isCancelled: false, error: null });
    expect(onCompleted).toHaveBeenCalledTimes(1);
    expect(onCompleted.mock.calls[0]?.[0]).toMatchObject({ id: jobId, status: 'completed' });
    expect(onFailed).not.toHaveBeenCalled();
    expect(onProgress).toHaveBeenLastCalledWith(100, expect.objectContaining({ id: jobId }));

    // Polling stopped at the terminal state: no further reads, no second callback.
    const reads = requests.filter((r) => r.includes(`/api/workflows/${jobId}`)).length;
    await new Promise((r) => setTimeout(r, FAST * 6));
    expect(requests.filter((r) => r.includes(`/api/workflows/${jobId}`)).length).toBe(reads);
    expect(onCompleted).toHaveBeenCalledTimes(1);
  });

  it('reports a failed job through onFailed once, with its error message', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'doomed',
      modelName: MODELS.brokenText,
    });
    const onCompleted = vi.fn();
    const onFailed = vi.fn();
    const { result } = renderHook(() => useWorkflow(jobId, { interval: FAST, onCompleted, onFailed }));
    await waitFor(() => expect(result.current.isFailed).toBe(true), UNTIL_DONE);

    expect(onFailed).toHaveBeenCalledTimes(1);
    const failed = onFailed.mock.calls[0]?.[0] as WorkflowJob;
    expect(failed.status).toBe('failed');
    expect(failed.error_message).toBeTruthy();
    expect(failed.tasks[0]?.status).toBe('failed');
    expect(onCompleted).not.toHaveBeenCalled();
    expect(result.current.isRunning).toBe(false);
  });

  it('follows the event stream when asked', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'streamed' });
    const onCompleted = vi.fn();
    const { result } = renderHook(() => useWorkflow(jobId, { stream: true, interval: FAST, onCompleted }));
    await waitFor(() => expect(result.current.isCompleted).toBe(true), UNTIL_DONE);
    expect(onCompleted).toHaveBeenCalledTimes(1);
    expect(requests.some((r) => r.endsWith(`/api/workflows/${jobId}/events`))).toBe(true);
  });

  it('shows a cancelled job and fires onCancelled', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'to cancel',
      modelName: MODELS.slowText,
    });
    const onCancelled = vi.fn();
    const onCompleted = vi.fn();
    const { result } = renderHook(() => useWorkflow(jobId, { interval: FAST, onCancelled, onCompleted }));
    await waitFor(() => expect(result.current.isRunning).toBe(true), UNTIL_DONE);
    await cancelWorkflow(jobId);
    await waitFor(() => expect(result.current.isCancelled).toBe(true), UNTIL_DONE);
    expect(onCancelled).toHaveBeenCalledTimes(1);
    expect(onCompleted).not.toHaveBeenCalled();
  });

  it('keeps polling with new callbacks without restarting, and stops on unmount', async () => {
    const { projectId, requests } = await asNewUser({ countRequests: true });
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'slow one',
      modelName: MODELS.slowText,
    });
    const first = vi.fn();
    const second = vi.fn();
    const { result, rerender, unmount } = renderHook(
      ({ onCompleted }) => useWorkflow(jobId, { interval: FAST, onCompleted }),
      { initialProps: { onCompleted: first } },
    );
    await waitFor(() => expect(result.current.isRunning).toBe(true), UNTIL_DONE);
    rerender({ onCompleted: second });
    await waitFor(() => expect(result.current.isCompleted).toBe(true), UNTIL_DONE);
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);

    // A second job, unmounted while it runs: no more reads afterwards.
    const other = await startWorkflow('prompt_generate', projectId, {
      description: 'abandoned',
      modelName: MODELS.slowText,
    });
    const watched = renderHook(() => useWorkflow(other.jobId, { interval: FAST }));
    await waitFor(() => expect(watched.result.current.job).not.toBeNull(), UNTIL_DONE);
    watched.unmount();
    const reads = () => requests.filter((r) => r.endsWith(`/api/workflows/${other.jobId}`)).length;
    const atUnmount = reads();
    await new Promise((r) => setTimeout(r, FAST * 6));
    expect(reads()).toBe(atUnmount);
    unmount();
  });

  it('resets when jobId becomes null and exposes refresh', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'x' });
    await eventually(async () => (await getWorkflowStatus(jobId)).status === 'completed');
    const { result, rerender } = renderHook(({ id }) => useWorkflow(id, { interval: FAST }), {
      initialProps: { id: jobId as number | null },
    });
    await waitFor(() => expect(result.current.isCompleted).toBe(true), UNTIL_DONE);
    await result.current.refresh();
    expect(result.current.job?.id).toBe(jobId);
    rerender({ id: null });
    expect(result.current.job).toBeNull();
    expect(result.current.isCompleted).toBe(false);
  });

  it('exposes a 404 as error and stops polling', async () => {
    const { requests } = await asNewUser({ countRequests: true });
    const { result } = renderHook(() => useWorkflow(987_654_321, { interval: FAST }));
    await waitFor(() => expect(result.current.error).not.toBeNull(), UNTIL_DONE);
    expect(result.current.error).toMatchObject({ status: 404 });
    const count = requests.length;
    await new Promise((r) => setTimeout(r, FAST * 6));
    expect(requests.length).toBe(count);
  });
});
