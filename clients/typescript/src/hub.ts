/**
 * One watcher per job, however many components follow it: subscribers share the watcher's reads,
 * which poll at the shortest interval any of them asked for and follow the event stream when any
 * of them asked for it.
 */
import type { WorkflowJob } from './types.js';
import type { Watcher, WatchOptions } from './watch.js';

/** One follower of a shared watcher. */
export interface Subscriber {
  /** Milliseconds between polls this subscriber wants. Default 2000. */
  interval?: number;
  /** Whether this subscriber wants the event stream. */
  stream?: boolean;
  onJob: (job: WorkflowJob) => void;
  onError?: (error: unknown) => void;
}

/** What `NosyntaskClient.watch` returns. */
export interface Subscription {
  /** Reads the job now for every subscriber; restarts a watcher halted by an error. */
  refresh(): Promise<void>;
  /** Leaves; the last subscriber to leave stops the watcher. */
  unsubscribe(): void;
}

interface Entry {
  watcher: Watcher;
  subscribers: Set<Subscriber>;
  last: WorkflowJob | null;
  /** The error that halted the watcher (a 404, a 401), replayed to late subscribers. */
  haltedBy: unknown;
}

type StartWatcher = (jobId: number, options: WatchOptions) => Watcher;

export class WatchHub {
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly start: StartWatcher) {}

  /** How many jobs have a watcher. */
  get size(): number {
    return this.entries.size;
  }

  subscribe(jobId: number, subscriber: Subscriber): Subscription {
    let entry = this.entries.get(jobId);
    if (entry) {
      entry.subscribers.add(subscriber);
      // A late subscriber sees what the others already saw, after its caller has returned.
      const { last, haltedBy } = entry;
      if (last !== null || haltedBy !== undefined) {
        queueMicrotask(() => {
          if (!entry?.subscribers.has(subscriber)) return;
          if (last !== null) subscriber.onJob(last);
          if (haltedBy !== undefined) subscriber.onError?.(haltedBy);
        });
      }
    } else {
      entry = this.open(jobId, subscriber);
    }
    const owner = entry;
    return {
      refresh: () => {
        owner.haltedBy = undefined;
        return owner.watcher.refresh();
      },
      unsubscribe: () => {
        if (!owner.subscribers.delete(subscriber) || owner.subscribers.size > 0) return;
        owner.watcher.stop();
        if (this.entries.get(jobId) === owner) this.entries.delete(jobId);
      },
    };
  }

  private open(jobId: number, first: Subscriber): Entry {
    const subscribers = new Set<Subscriber>([first]);
    const entry: Entry = { watcher: undefined as unknown as Watcher, subscribers, last: null, haltedBy: undefined };
    this.entries.set(jobId, entry);
    entry.watcher = this.start(jobId, {
      get interval() {
        let shortest: number | undefined;
        for (const s of subscribers) {
          if (s.interval !== undefined && (shortest === undefined || s.interval < shortest)) shortest = s.interval;
        }
        return shortest;
      },
      get stream() {
        for (const s of subscribers) if (s.stream) return true;
        return false;
      },
      onJob(job) {
        entry.last = job;
        entry.haltedBy = undefined;
        for (const s of [...subscribers]) s.onJob(job);
      },
      onError(error) {
        entry.haltedBy = isPermanent(error) ? error : undefined;
        for (const s of [...subscribers]) s.onError?.(error);
      },
    });
    return entry;
  }
}

function isPermanent(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'isRetryable' in error &&
    (error as { isRetryable: unknown }).isRetryable === false
  );
}
