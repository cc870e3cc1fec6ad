/**
 * What `useTaskRunner` remembers per task key across reloads: the idempotency key of the key's
 * current start and, once the server answered, its job id. Kept in `localStorage` when there is
 * one (so a reload and other tabs see it), else in memory for the page's life.
 */

/** The remembered start of one task key. */
export interface StoredRun {
  workflowType: string;
  /** Sent with the start, so that a repeated start of the same key returns the same job. */
  idempotencyKey: string;
  /** Known once the server answered the start. */
  jobId?: number;
  /** Epoch milliseconds of the start (the server keeps idempotency keys for 24 h). */
  startedAt: number;
}

/** The subset of the DOM `Storage` interface the runner uses. */
export type RunStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem' | 'key' | 'length'>;

const PREFIX = 'nosyntask:task:';
/** The server forgets idempotency keys after 24 h; an older start is not reused. */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;

class MemoryStorage implements RunStorage {
  private readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
}

const memory = new MemoryStorage();

/** `localStorage` when the page has a usable one, else a per-page memory store. */
export function defaultRunStorage(): RunStorage {
  try {
    const storage = globalThis.localStorage;
    if (storage) {
      const probe = `${PREFIX}probe`;
      storage.setItem(probe, '1');
      storage.removeItem(probe);
      return storage;
    }
  } catch {
    // Private mode, a sandboxed iframe, or server rendering: fall through.
  }
  return memory;
}

function storageKey(projectId: number, key: string): string {
  return `${PREFIX}${projectId}:${key}`;
}

/** The remembered runs of one project, read and written through a {@link RunStorage}. */
export class TaskStore {
  constructor(
    private readonly storage: RunStorage,
    private readonly projectId: number,
  ) {}

  get(key: string): StoredRun | null {
    try {
      const raw = this.storage.getItem(storageKey(this.projectId, key));
      if (!raw) return null;
      const run = JSON.parse(raw) as StoredRun;
      return typeof run.idempotencyKey === 'string' && typeof run.workflowType === 'string' ? run : null;
    } catch {
      return null;
    }
  }

  set(key: string, run: StoredRun): void {
    try {
      this.storage.setItem(storageKey(this.projectId, key), JSON.stringify(run));
    } catch {
      // A full storage only costs the reload re-attach.
    }
  }

  remove(key: string): void {
    try {
      this.storage.removeItem(storageKey(this.projectId, key));
    } catch {
      // Nothing to do.
    }
  }

  /** Every task key of this project with a remembered run. */
  entries(): [string, StoredRun][] {
    const prefix = storageKey(this.projectId, '');
    const keys: string[] = [];
    for (let i = 0; i < this.storage.length; i += 1) {
      const name = this.storage.key(i);
      if (name?.startsWith(prefix)) keys.push(name.slice(prefix.length));
    }
    const found: [string, StoredRun][] = [];
    for (const key of keys) {
      const run = this.get(key);
      if (run) found.push([key, run]);
    }
    return found;
  }
}

/** A new idempotency key. */
export function newIdempotencyKey(): string {
  const random = globalThis.crypto?.randomUUID?.();
  return `task-${random ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`}`;
}
