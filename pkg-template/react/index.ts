// record-sync/react: React bindings for record-sync.
export { RecordSyncProvider, useRecordSyncStore, type RecordSyncProviderProps } from "./context.js";
export {
  useRecordSync,
  useRecordSyncActions,
  useSyncStats,
  usePendingChanges,
  useFailedChanges,
  useRecordSyncInstance,
  useRemoteChanges,
  type UseRecordSyncResult,
  type RecordSyncActions,
  type RecordId,
} from "./hooks.js";
export { SyncMonitor, type SyncMonitorProps } from "./SyncMonitor.js";
export { createRecordSyncStore, INITIAL_STATS, type RecordSyncStore, type RecordSyncLike } from "./store.js";
export { SyncPriority } from "../index.js";
export type {
  SyncStats,
  PendingChange,
  FailedChange,
  SyncSummary,
  Op,
  RowData,
  RecordSyncOptions,
  PriorityName,
  RemoteChange,
  RemoteChangesInfo,
  PullOptions,
  PullSummary,
  ConflictRecord,
  ConflictStrategy,
  PostgrestTransport,
  CustomTransport,
  Batch,
  BatchChange,
  ChangeResult,
  QueueStore,
  QueueRecord,
  Row,
  Json,
  Latency,
} from "../index.js";
