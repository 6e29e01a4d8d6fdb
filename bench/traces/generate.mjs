// Generates bench/traces/editing.json, the editing trace `npm run bench` replays: a person using the training-plan
// demo for about twenty minutes (creating a plan, typing names, adding sessions, blocks and exercises, changing
// series and weeks, progressions, comments, a preference, deleting a session, a save, idle gaps to read). Each
// user action lists the changes the demo's domain hook (www/app/src/sync/useTrainingPlanSync.ts) queues for it,
// with the same tables, columns, ops and priorities, and the time of each (ms from the start).
//
//   node bench/traces/generate.mjs        # rewrites bench/traces/editing.json (deterministic: fixed seed)
//
// The trace is data kept in the repository; regenerate it only to change the workload, and say so in the commit.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { seeded } from "../../www/server/faults.js";

const SEED = 20260101;
const DURATION_MS = 1_200_000;
const BASE = Date.UTC(2026, 0, 1, 9, 0, 0);
const [CRITICAL, HIGH, MEDIUM, LOW] = [0, 1, 2, 3];

// The demo's foreign keys (www/app/src/db.ts PARENTS), as the library's `tables` option.
const PARENTS = {
  training_plans: ["training_models"],
  sessions: ["training_plans"],
  training_blocks: ["sessions"],
  selected_exercises: ["training_blocks", "exercises"],
  progressions: ["selected_exercises"],
  comments: ["training_plans"],
};

/** The dev server's seeded PRNG (mulberry32), so the trace is the same on every run. */
function rng(seed) {
  const next = seeded(seed);
  const int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (list) => list[int(0, list.length - 1)] };
}

