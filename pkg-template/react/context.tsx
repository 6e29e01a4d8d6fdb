import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import type { RecordSyncOptions } from "../index.js";
import { createRecordSyncStore, isInstance, type RecordSyncLike, type RecordSyncStore } from "./store.js";

const RecordSyncContext = createContext<RecordSyncStore | null>(null);
RecordSyncContext.displayName = "RecordSyncContext";

export type RecordSyncProviderProps =
  | {
      /**
       * Options for a RecordSync the provider creates and owns: it is created on the client after the first
       * commit (never during rendering or on the server) and destroyed when the provider unmounts. The options are
       * read once; to start over with other options, give the provider a new `key`.
       */
      options: RecordSyncOptions;
      instance?: undefined;
      /**
       * Also send everything queued, whatever its priority, when the page is hidden (tab switched, window
       * minimised, page closed or navigated away). Default false: the queue is stored (IndexedDB) by the end of
       * the task that queued each change, and the instance itself sends what is due within 30 s when the page is
       * hidden (with `keepalive`); the rest goes from the next page. Set it where the server should have every
       * edit as soon as the user leaves, or where the queue is kept in memory (`storage: null`).
       */
      flushOnHide?: boolean;
      children?: ReactNode;
    }
  | {
      /** A RecordSync you created and destroy yourself; the provider only observes it. */
      instance: RecordSyncLike;
      options?: undefined;
      /** As above; default false. */
      flushOnHide?: boolean;
      children?: ReactNode;
    };

export function RecordSyncProvider(props: RecordSyncProviderProps) {
  const { options, instance, children, flushOnHide = false } = props;
  if ((options === undefined) === (instance === undefined)) {
    throw new TypeError("RecordSyncProvider: pass exactly one of `options` or `instance`");
  }
  if (instance !== undefined && !isInstance(instance)) {
    throw new TypeError("RecordSyncProvider: `instance` must be a RecordSync (something with subscribe and stats)");
  }
  // One store per provider (per instance, when one is given). Creating the store has no side effect: the
  // RecordSync itself is created after commit, by the effect below or by a subscriber's effect, whichever runs first.
  const [owned] = useState(() => (instance === undefined ? createRecordSyncStore({ options: options! }) : null));
  const [observed, setObserved] = useState<{ instance: RecordSyncLike; store: RecordSyncStore } | null>(() =>
    instance !== undefined ? { instance, store: createRecordSyncStore({ instance }) } : null,
  );
  let store: RecordSyncStore;
  if (owned !== null) {
    store = owned;
  } else if (observed !== null && observed.instance === instance) {
    store = observed.store;
  } else {
    const next = { instance: instance!, store: createRecordSyncStore({ instance: instance! }) };
    setObserved(next);
    store = next.store;
  }

  // The owned instance lives as long as the provider is mounted: created when it mounts (so that a tree with no
  // subscriber, only actions, still restores and sends the stored queue after a reload), destroyed right after the
  // provider unmounts. StrictMode's simulated unmount and remount happen within
  // one task, so they keep the same instance (the store defers destruction to the end of the task).
  useEffect(() => {
    if (owned === null) return;
    owned.retain();
    return () => owned.release();
  }, [owned]);

  useEffect(() => {
    if (!flushOnHide || typeof document === "undefined") return;
    const onHide = (event: Event) => {
      if (event.type === "visibilitychange" && document.visibilityState !== "hidden") return;
      const current = store.peek();
      if (current === null || current.stats().pending === 0) return;
      current.forceSyncAll().catch(() => {
        /* failures show in the stats and the failed list */
      });
    };
    document.addEventListener("visibilitychange", onHide);
    window.addEventListener("pagehide", onHide);
    return () => {
      document.removeEventListener("visibilitychange", onHide);
      window.removeEventListener("pagehide", onHide);
    };
  }, [store, flushOnHide]);

  return <RecordSyncContext.Provider value={store}>{children}</RecordSyncContext.Provider>;
}

/** The store of the nearest RecordSyncProvider. */
export function useRecordSyncStore(): RecordSyncStore {
  const store = useContext(RecordSyncContext);
  if (store === null) throw new Error("record-sync: useRecordSync() must be used inside a <RecordSyncProvider>");
  return store;
}
