// Flushing a burst of updates over a slow link: `rest` mode's PATCHes (one per record, up to four out at once)
// against `rpc` mode's one call per batch, through the built package in headless Chromium, with the dev
// server holding every request for the same added latency (its fault plan), as a distant server would.
// The ratio is the figure: both modes are measured in the same run, on the same rows.
import { randomUUID } from "node:crypto";
import { devToken } from "../tests/e2e/helpers.mjs";
import { applyAsUser } from "./lib/apply.mjs";
import { openBenchPage, serveBenchSite } from "./lib/site.mjs";

export const title = "Flushing updates over a slow link in Chromium (pkg/, dev server)";
export const order = 55;

const LATENCY_MS = 40;

export async function bench(ctx) {
  const count = ctx.quick ? 50 : 200;
  const server = await ctx.devServer();
  const token = devToken(randomUUID());
  const ids = Array.from({ length: count }, (_, i) => `bench-flush-${i}`);
  const seeded = ids.map((id, i) => ({ client_id: "bench-seed", seq: i + 1, table: "exercises", id, op: "upsert", data: { id, name: "seeded" } }));
  await applyAsUser(server.restUrl, token, seeded);
  const site = await serveBenchSite(ctx.root);
  const browser = await ctx.browser();
  const context = await browser.newContext();
  await server.admin("faults", { latencyMs: LATENCY_MS });
  try {
    const { page, errors } = await openBenchPage(context, site);
    const runs = {};
    // Alternated, twice each: the ratio holds on a noisy machine where one absolute time does not.
    for (const round of [1, 2]) {
      for (const mode of ["rest", "rpc"]) {
        const name = `${mode} ${round}`;
        const r = await page.evaluate(async (o) => (await import("/flush.js")).measure(o), { url: server.restUrl, token, mode, ids, name });
        if (r.confirmed !== count || r.failed || r.conflicts) throw new Error(`${name}: ${JSON.stringify(r)}`);
        runs[mode] = Math.min(runs[mode] ?? Infinity, r.ms);
        runs[`${mode} requests`] = r.requests;
      }
    }
    const label = `${count} updates of distinct rows, ${LATENCY_MS} ms added per request, batches of 10`;
    ctx.figure(`${label}: rest`, runs.rest, { unit: "ms", digits: 0, note: `${runs["rest requests"]} batches` });
    ctx.figure(`${label}: rpc`, runs.rpc, { unit: "ms", digits: 0, note: `${runs["rpc requests"]} batches` });
    ctx.figure("rest / rpc flush time", runs.rest / runs.rpc, { digits: 2 });
    ctx.note("Best of two alternated runs per mode. One PATCH per update: sent one at a time, rest would take about ten round trips per batch of ten; with four out at once, three.");
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  } finally {
    await server.admin("faults", {}).catch(() => {});
    await context.close();
    await site.close();
  }
}
