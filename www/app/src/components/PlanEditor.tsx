import { useState } from "react";
import { useLiveQuery } from "dexie-react-hooks";
import { useDb } from "../sync/AppData";
import { usePlan } from "../sync/PlanContext";
import type { SelectedExercise, Series, Session, TrainingBlock } from "../db";
import { TextField } from "./TextField";

export function PlanEditor({ onDeleted }: { onDeleted: () => void }) {
  const { tree, sync } = usePlan();
  const db = useDb();
  const models = useLiveQuery(() => db.training_models.orderBy("id").toArray(), [db]) ?? [];
  const [saveState, setSaveState] = useState<string | null>(null);
  if (tree === undefined) return <p className="muted">Loading…</p>;
  if (tree === null) return <p className="muted">This plan no longer exists.</p>;
  const { plan, sessions } = tree;

  const save = async () => {
    setSaveState("Saving…");
    try {
      const summary = await sync.savePlan(plan.id);
      setSaveState(summary.failed.length ? `Saved, ${summary.failed.length} change(s) failed` : "Saved to the server");
    } catch (error) {
      setSaveState(`Not saved: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  return (
    <article className="plan" aria-labelledby="plan-heading">
      <header className="plan__header">
        <h2 id="plan-heading">{plan.name || "Untitled plan"}</h2>
        <div className="row">
          <button type="button" className="primary" onClick={save}>
            Save plan
          </button>
          <button
            type="button"
            className="danger"
            onClick={async () => {
              await sync.deletePlan(plan.id);
              onDeleted();
            }}
          >
            Delete plan
          </button>
        </div>
        {saveState && (
          <p className="muted" role="status">
            {saveState}
          </p>
        )}
      </header>

      <section className="card" aria-label="Plan properties">
        <div className="grid">
          <label>
            Plan name
            <TextField value={plan.name} onValue={(name) => sync.updatePlanProperties(plan.id, { name })} aria-label="Plan name" />
          </label>
          <label>
            Model
            <select value={plan.model_id ?? ""} onChange={(e) => sync.updatePlanProperties(plan.id, { model_id: e.target.value || null })}>
              <option value="">No model</option>
              {models.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
          </label>
          <div className="weeks" role="group" aria-label="Weeks">
            <span>Weeks</span>
            <button type="button" aria-label="Fewer weeks" onClick={() => sync.addPlanWeeks(plan.id, -1)}>
              −
            </button>
            <output aria-label="Number of weeks" data-testid="weeks">
              {plan.weeks}
            </output>
            <button type="button" aria-label="More weeks" onClick={() => sync.addPlanWeeks(plan.id, 1)}>
              +
            </button>
          </div>
          <label className="wide">
            Description
            <TextField
              multiline
              value={plan.description ?? ""}
              onValue={(description) => sync.updatePlanProperties(plan.id, { description })}
              aria-label="Description"
            />
          </label>
        </div>
      </section>

      <section aria-labelledby="sessions-heading">
        <div className="row spread">
          <h3 id="sessions-heading">Sessions ({sessions.length})</h3>
          <button type="button" onClick={() => sync.createSession(plan.id)}>
            Add session
          </button>
        </div>
        {sessions.length === 0 && <p className="muted">No sessions yet.</p>}
        {sessions.map((session) => (
          <SessionCard key={session.id} session={session} blocks={tree.blocksBySession.get(session.id) ?? []} />
        ))}
      </section>

      <Comments />
    </article>
  );
}

function SessionCard({ session, blocks }: { session: Session; blocks: TrainingBlock[] }) {
  const { sync } = usePlan();
  return (
    <section className="card session" aria-label={session.name} data-session-id={session.id}>
      <div className="row spread">
        <TextField value={session.name} onValue={(name) => sync.updateSession(session.id, { name })} aria-label="Session name" className="title-input" />
        <div className="row">
          <button type="button" onClick={() => sync.createBlock(session.id)}>
            Add block
          </button>
          <button type="button" className="danger" aria-label={`Delete session ${session.name}`} onClick={() => sync.deleteSession(session.id)}>
            Delete session
          </button>
        </div>
      </div>
      {blocks.map((block) => (
        <BlockCard key={block.id} block={block} />
      ))}
    </section>
  );
}

function BlockCard({ block }: { block: TrainingBlock }) {
  const { tree, sync } = usePlan();
  const db = useDb();
  const exercises = useLiveQuery(() => db.exercises.orderBy("name").toArray(), [db]) ?? [];
  const [choice, setChoice] = useState("");
  const selected = tree?.selectedByBlock.get(block.id) ?? [];
  const exerciseId = choice || exercises[0]?.id || "";
  return (
    <div className="block" role="group" aria-label={`Block ${block.name}`}>
      <div className="row spread">
        <TextField value={block.name} onValue={(name) => sync.updateBlock(block.id, { name })} aria-label="Block name" className="subtitle-input" />
        <div className="row">
          <select aria-label="Exercise to add" value={exerciseId} onChange={(e) => setChoice(e.target.value)}>
            {exercises.map((x) => (
              <option key={x.id} value={x.id}>
                {x.name}
              </option>
            ))}
          </select>
          <button type="button" disabled={!exerciseId} onClick={() => sync.addExerciseToBlock(block.id, exerciseId)}>
            Add exercise
          </button>
          <button type="button" className="link" aria-label={`Delete block ${block.name}`} onClick={() => sync.deleteBlock(block.id)}>
            Delete block
          </button>
        </div>
      </div>
      {selected.length === 0 && <p className="muted">No exercises in this block.</p>}
      {selected.map((se) => (
        <SelectedExerciseRow key={se.id} selected={se} />
      ))}
    </div>
  );
}

function SelectedExerciseRow({ selected }: { selected: SelectedExercise }) {
  const { tree, sync, units } = usePlan();
  const progressions = tree?.progressionsBySelected.get(selected.id) ?? [];
  const setSeries = (series: Series[]) => sync.updateSeries(selected.id, series);
  return (
    <div className="exercise" role="group" aria-label={`Exercise ${selected.name}`} data-selected-id={selected.id}>
      <div className="row spread">
        <TextField
          value={selected.name}
          onValue={(name) => sync.updateSelectedExerciseData(selected.id, { name })}
          aria-label="Exercise name"
        />
        <button type="button" className="link" aria-label={`Remove exercise ${selected.name}`} onClick={() => sync.removeSelectedExercise(selected.id)}>
          Remove
        </button>
      </div>
      <table className="series">
        <caption className="sr-only">Series of {selected.name}</caption>
        <thead>
          <tr>
            <th scope="col">Set</th>
            <th scope="col">Reps</th>
            <th scope="col">Weight ({units})</th>
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {selected.series.map((s, i) => (
            <tr key={i}>
              <td>{i + 1}</td>
              <td>
                <TextField
                  type="number"
                  min={0}
                  aria-label={`Reps of set ${i + 1}`}
                  value={String(s.reps)}
                  onValue={(v) => setSeries(selected.series.map((x, j) => (j === i ? { ...x, reps: Number(v) } : x)))}
                />
              </td>
              <td>
                <TextField
                  type="number"
                  min={0}
                  step={0.5}
                  aria-label={`Weight of set ${i + 1}`}
                  value={String(s.weight)}
                  onValue={(v) => setSeries(selected.series.map((x, j) => (j === i ? { ...x, weight: Number(v) } : x)))}
                />
              </td>
              <td>
                <button type="button" className="link" aria-label={`Remove set ${i + 1}`} onClick={() => setSeries(selected.series.filter((_, j) => j !== i))}>
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row">
        <button type="button" onClick={() => setSeries([...selected.series, selected.series.at(-1) ?? { reps: 8, weight: 20 }])}>
          Add set
        </button>
        <button type="button" onClick={() => sync.addProgressionWeek(selected.id)}>
          Add progression week
        </button>
      </div>
      {progressions.length > 0 && (
        <ul className="progressions" aria-label={`Progression of ${selected.name}`}>
          {progressions.map((p) => (
            <li key={p.id}>
              <span>Week {p.week}</span>
              <label className="inline">
                Weight ({units})
                <TextField
                  type="number"
                  step={0.5}
                  aria-label={`Week ${p.week} weight`}
                  value={String(p.series[0]?.weight ?? 0)}
                  onValue={(v) => sync.updateProgression(p.id, { series: p.series.map((s) => ({ ...s, weight: Number(v) })) })}
                />
              </label>
              <span className="muted">
                {p.series.length} × {p.series[0]?.reps ?? 0}
              </span>
              <button type="button" className="link" aria-label={`Remove week ${p.week}`} onClick={() => sync.removeProgression(p.id)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Comments() {
  const { tree, sync } = usePlan();
  const [text, setText] = useState("");
  if (!tree) return null;
  return (
    <section className="card" aria-labelledby="comments-heading">
      <h3 id="comments-heading">Comments</h3>
      <ul className="comments">
        {tree.comments.map((c) => (
          <li key={c.id}>
            <span>{c.body}</span>
            <button type="button" className="link" aria-label={`Delete comment ${c.body}`} onClick={() => sync.deleteComment(c.id)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim()) sync.addComment(tree.plan.id, text.trim());
          setText("");
        }}
      >
        <input aria-label="New comment" placeholder="Add a comment" value={text} onChange={(e) => setText(e.target.value)} />
        <button type="submit">Add comment</button>
      </form>
    </section>
  );
}
