// The framework-free half of the React bindings (the zustand `vanilla` / TanStack `query-core` split): a store
// that owns at most one RecordSync at a time, creates it lazily on the client, and exposes `subscribe` and
// `getSnapshot` in the shape `useSyncExternalStore` wants. Nothing here imports React.

import { RecordSync } from "../index.js";
import type { FailedChange, PendingChange, RecordSyncOptions, SyncStats } from "../index.js";

/** The methods of a RecordSync instance the bindings use (a real `RecordSync`, or any object of this shape). */
export type RecordSyncLike = Pick<
  RecordSync,
  | "queueChange"
  | "queueCriticalChange"
  | "queueHighChange"
  | "queueMediumChange"
  | "queueLowChange"
  | "forceSyncAll"
  | "stats"
  | "subscribe"
  | "pendingChanges"
  | "failedChanges"
  | "retryFailed"
  | "discardFailed"
  | "pause"
  | "resume"
  | "setAccessToken"
  | "destroy"
  | "onConflict"
  | "conflicts"
  | "clearConflicts"
  | "clearPersisted"
> &
  // Issue 11: only instances made with the `pull` option use them (useRemoteChanges).
  Partial<Pick<RecordSync, "onRemoteChanges" | "pull">>;

const online = (): boolean => (typeof navigator !== "undefined" && typeof navigator.onLine === "boolean" ? navigator.onLine : true);

/**
 * What the bindings show before an instance exists: during server-side rendering, and in the first render on the
 * client (instances are only ever created after React commits, never while it renders).
 */
export const INITIAL_STATS: SyncStats = Object.freeze({
  totalChanges: 0,
  mergedChanges: 0,
  successfulSyncs: 0,
  failedSyncs: 0,
  conflicts: 0,
  retries: 0,
  requests: 0,
  pending: 0,
  pendingByPriority: Object.freeze({ critical: 0, high: 0, medium: 0, low: 0 }),
  inFlight: 0,
  isOnline: true,
  isProcessing: false,
  isPaused: false,
  needsAuth: false,
  lastError: null,
  latencyMs: null,
  durable: false,
  restoring: false,
  user: null,
  lastPullAt: null,
  realtimeConnected: false,
  remoteChangesReceived: 0,
  leader: true,
});

const EMPTY: readonly never[] = Object.freeze([]);

export interface RecordSyncStore {
  /** The instance, created on first use when the store owns its options. Throws after `dispose()`. */
  get(): RecordSyncLike;
  /** The instance if one exists now, without creating it. */
  peek(): RecordSyncLike | null;
  /** Subscribes to stats changes; creates the instance if needed. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
  /** The current stats: the same object until something changes. */
  getSnapshot(): SyncStats;
  /** What the server renders: the initial stats. */
  getServerSnapshot(): SyncStats;
  /** The pending changes, computed at most once per stats snapshot. */
  getPendingChanges(): readonly PendingChange[];
  /** The failed changes, computed at most once per stats snapshot. */
  getFailedChanges(): readonly FailedChange[];
  /**
   * Marks the store as in use (a mounted provider) and creates the instance if it has none: a mounted provider's
   * instance restores and sends the stored queue and runs its catch-up whether or not anything subscribes yet.
   * Cancels a destruction `release()` scheduled.
   */
  retain(): void;
  /**
   * Ends one `retain()`. When none is left, the instance the store created is destroyed at the end of the current
   * task, unless something retains or subscribes to the store again before that (a StrictMode remount does, and
   * keeps the same instance). After that, `get()` throws; a new subscriber (a remount) creates a new instance.
   */
  release(): void;
}

/** Whether `value` can be observed as a RecordSync (the provider's `instance` prop is checked with it too). */
export function isInstance(value: unknown): value is RecordSyncLike {
  const candidate = value as Partial<RecordSyncLike> | null;
  return typeof candidate === "object" && candidate !== null && typeof candidate.subscribe === "function" && typeof candidate.stats === "function";
}

/**
 * A store over a RecordSync.
 *
 * - `createRecordSyncStore({ options })`: the store owns the instance. It creates it on first use, destroys it on
 *   `release()`, and creates a fresh one if used again afterwards (what a StrictMode remount does).
 * - `createRecordSyncStore({ instance })`: the store only observes; the caller owns and destroys the instance.
 */
