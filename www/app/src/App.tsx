import { useEffect, useState } from "react";
import { useLiveQuery } from "dexie-react-hooks";
import { SyncMonitor } from "record-sync/react";
import { useAppData } from "./sync/AppData";
import { pullIfEmpty } from "./sync/pull";
import { PlanProvider } from "./sync/PlanContext";
import { useTrainingPlanSync } from "./sync/useTrainingPlanSync";
import { PlanEditor } from "./components/PlanEditor";

const MODELS = [
  ["Linear strength", "Load goes up every week, volume stays"],
  ["Hypertrophy", "Moderate loads, more sets"],
  ["Endurance", "Light loads, many reps"],
] as const;
const EXERCISES = [
  ["Back squat", "legs"],
  ["Bench press", "chest"],
  ["Deadlift", "posterior chain"],
  ["Overhead press", "shoulders"],
  ["Pull-up", "back"],
  ["Barbell row", "back"],
  ["Romanian deadlift", "hamstrings"],
  ["Lunge", "legs"],
] as const;

let seeding: Promise<void> | null = null;

export function App() {
  const { db, config } = useAppData();
  const sync = useTrainingPlanSync();
  const plans = useLiveQuery(() => db.training_plans.toArray(), [db]);
  const models = useLiveQuery(() => db.training_models.toArray(), [db]) ?? [];
  const prefs = useLiveQuery(() => db.user_preferences.toCollection().first(), [db]);
  const [selected, setSelected] = useState<string | null>(null);
  const [newName, setNewName] = useState("");
  const [newModel, setNewModel] = useState("");

  // First start in this browser: what the server already has for this user, then (a new user) the catalog of
  // models and exercises to pick from, synced like everything else.
  useEffect(() => {
    seeding ??= (async () => {
      await pullIfEmpty(db, config);
      if ((await db.training_models.count()) === 0) for (const [name, description] of MODELS) await sync.createModel(name, description);
      if ((await db.exercises.count()) === 0) for (const [name, group] of EXERCISES) await sync.createExercise(name, group);
    })();
  }, [db, config, sync]);

  const sorted = [...(plans ?? [])].sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  const current = selected && sorted.some((p) => p.id === selected) ? selected : null;

  return (
    <div className={(prefs?.settings?.show_monitor ?? true) ? "app with-monitor" : "app"}>
      <header className="topbar">
        <h1>Training plans</h1>
        <div className="row">
          <label className="inline">
            Units
            <select aria-label="Units" value={prefs?.units ?? "kg"} onChange={(e) => sync.updatePreferences({ units: e.target.value as "kg" | "lb" })}>
              <option value="kg">kg</option>
              <option value="lb">lb</option>
            </select>
          </label>
          <label className="inline">
            <input
              type="checkbox"
              checked={prefs?.settings?.show_monitor ?? true}
              onChange={(e) => sync.updatePreferences({ showMonitor: e.target.checked })}
            />
            Show sync monitor
          </label>
        </div>
      </header>
      <div className="layout">
        <nav className="sidebar" aria-label="Plans">
          <form
            className="new-plan"
            aria-label="New plan"
            onSubmit={async (e) => {
              e.preventDefault();
              const id = await sync.createPlan(newName.trim() || "New plan", newModel || models[0]?.id || null);
              setNewName("");
              setSelected(id);
            }}
          >
            <input aria-label="New plan name" placeholder="New plan name" value={newName} onChange={(e) => setNewName(e.target.value)} />
            <select aria-label="New plan model" value={newModel} onChange={(e) => setNewModel(e.target.value)}>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
            <button type="submit" className="primary">
              Create plan
            </button>
          </form>
          <ul className="plan-list">
            {sorted.map((plan) => (
              <li key={plan.id}>
                <button type="button" aria-current={plan.id === current ? "page" : undefined} onClick={() => setSelected(plan.id)}>
                  {plan.name || "Untitled plan"} <span className="muted">· {plan.weeks} wk</span>
                </button>
              </li>
            ))}
          </ul>
          {plans && plans.length === 0 && <p className="muted">No plans yet: create one above.</p>}
        </nav>
        <main className="main">
          {current ? (
            <PlanProvider key={current} planId={current}>
              <PlanEditor onDeleted={() => setSelected(null)} />
            </PlanProvider>
          ) : (
            <p className="muted">Pick a plan or create one. Every edit is saved in this browser at once and synced to the server in the background.</p>
          )}
        </main>
      </div>
      {(prefs?.settings?.show_monitor ?? true) && <SyncMonitor defaultOpen />}
    </div>
  );
}
