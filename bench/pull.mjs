// Catch-up under load (issue 11): 10,000 remote rows of one user paged in by a new instance in headless
// Chromium from the dev server's change feed (rpc/record_sync_changes, PGlite), and the longest time the main
// thread was held meanwhile. The rows are written first through record_sync_apply as a user of their own, so no
// other section's rows count.
import { randomUUID } from "node:crypto";
import { devToken } from "../tests/e2e/helpers.mjs";
import { applyAsUser } from "./lib/apply.mjs";
import { openBenchPage, serveBenchSite } from "./lib/site.mjs";

export const title = "Catch-up of remote changes in Chromium (pkg/, dev server)";
export const order = 60;

function changes(count) {
  return Array.from({ length: count }, (_, i) => {
    const id = `bench-pull-${String(i).padStart(5, "0")}`;
    return { client_id: "bench-other-device", seq: i + 1, table: "exercises", id, op: "upsert", data: { id, name: `Exercise ${i}`, muscle_group: "legs", tags: ["bench"] } };
  });
}

export async function bench(ctx) {
  const count = ctx.quick ? 2_000 : 10_000;
  const pageSize = 500;
  const server = await ctx.devServer();
  const token = devToken(randomUUID());
  ctx.log(`pull: writing ${count} rows`);
  await applyAsUser(server.restUrl, token, changes(count));
  const site = await serveBenchSite(ctx.root);
  const browser = await ctx.browser();
  const context = await browser.newContext();
  try {
    const { page, errors } = await openBenchPage(context, site);
    const r = await page.evaluate(async (o) => (await import("/pull.js")).measure(o), { url: server.restUrl, token, expected: count, pageSize });
    if (r.received !== count) throw new Error(`received ${r.received} of ${count}`);
    const label = `${count.toLocaleString("en")} rows, pages of ${pageSize}`;
    ctx.figure(`${label}: total`, r.totalMs, { unit: "ms", digits: 0, note: "construction to the last row delivered" });
    ctx.figure(`${label}: longest main-thread block`, r.longestBlockMs, { unit: "ms", target: "<= 50", digits: 1 });
    ctx.note("The block is the largest gap between setTimeout(0) probes while paging: a page's parsing, hold-and-rebase and delivery to one listener that counts.");
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  } finally {
    await context.close();
    await site.close();
  }
}
