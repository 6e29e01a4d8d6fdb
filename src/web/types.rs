//! The TypeScript types the generated `.d.ts` refers to: every option, change, batch, result and stats
//! field, with no `any`. They describe the JSON the core serializes (camelCase, ops and priority names in
//! lower case) and what the shell accepts.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** What a change does to its record. `update` is a patch of the given columns; `upsert` writes the full row. */
export type Op = "insert" | "update" | "upsert" | "delete";

/** Priority names as the library reports them (stats, pending and failed changes, batches). */
export type PriorityName = "critical" | "high" | "medium" | "low";

/** A JSON value, as stored and sent. */
export type Json = string | number | boolean | null | Json[] | { [column: string]: Json };

/** Column values of a change: a plain object (not an array, Date or class instance), JSON-serializable.
 *  `last_changed` (if present) is the timestamp the server uses for last-writer-wins. */
export type RowData = { [column: string]: unknown };

/** A row as the library hands it back. */
export type Row = { [column: string]: Json };

/** Plain PostgREST (Supabase) over fetch. */
export interface PostgrestTransport {
  /** The PostgREST base URL, e.g. `https://xyz.supabase.co/rest/v1` or `http://127.0.0.1:54321/rest/v1`. */
  url: string;
  /** Sent as the `apikey` header, and as the bearer token when there is no access token. */
  apiKey: string;
  /** Asked for the user's token before the first request and again, once, after a 401. No token, no send:
   *  when it throws, rejects, takes longer than `tokenTimeoutMs` or gives null/"", nothing is sent, the queue
   *  waits (`stats().needsAuth`, `lastError` says why) and it is asked again with backoff (at once on
   *  `forceSyncAll()` and `online`) until it gives a token or `setAccessToken` is called. */
  getAccessToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** How long `getAccessToken` may take, in ms (default 10000). */
  tokenTimeoutMs?: number;
  /** Send writes with the API key instead of waiting when there is no user's token: with `getAccessToken` and
   *  none to be had, and without it for a queue that belongs to a user (the `user` option, or the first token's
   *  `sub`), which otherwise waits for that user's token (default false). In `rpc` mode the server must allow it
   *  too (`record_sync_settings.allow_anonymous`). */
  allowAnonymous?: boolean;
  /** `rest` (default): bulk upserts, patches and deletes per table. `rpc`: one `record_sync_apply` call per batch. */
  mode?: "rest" | "rpc";
  /** Primary-key column per table where it is not `id`. A change whose data holds this column with a value
   *  other than the change's id is refused with a TypeError. */
  primaryKeys?: Record<string, string>;
  /** Abort a request that has no answer after this many ms (default 15000). */
  timeoutMs?: number;
}

/** Any other backend: apply the batch's changes in order and answer one result per change. */
export interface CustomTransport {
  send(batch: Batch): Promise<ChangeResult[]>;
  /** A send that has not settled after this many ms counts as a transient failure (default 15000). */
  timeoutMs?: number;
  /** As for PostgrestTransport: checked against the data at queue time. */
  primaryKeys?: Record<string, string>;
}

/** What becomes of a write the server did not take because its row is newer (or is missing):
 *  `"lastWriterWins"` (default): the server's row stands and the app is told; `"clientWins"`: sent again
 *  without the last-writer-wins condition (a missing row cannot be recreated by a patch: that write goes to the
 *  failed list with code "missing"); a function: its row is queued as a forced upsert, `null` drops the write. */
export type ConflictStrategy = "lastWriterWins" | "clientWins" | ((local: Row | null, server: Row | null) => RowData | null);

/** A write the server did not take, as `onConflict` listeners and `conflicts()` see it. */
export interface ConflictRecord {
  seq: number;
  table: string;
  id: string;
  op: Op;
  /** What the write carried (null for a delete). */
  data: Row | null;
  lastChanged: Json | null;
  /** The server's row; null when it is missing. */
  serverRow: Row | null;
  /** `newer`: the server's row is newer. `missing`: the row is gone, or hidden from this user (row-level security). */
  reason: "newer" | "missing";
  /** `serverWins` (dropped), `resent` (forced, clientWins), `failed` (on the failed list), `merged` (the merge
   *  function's row is queued), `dropped` (it returned null), `mergeFailed` (it threw or returned a bad row). */
  resolution: "serverWins" | "resent" | "failed" | "merged" | "dropped" | "mergeFailed";
}