export function generate(seed = SEED) {
  const r = rng(seed);
  let t = 0;
  let counter = 0;
  const id = (prefix) => `${prefix}-${(++counter).toString().padStart(5, "0")}`;
  const stamp = () => new Date(BASE + t).toISOString();
  const actions = [];
  let current = null;
  const begin = (name) => {
    current = { name, changes: [] };
    actions.push(current);
  };
  const queue = (table, rowId, op, priority, data) => current.changes.push({ t, table, id: rowId, op, priority, data });
  const wait = (lo, hi) => (t += r.int(lo, hi));

  // What the person has made so far, to pick targets from.
  const models = [];
  const exercises = [];
  const sessions = []; // { id, blocks: [{ id, selected: [{ id, series, progressions: [] }] }] }
  let prefs = null;
  let plan = null;

  /** Typing into a text field: one change per keystroke (the demo queues on every input event). */
  const type = (table, rowId, column, priority, text) => {
    for (let i = 1; i <= text.length; i++) {
      queue(table, rowId, "update", priority, { [column]: text.slice(0, i), last_changed: stamp() });
      wait(90, 320);
    }
  };
  const words = ["Base", "Strength", "Block", "Upper", "Lower", "Push", "Pull", "Legs", "Heavy", "Light", "Deload", "Peak", "Volume", "Power"];
  const phrase = () => `${r.pick(words)} ${r.pick(words)}`;

  begin("first start: catalog and preferences");
  for (const name of ["Linear strength", "Hypertrophy", "Endurance"]) {
    const row = { id: id("model"), name, description: null, last_changed: stamp() };
    models.push(row.id);
    queue("training_models", row.id, "insert", CRITICAL, row);
  }
  for (const [name, group] of [["Back squat", "legs"], ["Bench press", "chest"], ["Deadlift", "posterior chain"], ["Overhead press", "shoulders"], ["Pull-up", "back"], ["Barbell row", "back"], ["Romanian deadlift", "hamstrings"], ["Lunge", "legs"]]) {
    const row = { id: id("exercise"), name, muscle_group: group, last_changed: stamp() };
    exercises.push(row.id);
    queue("exercises", row.id, "insert", HIGH, row);
  }
  wait(2_000, 6_000);

  begin("create plan");
  plan = { id: id("plan"), model_id: models[0], name: "New plan", description: null, weeks: 4, last_changed: stamp() };
  queue("training_plans", plan.id, "insert", CRITICAL, { ...plan });
  wait(800, 2_000);

  const actionsByWeight = [
    [10, "type plan name"],
    [14, "add session"],
    [12, "rename session"],
    [12, "add block"],
    [16, "add exercise"],
    [26, "edit series"],
    [8, "rename exercise"],
    [10, "change weeks"],
    [8, "add progression"],
    [8, "edit progression"],
    [5, "comment"],
    [3, "change model"],
    [3, "preference"],
    [3, "delete session"],
    [2, "save plan"],
  ];
  const total = actionsByWeight.reduce((a, [w]) => a + w, 0);
  const chooseAction = () => {
    let x = r.next() * total;
    for (const [w, name] of actionsByWeight) if ((x -= w) < 0) return name;
    return actionsByWeight[0][1];
  };
  const allBlocks = () => sessions.flatMap((s) => s.blocks);
  const allSelected = () => allBlocks().flatMap((b) => b.selected);

  while (t < DURATION_MS) {
    const name = chooseAction();
    switch (name) {
      case "type plan name": {
        begin(name);
        type("training_plans", plan.id, "name", MEDIUM, phrase());
        break;
      }
      case "add session": {
        begin(name);
        const row = { id: id("session"), plan_id: plan.id, name: `Session ${sessions.length + 1}`, position: sessions.length, last_changed: stamp() };
        sessions.push({ id: row.id, blocks: [] });
        queue("sessions", row.id, "insert", CRITICAL, row);
        break;
      }
      case "rename session": {
        if (!sessions.length) continue;
        begin(name);
        type("sessions", r.pick(sessions).id, "name", HIGH, phrase());
        break;
      }
      case "add block": {
        if (!sessions.length) continue;
        begin(name);
        const session = r.pick(sessions);
        const row = { id: id("block"), session_id: session.id, name: `Block ${String.fromCharCode(65 + (session.blocks.length % 26))}`, position: session.blocks.length, last_changed: stamp() };
        session.blocks.push({ id: row.id, selected: [] });
        queue("training_blocks", row.id, "insert", CRITICAL, row);
        break;
      }
      case "add exercise": {
        const blocks = allBlocks();
        if (!blocks.length) continue;
        begin(name);
        const block = r.pick(blocks);
        const series = [1, 2, 3].map(() => ({ reps: 8, weight: 20 }));
        const row = { id: id("selected"), block_id: block.id, exercise_id: r.pick(exercises), name: "Exercise", series, position: block.selected.length, last_changed: stamp() };
        block.selected.push({ id: row.id, series, progressions: [] });
        queue("selected_exercises", row.id, "insert", CRITICAL, row);
        break;
      }
      case "edit series": {
        const selected = allSelected();
        if (!selected.length) continue;
        begin(name);
        const target = r.pick(selected);
        for (let clicks = r.int(1, 8); clicks > 0; clicks--) {
          const i = r.int(0, target.series.length - 1);
          target.series = target.series.map((s, j) => (j === i ? (r.next() < 0.5 ? { ...s, reps: Math.max(1, s.reps + r.pick([-1, 1])) } : { ...s, weight: Math.max(0, s.weight + r.pick([-2.5, 2.5, 5])) }) : s));
          queue("selected_exercises", target.id, "update", HIGH, { series: target.series, last_changed: stamp() });
          wait(250, 1_200);
        }
        break;
      }
      case "rename exercise": {
        const selected = allSelected();
        if (!selected.length) continue;
        begin(name);
        type("selected_exercises", r.pick(selected).id, "name", HIGH, phrase());
        break;
      }
      case "change weeks": {
        begin(name);
        for (let clicks = r.int(1, 5); clicks > 0; clicks--) {
          plan.weeks = Math.max(1, Math.min(104, plan.weeks + (r.next() < 0.7 ? 1 : -1)));
          queue("training_plans", plan.id, "update", LOW, { weeks: plan.weeks, last_changed: stamp() });
          wait(180, 500);
        }
        break;
      }
      case "add progression": {
        const selected = allSelected();
        if (!selected.length) continue;
        begin(name);
        const target = r.pick(selected);
        const week = (target.progressions.at(-1)?.week ?? 1) + 1;
        const row = { id: id("progression"), selected_exercise_id: target.id, week, series: target.series.map((s) => ({ ...s, weight: s.weight + 2.5 })), last_changed: stamp() };
        target.progressions.push({ id: row.id, week, series: row.series });
        queue("progressions", row.id, "insert", CRITICAL, row);
        break;
      }
      case "edit progression": {
        const progressions = allSelected().flatMap((s) => s.progressions);
        if (!progressions.length) continue;
        begin(name);
        const target = r.pick(progressions);
        for (let clicks = r.int(1, 4); clicks > 0; clicks--) {
          target.series = target.series.map((s) => ({ ...s, weight: s.weight + 2.5 }));
          queue("progressions", target.id, "update", MEDIUM, { series: target.series, last_changed: stamp() });
          wait(300, 1_000);
        }
        break;
      }
      case "comment": {
        begin(name);
        wait(4_000, 15_000); // typing the comment locally; the demo queues it once, on submit
        const row = { id: id("comment"), plan_id: plan.id, body: `${phrase()} felt ${r.pick(["easy", "hard", "right"])}`, created_at: stamp(), last_changed: stamp() };
        queue("comments", row.id, "insert", LOW, row);
        break;
      }
      case "change model": {
        begin(name);
        queue("training_plans", plan.id, "update", MEDIUM, { model_id: r.pick(models), last_changed: stamp() });
        break;
      }
      case "preference": {
        begin(name);
        prefs ??= { id: id("prefs"), units: "kg", settings: {} };
        prefs = { ...prefs, units: prefs.units === "kg" ? "lb" : "kg", last_changed: stamp() };
        queue("user_preferences", prefs.id, "upsert", LOW, { ...prefs });
        break;
      }
      case "delete session": {
        if (sessions.length < 3) continue;
        begin(name);
        const [session] = sessions.splice(r.int(0, sessions.length - 1), 1);
        const last_changed = stamp();
        const selected = session.blocks.flatMap((b) => b.selected);
        for (const p of selected.flatMap((s) => s.progressions)) queue("progressions", p.id, "delete", CRITICAL, { last_changed });
        for (const s of selected) queue("selected_exercises", s.id, "delete", CRITICAL, { last_changed });
        for (const b of session.blocks) queue("training_blocks", b.id, "delete", CRITICAL, { last_changed });
        queue("sessions", session.id, "delete", CRITICAL, { last_changed });
        break;
      }
      case "save plan": {
        begin(name);
        queue("training_plans", plan.id, "upsert", CRITICAL, { ...plan, last_changed: stamp() });
        current.flush = true; // the demo's savePlan calls forceSyncAll()
        break;
      }
    }
    // Between actions: a short pause, often a longer look at the plan, now and then a real break.
    const p = r.next();
    wait(...(p < 0.65 ? [400, 2_500] : p < 0.95 ? [2_500, 12_000] : [20_000, 90_000]));
  }
  return { seed, durationMs: t, parents: PARENTS, intervalsMs: [0, 5_000, 30_000, 300_000], actions };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const trace = generate();
  const out = fileURLToPath(new URL("./editing.json", import.meta.url));
  // One action per line: diffable, and small enough to keep in the repository.
  const head = JSON.stringify({ ...trace, actions: undefined }).slice(0, -1);
  writeFileSync(out, `${head},"actions":[\n${trace.actions.map((a) => JSON.stringify(a)).join(",\n")}\n]}\n`);
  const changes = trace.actions.reduce((n, a) => n + a.changes.length, 0);
  console.log(`${out}: ${trace.actions.length} actions, ${changes} changes, ${(trace.durationMs / 60_000).toFixed(1)} minutes`);
}
