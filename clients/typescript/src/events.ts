/**
 * The job event stream (`GET /api/workflows/{jobId}/events`), read with `fetch` rather than
 * `EventSource` because `EventSource` cannot send the `Authorization` header.
 */
import { createParser } from 'eventsource-parser';

import { ApiError, send, type ClientConfig } from './http.js';
import { isTerminalStatus, type WorkflowJob } from './types.js';

/**
 * The server writes a keep-alive comment after 15 s of silence (`events_keepalive_secs`), so a
 * stream that sends nothing for longer is held back by something in between (a buffering proxy).
 */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 20_000;

/** Options of `streamWorkflowEvents`. */
export interface StreamOptions {
  /** Aborts the stream. */
  signal?: AbortSignal;
  /**
   * Milliseconds without a byte (event or keep-alive), from the request on, after which the stream
   * is given up with an `ApiError` of code `stream_timeout`. Default 20,000; 0 waits forever.
   */
  idleTimeout?: number;
}

/**
 * Follows a job's Server-Sent Events with the given configuration (`streamWorkflowEvents` and
 * `NosyntaskClient.streamWorkflowEvents` call this).
 */
export async function streamJobEvents(
  config: ClientConfig,
  jobId: number,
  onJob: (job: WorkflowJob) => void,
  options: StreamOptions = {},
): Promise<WorkflowJob | null> {
  const idleTimeout = options.idleTimeout ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
  // Our own controller, so that silence can abort the request as the caller's signal would.
  const controller = new AbortController();
  const abort = () => controller.abort();
  options.signal?.addEventListener('abort', abort, { once: true });
  if (options.signal?.aborted) controller.abort();
  let silent = false;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  const heard = () => {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    if (idleTimeout > 0) {
      idleTimer = setTimeout(() => {
        silent = true;
        controller.abort();
      }, idleTimeout);
    }
  };
  const silence = () =>
    new ApiError(`The event stream sent nothing for ${idleTimeout} ms`, 0, 'stream_timeout');

  heard();
  try {
    let response: Response;
    try {
      response = await send(config, 'GET', `/api/workflows/${encodeURIComponent(jobId)}/events`, {
        headers: { Accept: 'text/event-stream', 'Cache-Control': 'no-cache' },
        signal: controller.signal,
      });
    } catch (error) {
      if (silent) throw silence();
      throw error;
    }
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
        heard();
        parser.feed(decoder.decode(value, { stream: true }));
        if (invalid) throw invalid;
        if (last !== null && isTerminalStatus((last as WorkflowJob).status)) break;
      }
    } catch (error) {
      if (silent) throw silence();
      if (error instanceof ApiError || options.signal?.aborted) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new ApiError(`The event stream broke off: ${reason}`, 0, 'network_error');
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return last;
  } finally {
    if (idleTimer !== undefined) clearTimeout(idleTimer);
    options.signal?.removeEventListener('abort', abort);
  }
}
