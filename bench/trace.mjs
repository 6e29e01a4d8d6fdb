// The editing trace (bench/traces/editing.json) replayed through the built package against the dev server on a
// virtual clock: requests and rows written, against table-level sync (every user action re-sends all nine
// tables) and against naive per-change requests; deadline misses; and the server's rows checked against the
// trace. The library runs its default batching policy (`Fill::Idle`, 1 s); the other policies are not options of
// the JS API, so their figures come from the native replay of the same trace (bench/core.mjs).
import { ANON_KEY, rows } from "../tests/e2e/helpers.mjs";
import { openBenchPage, serveBenchSite } from "./lib/site.mjs";
import { TABLES, baselines, compare, deadlines, finalModel, loadTrace } from "./lib/trace.mjs";

export const title = "Editing trace against the dev server (virtual clock)";
export const order = 40;

const pct = (a, b) => (100 * a) / b;

export async function bench(ctx) {
  const trace = loadTrace(ctx.root);
  const base = baselines(trace);
  const model = finalModel(trace);
  const server = await ctx.devServer();
  const token = server.token();
  const site = await serveBenchSite(ctx.root);
  const browser = await ctx.browser();
  ctx.figure("trace", `${base.actions} actions, ${base.changes} changes, ${(trace.durationMs / 60_000).toFixed(0)} min`, { note: `seed ${trace.seed}` });
  ctx.figure("naive: one request per change", `${base.naive.requests} requests, ${base.naive.rows} rows`);
  ctx.figure("table-level: all nine tables per action", `${base.table.requests} requests, ${base.table.rows} rows`);
  try {
    for (const mode of ctx.quick ? ["rpc"] : ["rpc", "rest"]) {
      await server.admin("reset", {});
      const context = await browser.newContext();
      let result;
      try {
        const { page, errors } = await openBenchPage(context, site);
        result = await page.evaluate(
          async ({ trace, options }) => (await import("/trace.js")).replay(trace, options),
          { trace, options: { url: server.restUrl, apiKey: ANON_KEY, token, mode, batchSize: 10, start: Date.UTC(2026, 0, 1, 9, 0, 0) } },
        );
        if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
      } finally {
        await context.close();
      }
      const stats = await server.admin("stats");
      const rowsWritten = Object.values(stats.rowsWritten).reduce((a, b) => a + b, 0);
      const requests = stats.requests.total;
      if (result.failed.length) throw new Error(`${mode}: ${result.failed.length} changes failed: ${JSON.stringify(result.failed[0])}`);
      const serverRows = {};
      for (const table of TABLES) serverRows[table] = await rows(server, table, token);
      const problems = compare(model, serverRows);
      if (problems.length) throw new Error(`${mode}: the server does not hold what the trace wrote:\n  ${problems.slice(0, 10).join("\n  ")}`);
      const d = deadlines(trace, result);
      ctx.figure(`library, ${mode}: requests`, requests, { note: `${result.sends.length} fetch calls; server rows match the trace` });
      ctx.figure(`library, ${mode}: rows written`, rowsWritten);
      ctx.figure(`library, ${mode}: requests vs table-level`, pct(requests, base.table.requests), { unit: "%", target: mode === "rpc" ? "<= 3" : undefined, digits: 1 });
      ctx.figure(`library, ${mode}: rows vs table-level`, pct(rowsWritten, base.table.rows), { unit: "%", digits: 1 });
      ctx.figure(`library, ${mode}: requests vs naive`, pct(requests, base.naive.requests), { unit: "%", digits: 1 });
      ctx.figure(`library, ${mode}: deadline misses`, d.misses, { target: mode === "rpc" ? "0" : undefined, note: d.misses ? `latest ${d.maxLate} ms late` : `${d.cancelled} changes cancelled before sending` });
      ctx.figure(`library, ${mode}: subscriber notifications`, result.notified, { note: `replay took ${(result.wallMs / 1000).toFixed(1)} s of wall time` });
    }
  } finally {
    await site.close();
  }

  const native = ctx.shared.get("nativeTrace");
  if (native?.due && native?.fill && native?.idle) {
    const row = (name, r) => ctx.figure(`native replay, ${name}: requests / writes / misses`, `${r.requests} / ${r.writes} / ${r.deadline_misses}`);
    row("due only", native.due);
    row("fill all", native.fill);
    row("idle 1 s (default)", native.idle);
    ctx.figure("idle 1 s vs due only: requests change", pct(native.idle.requests - native.due.requests, native.due.requests), { unit: "%", digits: 1 });
    ctx.figure("idle 1 s vs due only: writes change", pct(native.idle.writes - native.due.writes, native.due.writes), { unit: "%", target: "<= +10", digits: 1 });
    ctx.note("The policies other than the default are core options only (not in the JS options): their rows come from benches/core.rs on the same trace, instant server.");
    ctx.note("Lower bound on this trace: 67 moments with critical changes, each a request of its own (4.2 % of table-level).");
  } else {
    ctx.note("batching policies: run with the core section (bench/core.mjs) for the native replay under each.");
  }
}
