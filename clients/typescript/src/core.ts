/**
 * The framework-free part of `@nosyntask/client` (API functions, event stream, watcher, types), for
 * code that does not use React: `import { startWorkflow } from '@nosyntask/client/core'`.
 */
export { ApiError, configure, getConfig, isApiError, type ClientConfig, type TokenSource } from './client.js';
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
  type ActiveWorkflowsOptions,
  type CallOptions,
  type StartWorkflowOptions,
  type WorkflowListOptions,
} from './api.js';
export { streamWorkflowEvents } from './events.js';
export { DEFAULT_INTERVAL_MS, watchWorkflow, type Watcher, type WatchOptions } from './watch.js';
export * from './types.js';
