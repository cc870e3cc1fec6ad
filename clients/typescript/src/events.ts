/**
 * The job event stream (`GET /api/workflows/{jobId}/events`), read with `fetch` rather than
 * `EventSource` because `EventSource` cannot send the `Authorization` header.
 */
import { createParser } from 'eventsource-parser';

import { ApiError, send } from './client.js';
import type { CallOptions } from './api.js';
import { isTerminalStatus, type WorkflowJob } from './types.js';

/**
 * Follows a job's Server-Sent Events: calls `onJob` with the full job on every change, and resolves
 * with the last job once the server ends the stream (after a terminal state) or `signal` aborts it.
 * Rejects with an {@link ApiError} when the stream cannot be opened or breaks off.
 */
export async function streamWorkflowEvents(
  jobId: number,
  onJob: (job: WorkflowJob) => void,
  options: CallOptions = {},
): Promise<WorkflowJob | null> {
  const response = await send('GET', `/api/workflows/${encodeURIComponent(jobId)}/events`, {
    headers: { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' },
    signal: options.signal,
  });
  if (!response.body) throw new ApiError('The event stream has no body', response.status, 'invalid_response');

  let last: WorkflowJob | null = null;
  let invalid: ApiError | null = null;
  const parser = createParser({
    onEvent(event) {
      if (event.event !== undefined && event.event !== 'job') return;
      try {
        last = JSON.parse(event.data) as WorkflowJob;
      } catch {
        invalid = new ApiError('The event stream sent invalid JSON', response.status, 'invalid_response');
        return;
      }
      onJob(last);
    },
  });

  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (invalid) throw invalid;
      if (last !== null && isTerminalStatus((last as WorkflowJob).status)) break;
    }
  } catch (error) {
    if (error instanceof ApiError || options.signal?.aborted) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ApiError(`The event stream broke off: ${reason}`, 0, 'network_error');
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return last;
}
