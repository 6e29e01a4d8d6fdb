// The plan context: the open plan's whole tree from the local database (live: it re-renders on every local
// write, before anything reaches the server) and the plan's actions, built on useTrainingPlanSync, which is
// built on record-sync's useRecordSyncActions (no re-render on sync ticks).
import { createContext, useContext, useMemo, type ReactNode } from "react";
import { useLiveQuery } from "dexie-react-hooks";
import type { Comment, Progression, SelectedExercise, Session, TrainingBlock, TrainingPlan } from "../db";
import { useDb } from "./AppData";
import { useTrainingPlanSync, type TrainingPlanSync } from "./useTrainingPlanSync";

export interface PlanTree {
  plan: TrainingPlan;
  sessions: Session[];
  blocksBySession: Map<string, TrainingBlock[]>;
  selectedByBlock: Map<string, SelectedExercise[]>;
  progressionsBySelected: Map<string, Progression[]>;
  comments: Comment[];
}

interface PlanContextValue {
  tree: PlanTree | null | undefined;
  sync: TrainingPlanSync;
  /** The user's weight unit (a preference). */
  units: "kg" | "lb";
}

const PlanContext = createContext<PlanContextValue | null>(null);

const byPosition = <T extends { position: number; id: string }>(a: T, b: T) => a.position - b.position || a.id.localeCompare(b.id);

function groupBy<T, K extends keyof T>(rows: T[], key: K): Map<T[K], T[]> {
  const map = new Map<T[K], T[]>();
  for (const row of rows) {
    const list = map.get(row[key]);
    if (list) list.push(row);
    else map.set(row[key], [row]);
  }
  return map;
}

export function PlanProvider({ planId, children }: { planId: string; children: ReactNode }) {
  const db = useDb();
  const sync = useTrainingPlanSync();
  const tree = useLiveQuery(async (): Promise<PlanTree | null> => {
    const plan = await db.training_plans.get(planId);
    if (!plan) return null;
    const sessions = (await db.sessions.where("plan_id").equals(planId).toArray()).sort(byPosition);
    const blocks = (await db.training_blocks.where("session_id").anyOf(sessions.map((s) => s.id)).toArray()).sort(byPosition);
    const selected = (await db.selected_exercises.where("block_id").anyOf(blocks.map((b) => b.id)).toArray()).sort(byPosition);
    const progressions = (await db.progressions.where("selected_exercise_id").anyOf(selected.map((s) => s.id)).toArray()).sort(
      (a, b) => a.week - b.week || a.id.localeCompare(b.id),
    );
    const comments = (await db.comments.where("plan_id").equals(planId).toArray()).sort((a, b) => a.created_at.localeCompare(b.created_at));
    return {
      plan,
      sessions,
      blocksBySession: groupBy(blocks, "session_id") as Map<string, TrainingBlock[]>,
      selectedByBlock: groupBy(selected, "block_id") as Map<string, SelectedExercise[]>,
      progressionsBySelected: groupBy(progressions, "selected_exercise_id") as Map<string, Progression[]>,
      comments,
    };
  }, [db, planId]);
  const units = useLiveQuery(async () => (await db.user_preferences.toCollection().first())?.units ?? "kg", [db]) ?? "kg";
  const value = useMemo(() => ({ tree, sync, units }), [tree, sync, units]);
  return <PlanContext.Provider value={value}>{children}</PlanContext.Provider>;
}

export function usePlan(): PlanContextValue {
  const value = useContext(PlanContext);
  if (!value) throw new Error("usePlan outside PlanProvider");
  return value;
}
