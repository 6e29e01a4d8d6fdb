import { useCallback, useId, useRef, useState, type CSSProperties, type KeyboardEvent, type ReactNode } from "react";
import type { FailedChange, PendingChange, SyncStats } from "../index.js";
import { useRecordSyncStore } from "./context.js";
import { useFailedChanges, usePendingChanges, useSyncStats } from "./hooks.js";

export interface SyncMonitorProps {
  /** Open the panel at first (default false: only the summary bar shows). */
  defaultOpen?: boolean;
  /** How many pending and failed changes to list at most (default 20 each). */
  maxItems?: number;
  /** Where the panel sits (default bottom-right). `"static"` leaves placement to your CSS. */
  position?: "bottom-right" | "bottom-left" | "static";
  /** The panel's accessible name (default "Sync monitor"). */
  label?: string;
  className?: string;
  style?: CSSProperties;
}

const PRIORITY_NAMES = ["critical", "high", "medium", "low"] as const;

function summaryText(stats: SyncStats, failed: number): string {
  const parts: string[] = [];
  if (!stats.isOnline) parts.push("Offline");
  else if (stats.isPaused) parts.push("Paused");
  else if (stats.needsAuth) parts.push("Waiting for sign-in");
  if (stats.inFlight > 0) parts.push(`syncing ${stats.inFlight}`);
  if (stats.pending > 0) parts.push(`${stats.pending} pending`);
  if (failed > 0) parts.push(`${failed} failed`);
  // A conflict is a write the server did not take as sent: never call that "synced".
  if (parts.length === 0 && stats.conflicts > 0) {
    return `Nothing pending; ${stats.conflicts} conflict${stats.conflicts === 1 ? "" : "s"} (the server's row stood or was merged)`;
  }
  if (parts.length === 0) return stats.totalChanges > 0 ? "All changes synced" : "No changes yet";
  const text = parts.join(", ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function changeLabel(change: PendingChange | FailedChange): string {
  return `${change.op} ${change.table} ${change.id}`;
}

/**
 * A small panel, bottom-right by default, showing what the nearest RecordSyncProvider's queue is doing: online
 * state, pending changes per priority, in flight, successes, failures, the last error, a "Sync now" button, and
 * the lists of pending and failed changes with retry and discard. It is a labelled region with a disclosure
 * button (Escape closes it), live status text, and native buttons throughout.
 */
export function SyncMonitor({
  defaultOpen = false,
  maxItems = 20,
  position = "bottom-right",
  label = "Sync monitor",
  className,
  style,
}: SyncMonitorProps) {
  const store = useRecordSyncStore();
  const stats = useSyncStats();
  const pending = usePendingChanges();
  const failed = useFailedChanges();
  const [open, setOpen] = useState(defaultOpen);
  const [syncing, setSyncing] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const toggleRef = useRef<HTMLButtonElement>(null);
  const bodyId = useId();
  const titleId = useId();

  const syncNow = useCallback(() => {
    setSyncing(true);
    setActionError(null);
    let promise: Promise<unknown>;
    try {
      promise = store.get().forceSyncAll();
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise
      .catch((error: unknown) => setActionError(error instanceof Error ? error.message : String(error)))
      .finally(() => setSyncing(false));
  }, [store]);
  const retry = useCallback(() => {
    store.get().retryFailed();
  }, [store]);
  const discard = useCallback(() => {
    store.get().discardFailed();
  }, [store]);
  const onKeyDown = useCallback(
    (event: KeyboardEvent) => {
      if (event.key === "Escape" && open) {
        event.stopPropagation();
        setOpen(false);
        toggleRef.current?.focus();
      }
    },
    [open],
  );

  const summary = summaryText(stats, failed.length);
  const state = !stats.isOnline
    ? "offline"
    : failed.length > 0 || stats.needsAuth
      ? "error"
      : stats.pending + stats.inFlight > 0
        ? "pending"
        : stats.conflicts > 0
          ? "conflict"
          : "synced";
  const rootClass = ["rs-monitor", `rs-monitor--${position}`, className].filter(Boolean).join(" ");
  const lastError = stats.lastError ?? actionError;

  return (
    <section className={rootClass} style={style} aria-labelledby={titleId} data-state={state} onKeyDown={onKeyDown}>
      <style>{CSS}</style>
      <h2 id={titleId} className="rs-monitor__sr">
        {label}
      </h2>
      <button
        ref={toggleRef}
        type="button"
        className="rs-monitor__toggle"
        aria-expanded={open}
        aria-controls={bodyId}
        title={open ? "Hide sync details" : "Show sync details"}
        onClick={() => setOpen((value) => !value)}
      >
        <span className="rs-monitor__dot" aria-hidden="true" />
        <span className="rs-monitor__title">Sync</span>
        <span className="rs-monitor__summary" data-testid="sync-summary">
          {summary}
        </span>
        <span className="rs-monitor__chevron" aria-hidden="true">
          {open ? "▾" : "▴"}
        </span>
      </button>
      <p className="rs-monitor__sr" role="status" aria-live="polite" aria-atomic="true">
        {summary}
      </p>
      <div id={bodyId} className="rs-monitor__body" hidden={!open}>
        <dl className="rs-monitor__stats">
          <dt>Network</dt>
          <dd data-stat="online">{stats.isOnline ? (stats.isPaused ? "Online (paused)" : "Online") : "Offline"}</dd>
          <dt>Pending</dt>
          <dd data-stat="pending">{stats.pending}</dd>
          {PRIORITY_NAMES.map((name) => (
            <PriorityRow key={name} name={name} count={stats.pendingByPriority[name]} />
          ))}
          <dt>Queued (merged)</dt>
          <dd data-stat="total">
            {stats.totalChanges} ({stats.mergedChanges})
          </dd>
          <dt>In flight</dt>
          <dd data-stat="in-flight">{stats.inFlight}</dd>
          <dt>Synced</dt>
          <dd data-stat="successful">{stats.successfulSyncs}</dd>
          <dt>Failed</dt>
          <dd data-stat="failed">{stats.failedSyncs}</dd>
          <dt>Conflicts</dt>
          <dd data-stat="conflicts">{stats.conflicts}</dd>
          {stats.latencyMs && (
            <>
              <dt>Latency p50 / p95</dt>
              <dd data-stat="latency">
                {Math.round(stats.latencyMs.p50)} / {Math.round(stats.latencyMs.p95)} ms
              </dd>
            </>
          )}
          {(stats.lastPullAt !== null || stats.realtimeConnected || stats.remoteChangesReceived > 0) && (
            <>
              <dt>Remote changes</dt>
              <dd data-stat="remote">
                {stats.remoteChangesReceived} received
                {stats.realtimeConnected ? ", live" : ""}
                {stats.lastPullAt !== null ? `, last pull ${new Date(stats.lastPullAt).toLocaleTimeString()}` : ""}
              </dd>
            </>
          )}
          <dt>Last error</dt>
          {/* lastError is the latest error ever seen: red only while something is still wrong. */}
          <dd data-stat="last-error" className={lastError && state === "error" ? "rs-monitor__error" : undefined}>
            {lastError ?? "None"}
          </dd>
        </dl>
        <div className="rs-monitor__actions">
          <button type="button" onClick={syncNow} disabled={syncing} aria-busy={syncing}>
            {syncing ? "Syncing…" : "Sync now"}
          </button>
        </div>
        <ChangeList
          title="Pending changes"
          empty="Nothing pending"
          items={pending}
          maxItems={maxItems}
          render={(change) => (
            <>
              <span className="rs-monitor__change">{changeLabel(change)}</span>
              <span className="rs-monitor__meta">
                {change.priority}
                {change.inFlight ? ", in flight" : ""}
                {change.blocked ? ", waiting behind a failed change" : ""}
                {change.attempts > 0 ? `, ${change.attempts} failed attempt${change.attempts > 1 ? "s" : ""}` : ""}
              </span>
            </>
          )}
        />
        <ChangeList
          title="Failed changes"
          empty="No failed changes"
          items={failed}
          maxItems={maxItems}
          render={(change) => (
            <>
              <span className="rs-monitor__change">{changeLabel(change)}</span>
              <span className="rs-monitor__meta rs-monitor__error">
                {change.error.code ? `${change.error.code}: ` : ""}
                {change.error.message}
              </span>
              <span className="rs-monitor__item-actions">
                <button type="button" onClick={() => store.get().retryFailed(change.seq)} aria-label={`Retry ${changeLabel(change)}`}>
                  Retry
                </button>
                <button type="button" onClick={() => store.get().discardFailed(change.seq)} aria-label={`Discard ${changeLabel(change)}`}>
                  Discard
                </button>
              </span>
            </>
          )}
        />
        {failed.length > 0 && (
          <div className="rs-monitor__actions">
            <button type="button" onClick={retry}>
              Retry all failed
            </button>
            <button type="button" onClick={discard}>
              Discard all failed
            </button>
          </div>
        )}
      </div>
    </section>
  );
}

function PriorityRow({ name, count }: { name: string; count: number }) {
  return (
    <>
      <dt className="rs-monitor__sub">{name}</dt>
      <dd className="rs-monitor__sub" data-stat={`pending-${name}`}>
        {count}
      </dd>
    </>
  );
}

function ChangeList<T extends PendingChange | FailedChange>({
  title,
  empty,
  items,
  maxItems,
  render,
}: {
  title: string;
  empty: string;
  items: readonly T[];
  maxItems: number;
  render: (item: T) => ReactNode;
}) {
  const id = useId();
  const shown = items.slice(0, Math.max(0, maxItems));
  return (
    <div className="rs-monitor__list">
      <h3 id={id}>
        {title} ({items.length})
      </h3>
      {items.length === 0 ? (
        <p className="rs-monitor__empty">{empty}</p>
      ) : (
        <ul aria-labelledby={id}>
          {shown.map((item) => (
            <li key={item.seq}>{render(item)}</li>
          ))}
          {items.length > shown.length && <li className="rs-monitor__more">and {items.length - shown.length} more</li>}
        </ul>
      )}
    </div>
  );
}

const CSS = `
.rs-monitor{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;background:#fff;border:1px solid #c9d1d9;border-radius:8px;box-shadow:0 4px 16px rgba(0,0,0,.15);width:320px;max-width:calc(100vw - 24px);z-index:2147483000;box-sizing:border-box}
.rs-monitor *{box-sizing:border-box}
.rs-monitor--bottom-right{position:fixed;right:12px;bottom:12px}
.rs-monitor--bottom-left{position:fixed;left:12px;bottom:12px}
.rs-monitor__sr{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);white-space:nowrap;border:0}
.rs-monitor__toggle{all:unset;display:flex;align-items:center;gap:8px;width:100%;padding:8px 12px;cursor:pointer;border-radius:8px;box-sizing:border-box}
.rs-monitor__toggle:focus-visible,.rs-monitor button:focus-visible{outline:2px solid #0969da;outline-offset:2px}
.rs-monitor__title{font-weight:600}
.rs-monitor__summary{flex:1;color:#57606a;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.rs-monitor__dot{width:10px;height:10px;border-radius:50%;background:#1a7f37;flex:none}
.rs-monitor[data-state=pending] .rs-monitor__dot{background:#bf8700}
.rs-monitor[data-state=offline] .rs-monitor__dot{background:#6e7781}
.rs-monitor[data-state=error] .rs-monitor__dot{background:#cf222e}
.rs-monitor[data-state=conflict] .rs-monitor__dot{background:#bf8700}
.rs-monitor__body{padding:0 12px 12px;max-height:60vh;overflow:auto;border-top:1px solid #d8dee4}
.rs-monitor__stats{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}
.rs-monitor__stats dt{color:#57606a}
.rs-monitor__stats dd{margin:0;text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.rs-monitor__sub{padding-left:12px;font-size:12px}
.rs-monitor__error{color:#cf222e}
.rs-monitor__actions{display:flex;gap:8px;margin:8px 0}
.rs-monitor__item-actions{display:flex;gap:6px;margin-top:2px}
.rs-monitor__actions button,.rs-monitor__item-actions button{font:inherit;padding:4px 10px;border:1px solid #c9d1d9;border-radius:6px;background:#f6f8fa;cursor:pointer}
.rs-monitor__item-actions button{padding:1px 8px;font-size:12px}
.rs-monitor__actions button:disabled{opacity:.6;cursor:default}
.rs-monitor__list h3{font-size:12px;margin:10px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:#57606a}
.rs-monitor__list ul{list-style:none;margin:0;padding:0}
.rs-monitor__list li{display:flex;flex-direction:column;padding:3px 0;border-bottom:1px solid #eaeef2}
.rs-monitor__change{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;overflow-wrap:anywhere}
.rs-monitor__meta{font-size:11px;color:#57606a}
.rs-monitor__empty,.rs-monitor__more{color:#57606a;font-size:12px;margin:0}
`;