export interface RecordSyncOptions {
  transport: PostgrestTransport | CustomTransport;
  /** Transient failures a change survives before it goes to the failed list (default 3, at most 100). */
  maxRetries?: number;
  /** Changes per request at most (default 10, 1 to 1000). */
  batchSize?: number;
  /** How long a change of each priority may wait, in ms (defaults 0, 5000, 30000, 300000). */
  syncIntervals?: Partial<Record<SyncPriority, number>>;
  /** Per table: parent tables (a batch carrying a child carries its parents' earlier changes first), and what
   *  a conflict does. */
  tables?: Record<string, { parents?: string[]; onConflict?: ConflictStrategy }>;
  /** The signed-in user's id (e.g. Supabase's `session.user.id`, the JWT's `sub`). The stored queue is kept per
   *  user, and is only ever sent with a token whose `sub` is this user. Without it the queue belongs to the
   *  user of the first token it is sent with. Another user: a new instance (`destroy()` keeps this one's queue). */
  user?: string | null;
  /** Where the queue is kept: IndexedDB by default; `null` keeps it in memory only; or a custom store. */
  storage?: QueueStore | null;
  /** Other devices' changes flow in (needs `transport.url` and sql/record_sync_feed.sql on the server). */
  pull?: PullOptions;
}

/** Catch-up from the server's change feed (`rpc/record_sync_changes`), at start, on `online`, every
 *  `intervalMs`, after a held record's local change settles, and on `pull()`. */
export interface PullOptions {
  /** The tables to read (each enabled with `record_sync_feed_enable`). */
  tables: string[];
  /** Subscribe to Supabase Realtime as well (default false). */
  realtime?: boolean;
  /** Changes per page, 1 to 1000 (default 500). */
  pageSize?: number;
  /** Also catch up every this many ms (at least 1000; default: never on a timer). */
  intervalMs?: number;
}

/** Another device's change (or this client's own write coming back, `own: true`), as `onRemoteChanges`
 *  listeners get it: in version order per record. A record with a local change the server has not settled
 *  gets it only after that change settles (then the newer of the two). */
export interface RemoteChange {
  table: string;
  id: string;
  op: "upsert" | "delete";
  /** The whole row as the server holds it (without the feed's record_sync_* columns); null for a delete. */
  row: Row | null;
  /** The server's version of the row: grows with every write. */
  version: number;
  /** This client wrote it: the app already has it, but applying it is safe (it is the server's row). */
  own?: boolean;
  /** The server's row (or a delete: the row is missing) delivered again after a conflict the server won
   *  (lastWriterWins, a "missing" row): the app's copy holds the local write the server did not take. */
  conflict?: boolean;
}

/** What `pull()` resolves to. */
export interface PullSummary {
  /** Changes handed to `onRemoteChanges` listeners meanwhile. */
  changes: number;
  /** The feed told this client to start over meanwhile (it was away longer than the feed keeps deletes). */
  reset: boolean;
}

/** What comes with each batch of remote changes. */
export interface RemoteChangesInfo {
  /** The feed told this client to start over (it was away longer than the feed keeps deletes, 30 days by
   *  default): every current row of the pulled tables follows, in this batch and the next ones, but deletes
   *  made meanwhile do not. Drop the local copy of those tables first, except records with a change still in
   *  `pendingChanges()` (their server row comes once that change settles). Told once, before those rows; the
   *  batch may have no changes. */
  reset: boolean;
}

/** One stored record of the queue: opaque, to be kept whole. Its rows are the queue's own objects, so a
 *  store copies the record before `append` returns: a structured clone (IndexedDB, postMessage) or
 *  `JSON.stringify` (read back with `JSON.parse`) keep it alike. Records of the earlier stored formats (1
 *  and 2) are strings. */
export type QueueRecord = string | { readonly m: string; readonly r: readonly object[] };

/** A custom store for the queue. Records are handed back by `load` in the order they were appended; `append`
 *  calls must be applied in call order. A rejected or throwing call is reported as `lastError` and the whole
 *  queue is written again after a backoff (and with the next change). `clear` is also called with
 *  `"<user>#unreadable"`, the key of records a restore could not read. A custom store is not shared by live
 *  tabs: a tab that cannot have the queue keeps its changes in memory. */
export interface QueueStore {
  /** Every record stored for `user` ("" without a user option), oldest first. */
  load(user: string): Promise<QueueRecord[]>;
  /** Stores one record (a copy of it: see `QueueRecord`); with `replace`, it replaces everything stored for
   *  `user`. */
  append(user: string, record: QueueRecord, replace: boolean): Promise<void> | void;
  /** Deletes everything stored for `user`. */
  clear(user: string): Promise<void> | void;
}

