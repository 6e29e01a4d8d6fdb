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
  /** Asked for a token before the first request and again, once, after a 401. */
  getAccessToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** `rest` (default): bulk upserts, patches and deletes per table. `rpc`: one `record_sync_apply` call per batch. */
  mode?: "rest" | "rpc";
  /** Primary-key column per table where it is not `id` (rest mode). */
  primaryKeys?: Record<string, string>;
  /** Abort a request that has no answer after this many ms (default 15000). */
  timeoutMs?: number;
}

/** Any other backend: apply the batch's changes in order and answer one result per change. */
export interface CustomTransport {
  send(batch: Batch): Promise<ChangeResult[]>;
}

export interface RecordSyncOptions {
  transport: PostgrestTransport | CustomTransport;
  /** Transient failures a change survives before it goes to the failed list (default 3, at most 100). */
  maxRetries?: number;
  /** Changes per request at most (default 10, 1 to 1000). */
  batchSize?: number;
  /** How long a change of each priority may wait, in ms (defaults 0, 5000, 30000, 300000). */
  syncIntervals?: Partial<Record<SyncPriority, number>>;
  /** Parent tables per table: a batch carrying a child carries its parents' earlier changes first. */
  tables?: Record<string, { parents?: string[] }>;
  /** The signed-in user's id (e.g. Supabase's `session.user.id`, the JWT's `sub`). The stored queue is kept per
   *  user, and is only ever sent with a token whose `sub` is this user. Without it the queue belongs to the
   *  user of the first token it is sent with. Another user: a new instance (`destroy()` keeps this one's queue). */
  user?: string | null;
  /** Where the queue is kept: IndexedDB by default; `null` keeps it in memory only; or a custom store. */
  storage?: QueueStore | null;
}

/** A custom store for the queue. Records are opaque strings, to be handed back by `load` in the order they were
 *  appended; `append` calls must be applied in call order. A rejected or throwing call is reported as
 *  `lastError` and the whole queue is written again with the next change. */
export interface QueueStore {
  /** Every record stored for `user` ("" without a user option), oldest first. */
  load(user: string): Promise<string[]>;
  /** Stores one record; with `replace`, it replaces everything stored for `user`. */
  append(user: string, record: string, replace: boolean): Promise<void> | void;
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
}

export interface Batch {
  id: number;
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
  lastError: string | null;
  /** Enqueue-to-confirmed time of recent writes; null before the first. */
  latencyMs: Latency | null;
  /** The queue is restored from and written to storage. False while restoring, without a store, after a
   *  storage fault (then `lastError` says which), and in a second tab while another holds this user's queue. */
  durable: boolean;
  /** Whose queue this is: the `user` option, or the `sub` of the token it was first sent with. */
  user: string | null;
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
  /** Writes refused because the server's row was newer, while it waited. */
  conflicts: number;
  /** The failed list when it resolved (see `retryFailed` / `discardFailed`). */
  failed: FailedChange[];
}
"#;
