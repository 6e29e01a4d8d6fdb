// The local database: IndexedDB through Dexie, one object store per server table. Every edit is written here
// first (the UI reads from here through live queries, so it updates at once) and then queued for the server.
import Dexie, { type EntityTable } from "dexie";

export interface Base {
  id: string;
  last_changed: string;
}
export interface TrainingModel extends Base {
  name: string;
  description: string | null;
}
export interface TrainingPlan extends Base {
  model_id: string | null;
  name: string;
  description: string | null;
  weeks: number;
}
export interface Session extends Base {
  plan_id: string;
  name: string;
  position: number;
}
export interface TrainingBlock extends Base {
  session_id: string;
  name: string;
  position: number;
}
export interface Exercise extends Base {
  name: string;
  muscle_group: string | null;
}
/** One set: the schema's `series` jsonb is an array of these. */
export interface Series {
  reps: number;
  weight: number;
}
export interface SelectedExercise extends Base {
  block_id: string;
  exercise_id: string;
  name: string;
  series: Series[];
  position: number;
}
/** How a selected exercise's series change in a given week of the plan. */
export interface Progression extends Base {
  selected_exercise_id: string;
  week: number;
  series: Series[];
}
export interface Comment extends Base {
  plan_id: string;
  body: string;
  created_at: string;
}
export interface UserPreferences extends Base {
  units: "kg" | "lb";
  settings: { show_monitor?: boolean };
}

export interface Tables {
  training_models: TrainingModel;
  training_plans: TrainingPlan;
  sessions: Session;
  training_blocks: TrainingBlock;
  exercises: Exercise;
  selected_exercises: SelectedExercise;
  progressions: Progression;
  comments: Comment;
  user_preferences: UserPreferences;
}
export type TableName = keyof Tables;

export const TABLES: TableName[] = [
  "training_models",
  "training_plans",
  "sessions",
  "training_blocks",
  "exercises",
  "selected_exercises",
  "progressions",
  "comments",
  "user_preferences",
];

/** Foreign keys of the demo schema, as record-sync's `tables` option: parents are written first. */
export const PARENTS: Partial<Record<TableName, TableName[]>> = {
  training_plans: ["training_models"],
  sessions: ["training_plans"],
  training_blocks: ["sessions"],
  selected_exercises: ["training_blocks", "exercises"],
  progressions: ["selected_exercises"],
  comments: ["training_plans"],
};

export type Db = Dexie & { [K in TableName]: EntityTable<Tables[K], "id"> };

export function openDb(name: string): Db {
  const db = new Dexie(name) as Db;
  db.version(1).stores({
    training_models: "id",
    training_plans: "id, model_id",
    sessions: "id, plan_id",
    training_blocks: "id, session_id",
    exercises: "id, name",
    selected_exercises: "id, block_id",
    progressions: "id, selected_exercise_id",
    comments: "id, plan_id",
    user_preferences: "id",
  });
  return db;
}

export const newId = (): string => crypto.randomUUID();
export const now = (): string => new Date().toISOString();