/** One change as a custom transport receives it. */
export interface BatchChange {
  /** Unique per client; a server can recognise a replay by `(clientId, seq)`. */
  seq: number;
  table: string;
  id: string;
  op: Op;
  /** Absent for deletes. */
  data?: Row;
  lastChanged?: Json;
  priority: PriorityName;
  /** Apply without the last-writer-wins check: the client won a conflict. */
  force?: boolean;
}

export interface Batch {
  id: number;
  /** Whose seqs these are: the page's own id, or, for writes restored from an earlier page, that page's (a batch
   *  never mixes them), so that a server recognises a resend as a replay by `(clientId, seq)`. */
  clientId: string;
  /** Every seq below this will never be sent again: the server may forget them. */
  lowWater: number;
  /** In the order they must be applied (parents before children). */
  changes: BatchChange[];
}

/** What a custom transport answers per change; a change without a result is retried. */
export type ChangeResult =
  | { seq: number; status: "applied" }
  | { seq: number; status: "conflict"; row?: Row | null }
  /** The write touched no row: absent, or not visible to the user. Never counted as synced. */
  | { seq: number; status: "missing" }
  | { seq: number; status: "error"; code?: string; message?: string; transient?: boolean; retryAfterMs?: number };

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  count: number;
}

export interface SyncStats {
  totalChanges: number;
  mergedChanges: number;
  successfulSyncs: number;
  failedSyncs: number;
  conflicts: number;
  retries: number;
  requests: number;
  pending: number;
  pendingByPriority: { critical: number; high: number; medium: number; low: number };
  inFlight: number;
  isOnline: boolean;
  isProcessing: boolean;
  isPaused: boolean;
  /** Sending waits for an access token (see `getAccessToken`); `lastError` says why. */
  needsAuth: boolean;
  /** The latest error seen: a transient one stays after sending recovers (a history, as the monitor shows it);
   *  what is wrong now is in `needsAuth`, `isOnline`, `failedSyncs` and `durable`. Cleared by a confirmed write
   *  after a token problem, a good store write after a storage fault, a complete catch-up after a bad page. */
  lastError: string | null;
  /** Enqueue-to-confirmed time of recent writes; null before the first. */
  latencyMs: Latency | null;
  /** The queue is restored from and written to storage (in a tab that follows another: this tab's changes are
   *  written to the shared queue's inbox). False while restoring, without a store, after a storage fault (then
   *  `lastError` says which), and in a second tab that cannot follow the one holding this user's queue. */
  durable: boolean;
  /** The stored queue is being read (or waits for a token that says whose it is): `pending` and
   *  `pendingChanges()` do not count it yet, nothing is sent, and `forceSyncAll()` waits for it. */
  restoring: boolean;
  /** Whose queue this is: the `user` option, else the `sub` of the first token known (asked at construction,
   *  or given to `setAccessToken`), or the owner stored with a queue kept under no user. */
  user: string | null;
  /** When the last complete catch-up ended (ms since the epoch); null before the first, or without `pull`. */
  lastPullAt: number | null;
  /** The realtime socket is joined. */
  realtimeConnected: boolean;
  /** Changes handed to `onRemoteChanges` listeners since the instance was created. */
  remoteChangesReceived: number;
  /** This tab sends the queue. False in a tab that follows another tab of the same user: its changes go to the
   *  shared queue through IndexedDB, and the figures, `pendingChanges()` and `failedChanges()` are that tab's.
   *  False too while the stored queue is being read (`restoring`): the tab does not know yet who holds it. */
  leader: boolean;
}

/** A write not yet confirmed: the change as it will be sent, and where it stands. */
export interface PendingChange extends BatchChange {
  queuedAt: number;
  dueAt: number;
  attempts: number;
  inFlight: boolean;
  /** Waiting behind a failed write of the same record. */
  blocked: boolean;
}

/** A write on the failed list. */
export interface FailedChange extends BatchChange {
  /** Seq of the first change this write stands for: it covers its record's changes from here to `seq`. */
  firstSeq: number;
  attempts: number;
  /** `permanent: false` when it ran out of retries: it may have been written, and retrying is safe. */
  error: { code?: string; message: string; permanent: boolean };
  failedAt: number;
}

/** What `forceSyncAll()` resolves to. */
export interface SyncSummary {
  /** Writes confirmed while it waited. */
  confirmed: number;
  /** Writes the server did not take while it waited: its row was newer, or the row was missing. */
  conflicts: number;
  /** The failed list when it resolved (see `retryFailed` / `discardFailed`). */
  failed: FailedChange[];
}
"#;
