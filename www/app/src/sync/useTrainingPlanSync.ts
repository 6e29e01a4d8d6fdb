// The domain hook of the demo: every edit of a training plan, written to the local database first (the UI
// follows at once through live queries) and then queued for the server with the priority its kind deserves:
//
//   CRITICAL  creating and deleting anything, and the explicit "Save plan"  (leaves in the same tick)
//   HIGH      exercises (names, series) and sessions                         (within 5 s)
//   MEDIUM    properties (plan name, goal, model; block names) and progressions (within 30 s)
//   LOW       weeks, comments, preferences                                   (within 5 min)
//
// Repeated edits of one record (typing a name, clicking "+" on weeks) merge in the queue: the server sees one
// write per record per flush, not one per keystroke.
import { useMemo } from "react";
import { useRecordSyncActions } from "record-sync/react";
import {
  newId,
  now,
  type Comment,
  type Db,
  type Exercise,
  type Progression,
  type SelectedExercise,
  type Series,
  type Session,
  type TrainingBlock,
  type TrainingModel,
  type TrainingPlan,
  type UserPreferences,
} from "../db";
import { useDb } from "./AppData";

type Patch<T> = Partial<Omit<T, "id" | "last_changed">>;

export function useTrainingPlanSync() {
  const db = useDb();
  const { queueCriticalChange, queueHighChange, queueMediumChange, queueLowChange, forceSyncAll } = useRecordSyncActions();

  return useMemo(() => {
    /** Applies a patch locally and returns the patch with its new `last_changed`, ready to queue. */
    async function patchLocal<T extends { id: string; last_changed: string }>(
      table: keyof Db & string,
      id: string,
      patch: Patch<T>,
    ): Promise<Record<string, unknown>> {
      const data = { ...patch, last_changed: now() };
      await (db as unknown as Record<string, { update(id: string, p: object): Promise<number> }>)[table].update(id, data);
      return data;
    }

    // Deleting a parent deletes its children, here and on the server, children first (the foreign keys).
    async function sessionTree(sessionIds: string[]) {
      const blocks = await db.training_blocks.where("session_id").anyOf(sessionIds).toArray();
      const selected = await db.selected_exercises.where("block_id").anyOf(blocks.map((b) => b.id)).toArray();
      const progressions = await db.progressions.where("selected_exercise_id").anyOf(selected.map((s) => s.id)).toArray();
      return { blocks, selected, progressions };
    }

    async function deleteTree(tree: {
      progressions: Progression[];
      selected: SelectedExercise[];
      blocks: TrainingBlock[];
      sessions?: Session[];
      comments?: Comment[];
      plan?: TrainingPlan;
    }) {
      const stamp = { last_changed: now() };
      await db.transaction("rw", [db.progressions, db.selected_exercises, db.training_blocks, db.sessions, db.comments, db.training_plans], async () => {
        await db.progressions.bulkDelete(tree.progressions.map((r) => r.id));
        await db.selected_exercises.bulkDelete(tree.selected.map((r) => r.id));
        await db.training_blocks.bulkDelete(tree.blocks.map((r) => r.id));
        if (tree.sessions) await db.sessions.bulkDelete(tree.sessions.map((r) => r.id));
        if (tree.comments) await db.comments.bulkDelete(tree.comments.map((r) => r.id));
        if (tree.plan) await db.training_plans.delete(tree.plan.id);
      });
      for (const r of tree.progressions) queueCriticalChange("progressions", r.id, "delete", stamp);
      for (const r of tree.selected) queueCriticalChange("selected_exercises", r.id, "delete", stamp);
      for (const r of tree.blocks) queueCriticalChange("training_blocks", r.id, "delete", stamp);
      for (const r of tree.sessions ?? []) queueCriticalChange("sessions", r.id, "delete", stamp);
      for (const r of tree.comments ?? []) queueCriticalChange("comments", r.id, "delete", stamp);
      if (tree.plan) queueCriticalChange("training_plans", tree.plan.id, "delete", stamp);
    }

    return {
      // ---- catalog: models and exercises -------------------------------------------------------------
      async createModel(name: string, description: string | null = null): Promise<string> {
        const row: TrainingModel = { id: newId(), name, description, last_changed: now() };
        await db.training_models.add(row);
        queueCriticalChange("training_models", row.id, "insert", { ...row });
        return row.id;
      },
      async createExercise(name: string, muscleGroup: string | null = null): Promise<string> {
        const row: Exercise = { id: newId(), name, muscle_group: muscleGroup, last_changed: now() };
        await db.exercises.add(row);
        queueHighChange("exercises", row.id, "insert", { ...row });
        return row.id;
      },

      // ---- plans -------------------------------------------------------------------------------------
      async createPlan(name: string, modelId: string | null, weeks = 4): Promise<string> {
        const row: TrainingPlan = { id: newId(), model_id: modelId, name, description: null, weeks, last_changed: now() };
        await db.training_plans.add(row);
        queueCriticalChange("training_plans", row.id, "insert", { ...row });
        return row.id;
      },
      async updatePlanProperties(planId: string, patch: Patch<Pick<TrainingPlan, "name" | "description" | "model_id">>) {
        queueMediumChange("training_plans", planId, "update", await patchLocal<TrainingPlan>("training_plans", planId, patch));
      },
      async updatePlanWeeks(planId: string, weeks: number) {
        const clamped = Math.max(1, Math.min(104, Math.round(weeks)));
        queueLowChange("training_plans", planId, "update", await patchLocal<TrainingPlan>("training_plans", planId, { weeks: clamped }));
      },
      /** Adds (or with a negative number removes) weeks, from the stored value: quick clicks never get lost. */
      async addPlanWeeks(planId: string, delta: number) {
        const data = await db.transaction("rw", db.training_plans, async () => {
          const plan = await db.training_plans.get(planId);
          if (!plan) return null;
          const patch = { weeks: Math.max(1, Math.min(104, plan.weeks + delta)), last_changed: now() };
          await db.training_plans.update(planId, patch);
          return patch;
        });
        if (data) queueLowChange("training_plans", planId, "update", data);
      },
      /** The explicit save: the whole plan as it is here, critical, and wait until the server has everything. */
      async savePlan(planId: string) {
        const plan = await db.training_plans.get(planId);
        if (plan) queueCriticalChange("training_plans", planId, "upsert", { ...plan, last_changed: now() });
        return forceSyncAll();
      },
      async deletePlan(planId: string) {
        const plan = await db.training_plans.get(planId);
        if (!plan) return;
        const sessions = await db.sessions.where("plan_id").equals(planId).toArray();
        const comments = await db.comments.where("plan_id").equals(planId).toArray();
        await deleteTree({ ...(await sessionTree(sessions.map((s) => s.id))), sessions, comments, plan });
      },

      // ---- sessions ----------------------------------------------------------------------------------
      async createSession(planId: string, name?: string): Promise<string> {
        const count = await db.sessions.where("plan_id").equals(planId).count();
        const row: Session = { id: newId(), plan_id: planId, name: name ?? `Session ${count + 1}`, position: count, last_changed: now() };
        await db.sessions.add(row);
        queueCriticalChange("sessions", row.id, "insert", { ...row });
        return row.id;
      },
      async updateSession(sessionId: string, patch: Patch<Pick<Session, "name" | "position">>) {
        queueHighChange("sessions", sessionId, "update", await patchLocal<Session>("sessions", sessionId, patch));
      },
      async deleteSession(sessionId: string) {
        const session = await db.sessions.get(sessionId);
        if (!session) return;
        await deleteTree({ ...(await sessionTree([sessionId])), sessions: [session] });
      },

      // ---- training blocks ---------------------------------------------------------------------------
      async createBlock(sessionId: string, name?: string): Promise<string> {
        const count = await db.training_blocks.where("session_id").equals(sessionId).count();
        const row: TrainingBlock = { id: newId(), session_id: sessionId, name: name ?? `Block ${String.fromCharCode(65 + (count % 26))}`, position: count, last_changed: now() };
        await db.training_blocks.add(row);
        queueCriticalChange("training_blocks", row.id, "insert", { ...row });
        return row.id;
      },
      async updateBlock(blockId: string, patch: Patch<Pick<TrainingBlock, "name" | "position">>) {
        queueMediumChange("training_blocks", blockId, "update", await patchLocal<TrainingBlock>("training_blocks", blockId, patch));
      },
      async deleteBlock(blockId: string) {
        const block = await db.training_blocks.get(blockId);
        if (!block) return;
        const selected = await db.selected_exercises.where("block_id").equals(blockId).toArray();
        const progressions = await db.progressions.where("selected_exercise_id").anyOf(selected.map((s) => s.id)).toArray();
        await deleteTree({ progressions, selected, blocks: [block] });
      },

      // ---- selected exercises, series, progressions -------------------------------------------------
      async addExerciseToBlock(blockId: string, exerciseId: string): Promise<string> {
        const exercise = await db.exercises.get(exerciseId);
        const count = await db.selected_exercises.where("block_id").equals(blockId).count();
        const row: SelectedExercise = {
          id: newId(),
          block_id: blockId,
          exercise_id: exerciseId,
          name: exercise?.name ?? "Exercise",
          series: [
            { reps: 8, weight: 20 },
            { reps: 8, weight: 20 },
            { reps: 8, weight: 20 },
          ],
          position: count,
          last_changed: now(),
        };
        await db.selected_exercises.add(row);
        queueCriticalChange("selected_exercises", row.id, "insert", { ...row });
        return row.id;
      },
      async updateSelectedExerciseData(selectedId: string, patch: Patch<Pick<SelectedExercise, "name" | "series" | "position">>) {
        queueHighChange("selected_exercises", selectedId, "update", await patchLocal<SelectedExercise>("selected_exercises", selectedId, patch));
      },
      async updateSeries(selectedId: string, series: Series[]) {
        queueHighChange("selected_exercises", selectedId, "update", await patchLocal<SelectedExercise>("selected_exercises", selectedId, { series }));
      },
      async removeSelectedExercise(selectedId: string) {
        const selected = await db.selected_exercises.get(selectedId);
        if (!selected) return;
        const progressions = await db.progressions.where("selected_exercise_id").equals(selectedId).toArray();
        await deleteTree({ progressions, selected: [selected], blocks: [] });
      },
      /** A progression: the exercise's series for a later week, starting from the previous week's, 2.5 heavier. */
      async addProgressionWeek(selectedId: string): Promise<string> {
        const selected = await db.selected_exercises.get(selectedId);
        const existing = (await db.progressions.where("selected_exercise_id").equals(selectedId).toArray()).sort((a, b) => a.week - b.week);
        const last = existing.at(-1);
        const base = last?.series ?? selected?.series ?? [];
        const row: Progression = {
          id: newId(),
          selected_exercise_id: selectedId,
          week: (last?.week ?? 1) + 1,
          series: base.map((s) => ({ ...s, weight: s.weight + 2.5 })),
          last_changed: now(),
        };
        await db.progressions.add(row);
        queueCriticalChange("progressions", row.id, "insert", { ...row });
        return row.id;
      },
      async updateProgression(progressionId: string, patch: Patch<Pick<Progression, "week" | "series">>) {
        queueMediumChange("progressions", progressionId, "update", await patchLocal<Progression>("progressions", progressionId, patch));
      },
      async removeProgression(progressionId: string) {
        await db.progressions.delete(progressionId);
        queueCriticalChange("progressions", progressionId, "delete", { last_changed: now() });
      },

      // ---- comments and preferences -----------------------------------------------------------------
      async addComment(planId: string, body: string): Promise<string> {
        const stamp = now();
        const row: Comment = { id: newId(), plan_id: planId, body, created_at: stamp, last_changed: stamp };
        await db.comments.add(row);
        queueLowChange("comments", row.id, "insert", { ...row });
        return row.id;
      },
      async deleteComment(commentId: string) {
        await db.comments.delete(commentId);
        queueCriticalChange("comments", commentId, "delete", { last_changed: now() });
      },
      async updatePreferences(patch: { units?: UserPreferences["units"]; showMonitor?: boolean }) {
        const existing = await db.user_preferences.toCollection().first();
        const row: UserPreferences = {
          id: existing?.id ?? newId(),
          units: patch.units ?? existing?.units ?? "kg",
          settings: { ...existing?.settings, ...(patch.showMonitor === undefined ? {} : { show_monitor: patch.showMonitor }) },
          last_changed: now(),
        };
        await db.user_preferences.put(row);
        queueLowChange("user_preferences", row.id, "upsert", { ...row });
      },

      forceSyncAll,
    };
  }, [db, queueCriticalChange, queueHighChange, queueMediumChange, queueLowChange, forceSyncAll]);
}

export type TrainingPlanSync = ReturnType<typeof useTrainingPlanSync>;
