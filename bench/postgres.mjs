// `npm run bench` section: record_sync_apply under load on a real PostgreSQL (issue 8), by running
// bench/pg-load.mjs (`npm run bench:pg`, which also runs alone) and reading its table. pg-load.mjs starts and
// removes its own throwaway PostgreSQL (or uses DATABASE_URL) and exits non-zero when a deadlock happened or the
// newest write did not win somewhere, which makes this section BROKEN rather than a slow figure.
export const title = "record_sync_apply on PostgreSQL, users x 2 devices racing (bench/pg-load.mjs)";
export const order = 80;

const ROW = /^(\w+)\s+(\d+) changes\/s\s+(\d+) rows\/s\s+(\d+) %\s+(\d+)\s+(.+)$/;

export async function bench(ctx) {
  const args = ctx.quick ? ["--users", "8", "--batches", "4"] : [];
  const out = await ctx.run("node", ["bench/pg-load.mjs", ...args]);
  const lines = out.split("\n").filter((line) => !line.startsWith("[bench:pg]"));
  let rows = 0;
  for (const line of lines) {
    const m = ROW.exec(line.trim());
    if (!m) continue;
    const [, shape, rpc, upsert, ratio, deadlocks, won] = m;
    rows++;
    ctx.figure(`${shape}: record_sync_apply vs set-based upsert`, `${rpc} / ${upsert}`, { unit: "changes/s" });
    ctx.figure(`${shape}: ratio`, Number(ratio), { unit: "%", target: ">= 50 %" });
    ctx.figure(`${shape}: deadlocks`, Number(deadlocks), { target: "0", note: `newest write won ${won}` });
  }
  if (rows === 0) throw new Error(`bench/pg-load.mjs printed no result table:\n${out.slice(-2000)}`);
  for (const line of lines) if (/^PostgreSQL|^batch latency/.test(line.trim())) ctx.note(line.trim());
}
