import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type {
  FailedChange,
  Op,
  PendingChange,
  RemoteChange,
  RemoteChangesInfo,
  RowData,
  SyncPriority,
  SyncStats,
  SyncSummary,
} from "../index.js";
import { useRecordSyncStore } from "./context.js";

/** A record's primary key: a string, or a number (sent as its decimal string). */
export type RecordId = string | number;
import type { RecordSyncLike, RecordSyncStore } from "./store.js";

/** The stable functions of the nearest RecordSyncProvider: queueing and flushing. */
export interface RecordSyncActions {
  queueChange(table: string, id: RecordId, op: Op, data?: RowData, priority?: SyncPriority): number;
  queueCriticalChange(table: string, id: RecordId, op: Op, data?: RowData): number;
  queueHighChange(table: string, id: RecordId, op: Op, data?: RowData): number;
  queueMediumChange(table: string, id: RecordId, op: Op, data?: RowData): number;
  queueLowChange(table: string, id: RecordId, op: Op, data?: RowData): number;
  /** Sends everything now; resolves when the queue is drained. */
  forceSyncAll(): Promise<SyncSummary>;
}

export interface UseRecordSyncResult extends RecordSyncActions {
  /** The current stats (the same object until something changes). */
  syncStats: SyncStats;
  /** The changes waiting or in flight, oldest first (the same array until the stats change). */
  pendingChanges: readonly PendingChange[];
  isProcessing: boolean;
  isOnline: boolean;
}

/**
 * The queueing functions of the nearest RecordSyncProvider, without the sync state: the component does not
 * re-render when the stats change (a sync tick renders nothing). The object and its functions are the same on
 * every render. Build domain hooks on this; read the state where it is shown, with `useSyncStats(selector)`.
 */
export function useRecordSyncActions(): RecordSyncActions {
  return actionsOf(useRecordSyncStore());
}

// One actions object per store, shared by every component under the provider.
const ACTIONS = new WeakMap<RecordSyncStore, RecordSyncActions>();

function actionsOf(store: RecordSyncStore): RecordSyncActions {
  let actions = ACTIONS.get(store);
  if (actions === undefined) {
    actions = Object.freeze({
      queueChange: (table: string, id: RecordId, op: Op, data?: RowData, priority?: SyncPriority) =>
        priority === undefined ? store.get().queueChange(table, id, op, data) : store.get().queueChange(table, id, op, data, priority),
      queueCriticalChange: (table: string, id: RecordId, op: Op, data?: RowData) => store.get().queueCriticalChange(table, id, op, data),
      queueHighChange: (table: string, id: RecordId, op: Op, data?: RowData) => store.get().queueHighChange(table, id, op, data),
      queueMediumChange: (table: string, id: RecordId, op: Op, data?: RowData) => store.get().queueMediumChange(table, id, op, data),
      queueLowChange: (table: string, id: RecordId, op: Op, data?: RowData) => store.get().queueLowChange(table, id, op, data),
      forceSyncAll: () => store.get().forceSyncAll(),
    });
    ACTIONS.set(store, actions);
  }
  return actions;
}

/**
 * The queueing functions and the sync state of the nearest RecordSyncProvider. The functions are stable (the same
 * across renders), so they can go into dependency lists; the component re-renders when the stats change, at most
 * once per tick however many changes are queued. Use `useRecordSyncActions()` for the functions alone (no
 * re-render on sync ticks) and `useSyncStats(selector)` to re-render on a slice only.
 */
export function useRecordSync(): UseRecordSyncResult {
  const store = useRecordSyncStore();
  const syncStats = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot);
  const actions = useRecordSyncActions();
  // `pendingChanges` is computed only when read, and then once per stats snapshot.
  return useMemo(() => {
    const result = {
      ...actions,
      syncStats,
      isProcessing: syncStats.isProcessing,
      isOnline: syncStats.isOnline,
    } as UseRecordSyncResult;
    Object.defineProperty(result, "pendingChanges", { enumerable: true, get: () => store.getPendingChanges() });
    return result;
  }, [actions, syncStats, store]);
}

