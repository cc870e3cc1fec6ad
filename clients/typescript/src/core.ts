/**
 * The framework-free part of `@nosyntask/client` (API functions, client instances, event stream,
 * watcher, types), for code that does not use React: `import { startWorkflow } from '@nosyntask/client/core'`.
 */
export { ApiError, isAbortError, isApiError, type ClientConfig, type TokenSource } from './http.js';
export {
  configure,
  defaultClient,
  getConfig,
  NosyntaskClient,
  type ActiveWorkflowsOptions,
  type CallOptions,
  type StartWorkflowOptions,
  type WorkflowListOptions,
} from './client.js';
export {
  cancelWorkflow,
  consumeWorkflow,
  getActiveWorkflows,
  getModels,
  getWorkflowList,
  getWorkflowStatus,
  getWorkflowTypes,
  resumeWorkflow,
  startWorkflow,
  streamWorkflowEvents,
  watchWorkflow,
} from './api.js';
export { DEFAULT_STREAM_IDLE_TIMEOUT_MS, type StreamOptions } from './events.js';
export type { Subscriber, Subscription } from './hub.js';
export {
  backoffDelay,
  DEFAULT_INTERVAL_MS,
  DEFAULT_MAX_RETRY_DELAY_MS,
  type Watcher,
  type WatchOptions,
} from './watch.js';
export * from './types.js';
export * from './workflows.js';
