// The page the React-binding tests drive: record-sync and record-sync/react from the built pkg/, React 19, and a
// custom transport the test steers. Everything observable is on window.rsTest.
import { Component, StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { RecordSync } from "record-sync";
import {
  RecordSyncProvider,
  SyncMonitor,
  useRecordSync,
  useRecordSyncActions,
  useRecordSyncInstance,
  useRemoteChanges,
  useSyncStats,
} from "record-sync/react";

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

const t = {
  renders: { hook: 0, selector: 0, actions: 0 },
  actionObjects: new Set(),
  actions: null,
  callbacks: { queueChange: new Set(), queueHighChange: new Set(), forceSyncAll: new Set() },
  stats: [],
  instances: [],
  sends: [],
  sentIds: [],
  failMode: null,
  api: null,
  root: null,
  rerender: null,
};
window.rsTest = t;

export const transport = {
  async send(batch) {
    t.sends.push(batch.changes.length);
    t.sentIds.push(...batch.changes.map((c) => c.id));
    await sleep(10);
    return batch.changes.map((c) =>
      t.failMode === "permanent"
        ? { seq: c.seq, status: "error", code: "23514", message: "check constraint violated", transient: false }
        : t.failMode === "conflict"
          ? { seq: c.seq, status: "conflict", row: { id: c.id, last_changed: "2099-01-01T00:00:00Z" } }
          : { seq: c.seq, status: "applied" },
    );
  },
};

function HookUser() {
  const api = useRecordSync();
  t.renders.hook++;
  t.callbacks.queueChange.add(api.queueChange);
  t.callbacks.queueHighChange.add(api.queueHighChange);
  t.callbacks.forceSyncAll.add(api.forceSyncAll);
  t.stats.push(api.syncStats);
  t.api = api;
  return (
    <p data-testid="hook">
      pending {api.syncStats.pending}, synced {api.syncStats.successfulSyncs}, listed {api.pendingChanges.length}
    </p>
  );
}

// A domain hook's shape: it takes the stable actions only, so sync ticks must not render it.
function ActionsUser() {
  const actions = useRecordSyncActions();
  t.renders.actions++;
  t.actionObjects.add(actions);
  t.actions = actions;
  return <p data-testid="actions">actions</p>;
}

function SelectorUser() {
  const busy = useSyncStats((s) => s.pending + s.inFlight > 0);
  t.renders.selector++;
  return <p data-testid="selector">{busy ? "busy" : "idle"}</p>;
}

function InstanceProbe() {
  const getInstance = useRecordSyncInstance();
  useEffect(() => {
    t.instances.push(getInstance());
  }, [getInstance]);
  return null;
}

// A tree whose only record-sync hook is useRecordSyncActions: nothing subscribes and nothing asks for the instance.
function ActionsOnly() {
  return <ActionsUser />;
}

function Harness({ monitor }) {
  // A parent state change re-renders everything below: the snapshot and the callbacks must not change with it.
  const [tick, setTick] = useState(0);
  t.rerender = () => setTick((n) => n + 1);
  return (
    <div data-tick={tick}>
      <HookUser />
      <ActionsUser />
      <SelectorUser />
      <InstanceProbe />
      {monitor && <SyncMonitor defaultOpen={monitor === "open"} />}
    </div>
  );
}

t.options = (slow = false) => ({
  transport,
  batchSize: 10,
  // "hide": high changes due within the 30 s a hidden page sends early, the rest later.
  syncIntervals:
    slow === "hide" ? { 0: 0, 1: 20000, 2: 300000, 3: 300000 } : slow ? { 0: 0, 1: 300000, 2: 300000, 3: 300000 } : { 0: 0, 1: 50, 2: 50, 3: 50 },
});

t.mount = ({ strict = false, monitor = false, external = false, slow = false, flushOnHide, actionsOnly = false } = {}) => {
  const el = document.createElement("div");
  document.body.append(el);
  t.root = createRoot(el);
  t.external = external ? new RecordSync(t.options(slow)) : null;
  const tree = actionsOnly ? <ActionsOnly /> : <Harness monitor={monitor} />;
  const provider = external ? (
    <RecordSyncProvider instance={t.external}>{tree}</RecordSyncProvider>
  ) : (
    <RecordSyncProvider options={t.options(slow)} flushOnHide={flushOnHide}>
      {tree}
    </RecordSyncProvider>
  );
  t.root.render(strict ? <StrictMode>{provider}</StrictMode> : provider);
};

t.unmount = () => {
  t.root.unmount();
  t.root = null;
};

/** Whether an instance is destroyed: its methods throw once it is. */
t.isDestroyed = (instance) => {
  try {
    instance.stats();
    return false;
  } catch {
    return true;
  }
};

// useRemoteChanges (issue 11): an instance whose onRemoteChanges the test drives (a pull needs a server; the hook's
// job is the subscription: once, to the latest listener, undone on unmount).
function RemoteUser({ label }) {
  useRemoteChanges((changes) => t.remote.heard.push([label, changes.length]));
  return <p data-testid="remote">{label}</p>;
}

t.mountRemote = () => {
  const instance = new RecordSync(t.options());
  const remote = { listeners: new Set(), subscribes: 0, heard: [] };
  instance.onRemoteChanges = (listener) => {
    remote.subscribes++;
    remote.listeners.add(listener);
    return () => remote.listeners.delete(listener);
  };
  t.remote = remote;
  t.remote.emit = (changes) => [...remote.listeners].forEach((l) => l(changes));
  const el = document.createElement("div");
  document.body.append(el);
  t.root = createRoot(el);
  const render = (label) =>
    t.root.render(
      <RecordSyncProvider instance={instance}>
        <RemoteUser label={label} />
      </RecordSyncProvider>,
    );
  t.remote.render = render;
  render("first");
};

// useRemoteChanges under a provider made without `pull`: the mistake reaches the error boundary around the hook's
// component; a sibling outside it goes on showing the stats.
class Boundary extends Component {
  state = { error: null };
  static getDerivedStateFromError(error) {
    return { error };
  }
  render() {
    return this.state.error ? <p data-testid="refused">{String(this.state.error.message)}</p> : this.props.children;
  }
}

function PendingCount() {
  const pending = useSyncStats((s) => s.pending);
  return <p data-testid="pending">pending {pending}</p>;
}

t.mountRemoteWithoutPull = () => {
  const el = document.createElement("div");
  document.body.append(el);
  t.root = createRoot(el);
  t.root.render(
    <RecordSyncProvider options={t.options(true)}>
      <Boundary>
        <RemoteUser label="no pull" />
      </Boundary>
      <PendingCount />
      <ActionsUser />
      <InstanceProbe />
    </RecordSyncProvider>,
  );
};

// Switching users as README says: a new provider `key` and `options.user`, in StrictMode as apps run in development.
function Switcher({ user }) {
  return (
    <StrictMode>
      <RecordSyncProvider key={user} options={{ ...t.options(true), user }}>
        <ActionsUser />
        <PendingCount />
        <InstanceProbe />
      </RecordSyncProvider>
    </StrictMode>
  );
}

t.mountUser = (user) => {
  if (t.root === null) {
    const el = document.createElement("div");
    document.body.append(el);
    t.root = createRoot(el);
  }
  t.root.render(<Switcher user={user} />);
};

t.ready = true;