/**
 * The stats, or a slice of them: `useSyncStats(s => s.pending)` re-renders only when the pending count changes.
 * The selector must return a value that stays the same (`Object.is`) while the slice does not change.
 */
export function useSyncStats(): SyncStats;
export function useSyncStats<T>(selector: (stats: SyncStats) => T): T;
export function useSyncStats<T>(selector?: (stats: SyncStats) => T): T | SyncStats {
  if (selector !== undefined && typeof selector !== "function") {
    throw new TypeError("useSyncStats: selector must be a function (stats) => slice");
  }
  const store = useRecordSyncStore();
  const select = selector ?? ((s: SyncStats) => s);
  const selectRef = useRef(select);
  selectRef.current = select;
  const getSnapshot = useCallback(() => selectRef.current(store.getSnapshot()), [store]);
  const getServerSnapshot = useCallback(() => selectRef.current(store.getServerSnapshot()), [store]);
  return useSyncExternalStore(store.subscribe, getSnapshot, getServerSnapshot);
}

/** The pending changes (waiting or in flight), re-rendering when they change. */
export function usePendingChanges(): readonly PendingChange[] {
  const store = useRecordSyncStore();
  return useSyncExternalStore(store.subscribe, store.getPendingChanges, () => EMPTY_PENDING);
}

/** The changes that failed for good (permanent error, or out of retries), re-rendering when they change. */
export function useFailedChanges(): readonly FailedChange[] {
  const store = useRecordSyncStore();
  return useSyncExternalStore(store.subscribe, store.getFailedChanges, () => EMPTY_FAILED);
}

/**
 * The RecordSync instance itself, for what the hook does not cover (`pause`, `resume`, `setAccessToken`,
 * `onConflict`, `conflicts`, `clearPersisted` at sign-out, ...). Call it in event handlers and effects, not while
 * rendering: the provider creates its instance after the first commit.
 */
export function useRecordSyncInstance(): () => RecordSyncLike {
  const store = useRecordSyncStore();
  return store.get;
}

/**
 * Calls `listener` with each batch of other devices' changes (`onRemoteChanges`; the provider's options need
 * `pull: { tables }`). The latest `listener` is called, without resubscribing when it changes identity; the
 * subscription follows the provider's instance if it is recreated. A record with a local change the server has
 * not settled gets its remote change after that change settles.
 */
export function useRemoteChanges(listener: (changes: readonly RemoteChange[], info: RemoteChangesInfo) => void): void {
  if (typeof listener !== "function") throw new TypeError("useRemoteChanges: listener must be a function (changes, info) => void");
  const store = useRecordSyncStore();
  const listenerRef = useRef(listener);
  // A provider without `pull` is a mistake in the app: it reaches the nearest error boundary from this component's
  // render, with its stack, instead of escaping from an effect or from the store's notification of other hooks.
  const [refused, setRefused] = useState<Error | null>(null);
  if (refused !== null) throw refused;
  useEffect(() => {
    listenerRef.current = listener;
  });
  useEffect(() => {
    let current: RecordSyncLike | null = null;
    let off: (() => void) | null = null;
    const follow = () => {
      const instance = store.peek();
      if (instance === current) return;
      off?.();
      off = null;
      current = instance;
      if (instance === null) return;
      try {
        if (instance.onRemoteChanges === undefined) throw new Error("record-sync: useRemoteChanges needs an instance with onRemoteChanges");
        off = instance.onRemoteChanges((changes, info) => listenerRef.current(changes, info));
      } catch (error) {
        setRefused(error instanceof Error ? error : new Error(String(error)));
      }
    };
    // Subscribing to the store creates the instance and tells of a recreated one.
    const unsubscribe = store.subscribe(follow);
    follow();
    return () => {
      unsubscribe();
      off?.();
    };
  }, [store]);
}

const EMPTY_PENDING: readonly PendingChange[] = Object.freeze([]);
const EMPTY_FAILED: readonly FailedChange[] = Object.freeze([]);
