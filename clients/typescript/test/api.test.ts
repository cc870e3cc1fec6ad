import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';

import {
  ApiError,
  cancelWorkflow,
  configure,
  consumeWorkflow,
  getActiveWorkflows,
  getModels,
  getWorkflowList,
  getWorkflowStatus,
  getWorkflowTypes,
  isTerminalStatus,
  resumeWorkflow,
  startWorkflow,
  streamWorkflowEvents,
  type WorkflowJob,
} from '../src/index';
import { asNewUser, eventually, tokenFor } from './helpers';
import { MODELS } from './serverConfig';

async function finished(jobId: number): Promise<WorkflowJob> {
  return eventually(async () => {
    const job = await getWorkflowStatus(jobId);
    return isTerminalStatus(job.status) ? job : null;
  });
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe('API functions against the real server', () => {
  it('lists the workflow types and models', async () => {
    await asNewUser();
    const { workflows } = await getWorkflowTypes();
    const prompt = workflows.find((w) => w.type === 'prompt_generate');
    expect(prompt).toBeDefined();
    expect(prompt?.totalSteps).toBe(prompt?.steps.length);
    const { models } = await getModels();
    expect(models.map((m) => m.name)).toContain(MODELS.slowText);
  });

  it('starts a job, reads it to completion with its result, then consumes it', async () => {
    const { userId, projectId } = await asNewUser();
    const started = await startWorkflow('prompt_generate', projectId, { description: 'a red fox in snow' });
    expect(started.jobId).toBeGreaterThan(0);
    expect(started.deduplicated).toBe(false);
    expect(started.tasks).toEqual([expect.objectContaining({ stepIndex: 0, status: 'pending' })]);

    const job = await finished(started.jobId);
    expect(job).toMatchObject({
      id: started.jobId,
      user_id: userId,
      project_id: projectId,
      workflow_type: 'prompt_generate',
      status: 'completed',
      progress: 100,
      is_consumed: false,
    });
    expect(job.input_params.description).toBe('a red fox in snow');
    expect(typeof job.tasks[0]?.result_data?.prompt).toBe('string');

    // Reading again answers from the ETag cache path (a 304) with the same job.
    expect(await getWorkflowStatus(started.jobId)).toEqual(job);

    const active = await getActiveWorkflows(projectId);
    expect(active.jobs.map((j) => j.id)).toContain(started.jobId);
    expect(await consumeWorkflow(started.jobId)).toEqual({ success: true });
    expect(await consumeWorkflow(started.jobId)).toEqual({ success: true });
    expect((await getActiveWorkflows(projectId)).jobs.map((j) => j.id)).not.toContain(started.jobId);
    expect((await getWorkflowStatus(started.jobId)).is_consumed).toBe(true);
  });

  it('filters the job list by project, type and status', async () => {
    const { projectId } = await asNewUser();
    const a = await startWorkflow('prompt_generate', projectId, { description: 'one' });
    const b = await startWorkflow('prompt_generate', projectId, { description: 'two' });
    await finished(a.jobId);
    await finished(b.jobId);
    const { jobs } = await getWorkflowList({ projectId, workflowType: 'prompt_generate', status: ['completed'] });
    expect(jobs.map((j) => j.id)).toEqual([b.jobId, a.jobId]);
    expect((await getWorkflowList({ projectId, status: 'failed' })).jobs).toEqual([]);
    expect((await getWorkflowList({ projectId, limit: 1 })).jobs).toHaveLength(1);
  });

  it('deduplicates a start with the same idempotency key', async () => {
    const { projectId } = await asNewUser();
    const key = `key-${projectId}`;
    const first = await startWorkflow('prompt_generate', projectId, { description: 'x' }, { idempotencyKey: key });
    const second = await startWorkflow('prompt_generate', projectId, { description: 'x' }, { idempotencyKey: key });
    expect(second.jobId).toBe(first.jobId);
    expect(second.deduplicated).toBe(true);
  });

  it('cancels a running job, refuses to cancel a completed one, and resumes a cancelled one', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, {
      description: 'slow',
      modelName: MODELS.slowText,
    });
    expect(await cancelWorkflow(jobId)).toEqual({ jobId, status: 'cancelled' });
    expect(await cancelWorkflow(jobId)).toEqual({ jobId, status: 'cancelled' });
    const cancelled = await getWorkflowStatus(jobId);
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.tasks.every((t) => t.status === 'cancelled')).toBe(true);

    expect(await resumeWorkflow(jobId)).toEqual({ jobId, status: 'resuming' });
    const resumed = await finished(jobId);
    expect(resumed.status).toBe('completed');

    const conflict = await rejection(cancelWorkflow(jobId));
    expect(conflict.status).toBe(409);
    expect(conflict.code).toBeTruthy();
    expect((await rejection(resumeWorkflow(jobId))).status).toBe(409);
  });

  it('carries the server message and code of 422, 404 and 401 answers', async () => {
    const { projectId } = await asNewUser();
    // @ts-expect-error -- `description` is required; the server says so too.
    const invalid = await rejection(startWorkflow('prompt_generate', projectId, {}));
    expect(invalid.status).toBe(422);
    expect(invalid.message).toContain('description');
    expect(invalid.code).toMatch(/^[a-z_]+$/);

    // @ts-expect-error -- an unknown workflow type does not compile; the server refuses it too.
    const unknown = await rejection(startWorkflow('no_such_workflow', projectId, {}));
    expect([404, 422]).toContain(unknown.status);

    // Another user's job does not exist for this user.
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'mine' });
    await asNewUser();
    const hidden = await rejection(getWorkflowStatus(jobId));
    expect(hidden.status).toBe(404);
    expect(hidden.code).toMatch(/^[a-z_]+$/);
    expect((await rejection(consumeWorkflow(jobId))).status).toBe(404);

    configure({ getToken: () => null });
    const anonymous = await rejection(getWorkflowTypes());
    expect(anonymous.status).toBe(401);
    configure({ getToken: () => 'not-a-jwt' });
    expect((await rejection(getWorkflowTypes())).status).toBe(401);
  });

  it('reports an unreachable server as a network_error', async () => {
    configure({ baseUrl: 'http://127.0.0.1:1', getToken: () => tokenFor(1) });
    const error = await rejection(getWorkflowTypes());
    expect(error.status).toBe(0);
    expect(error.code).toBe('network_error');
    expect(error.isRetryable).toBe(true);
    configure({ baseUrl: inject('serverUrl') });
  });

  it('follows the event stream until the job is finished', async () => {
    const { projectId } = await asNewUser();
    const { jobId } = await startWorkflow('prompt_generate', projectId, { description: 'streamed' });
    const seen: WorkflowJob[] = [];
    const last = await streamWorkflowEvents(jobId, (job) => seen.push(job));
    expect(last?.status).toBe('completed');
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toEqual(last);
    expect(last?.tasks[0]?.result_data).toBeTruthy();
  });
});
