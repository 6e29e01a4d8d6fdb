// A new browser (or a cleared one) starts with an empty local database while the server may already hold the
// user's plans: read them once, through the same PostgREST API and the user's token, before seeding anything.
// After that the local database is the source of truth and changes only flow out.
import type { DemoConfig } from "../config";
import { TABLES, type Db } from "../db";

export async function pullIfEmpty(db: Db, config: DemoConfig): Promise<"pulled" | "not-empty" | "unreachable"> {
  const counts = await Promise.all(TABLES.map((t) => db[t].count()));
  if (counts.some((n) => n > 0)) return "not-empty";
  const headers: Record<string, string> = { apikey: config.anonKey, authorization: `Bearer ${config.accessToken ?? config.anonKey}` };
  try {
    const tables = await Promise.all(
      TABLES.map(async (table) => {
        const res = await fetch(`${config.url}/${table}?select=*`, { headers });
        if (!res.ok) throw new Error(`${table}: ${res.status}`);
        const rows = ((await res.json()) as Record<string, unknown>[]).map(({ user_id: _owner, ...row }) => row);
        return [table, rows] as const;
      }),
    );
    await db.transaction("rw", TABLES.map((t) => db[t]), async () => {
      for (const [table, rows] of tables) {
        if (rows.length) await (db.table(table) as { bulkPut(rows: object[]): Promise<unknown> }).bulkPut(rows);
      }
    });
    return "pulled";
  } catch {
    return "unreachable";
  }
}