export function createRecordSyncStore(
  source: { options: RecordSyncOptions; instance?: undefined } | { instance: RecordSyncLike; options?: undefined },
): RecordSyncStore {
  if (typeof source !== "object" || source === null) {
    throw new TypeError("createRecordSyncStore: pass { options } or { instance }");
  }
  if ((source.options === undefined) === (source.instance === undefined)) {
    throw new TypeError("createRecordSyncStore: pass exactly one of `options` or `instance`");
  }
  if (source.instance !== undefined && !isInstance(source.instance)) {
    throw new TypeError("createRecordSyncStore: `instance` must be a RecordSync (something with subscribe and stats)");
  }
  const owned = source.instance === undefined;
  let instance: RecordSyncLike | null = source.instance ?? null;
  // Listeners are kept here, not only on the instance, so that a recreated instance keeps notifying them.
  const listeners = new Set<() => void>();
  let unsubscribeInstance: (() => void) | null = null;
  let pendingCache: { stats: SyncStats; list: readonly PendingChange[] } | null = null;
  let failedCache: { stats: SyncStats; list: readonly FailedChange[] } | null = null;
  let offlineSnapshot: SyncStats | null = null;

  const notify = () => {
    for (const listener of [...listeners]) listener();
  };

  const attach = (target: RecordSyncLike) => {
    if (unsubscribeInstance === null) unsubscribeInstance = target.subscribe(notify);
  };

  let retained = 0;
  let disposed = false;
  let destroyScheduled = false;

  const create = (): RecordSyncLike => {
    if (instance === null) {
      if (!owned || source.options === undefined) throw new Error("record-sync: the RecordSync instance was destroyed");
      instance = new RecordSync(source.options) as unknown as RecordSyncLike;
      disposed = false;
    }
    if (listeners.size > 0) attach(instance);
    return instance;
  };

  const get = (): RecordSyncLike => {
    if (disposed) throw new Error("record-sync: this RecordSyncProvider is unmounted and its RecordSync destroyed");
    return create();
  };

  const destroyNow = () => {
    destroyScheduled = false;
    if (retained > 0 || listeners.size > 0) return;
    if (unsubscribeInstance !== null) {
      unsubscribeInstance();
      unsubscribeInstance = null;
    }
    if (owned && instance !== null) {
      const doomed = instance;
      instance = null;
      disposed = true;
      pendingCache = failedCache = null;
      doomed.destroy();
    }
  };

  const getSnapshot = (): SyncStats => {
    if (instance !== null) return instance.stats();
    // Keep the pre-instance snapshot stable too, but let it say whether the browser is online.
    const isOnline = online();
    if (offlineSnapshot === null || offlineSnapshot.isOnline !== isOnline) {
      offlineSnapshot = isOnline ? INITIAL_STATS : Object.freeze({ ...INITIAL_STATS, isOnline });
    }
    return offlineSnapshot;
  };

  return {
    get,
    peek: () => instance,
    subscribe(listener) {
      listeners.add(listener);
      attach(create());
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && unsubscribeInstance !== null) {
          unsubscribeInstance();
          unsubscribeInstance = null;
        }
      };
    },
    getSnapshot,
    getServerSnapshot: () => INITIAL_STATS,
    getPendingChanges() {
      const stats = getSnapshot();
      if (instance === null || stats.pending + stats.inFlight === 0) return EMPTY;
      if (pendingCache === null || pendingCache.stats !== stats) {
        pendingCache = { stats, list: Object.freeze(instance.pendingChanges()) };
      }
      return pendingCache.list;
    },
    getFailedChanges() {
      const stats = getSnapshot();
      if (instance === null) return EMPTY;
      if (failedCache === null || failedCache.stats !== stats) {
        failedCache = { stats, list: Object.freeze(instance.failedChanges()) };
      }
      return failedCache.list;
    },
    retain() {
      retained++;
      create();
    },
    release() {
      retained = Math.max(0, retained - 1);
      if (retained === 0 && !destroyScheduled) {
        destroyScheduled = true;
        // A microtask: React's StrictMode unmount/remount and the cleanup of a real unmount both finish
        // synchronously, so by then we know which one it was.
        queueMicrotask(destroyNow);
      }
    },
  };
}
