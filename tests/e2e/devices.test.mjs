// Two devices of one user (two browser contexts: separate IndexedDB, separate record-sync instances) on the
// training-plan demo against the dev server (issue 11): an edit on one appears on the other within a second by
// realtime; edits made while the other was offline arrive by catch-up when it is back; concurrent edits of one
// record end as the same row on both devices and on the server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, ANON_KEY, admin, buildDemo, devToken, launchBrowser, newPage, requirePkg, rows, serveStatic, startDevServer, waitFor } from "./helpers.mjs";

const DEMO_OUT = join(ROOT, "build/demo-devices");
const INTERVALS = { 0: 0, 1: 1500, 2: 2500, 3: 3500 };

let browser, server, site, token;

before(async () => {
  requirePkg();
  await buildDemo(DEMO_OUT);
  server = await startDevServer();
  await admin(server, "reset", {});
  token = devToken();
  writeFileSync(
    join(DEMO_OUT, "config.json"),
    JSON.stringify({ url: server.restUrl, anonKey: ANON_KEY, accessToken: token, mode: "rpc", dbName: "devices", syncIntervals: INTERVALS }),
  );
  site = await serveStatic(DEMO_OUT);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.close();
});

const monitor = (page) => page.getByRole("region", { name: "Sync monitor" });
const stat = async (page, name) => ((await monitor(page).locator(`[data-stat=${name}]`).textContent()) ?? "").trim();
const drained = async (page) => (await stat(page, "pending")) === "0" && (await stat(page, "in-flight")) === "0";
/** The plan's entry in the sidebar ("Shared plan · 9 wk"). */
const planEntry = (page) => page.getByRole("navigation", { name: "Plans" }).getByRole("button", { name: /^Shared plan/ });
const weeksShown = async (page) => Number((await planEntry(page).textContent()).match(/· (\d+) wk/)?.[1]);

async function serverWeeks() {
  return (await rows(server, "training_plans", token)).find((p) => p.name === "Shared plan")?.weeks;
}

async function device() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await newPage(context);
  await page.goto(site.url);
  await page.getByRole("button", { name: "Create plan" }).waitFor();
  return { context, page };
}

test("two devices of one user: realtime within a second, catch-up after offline, concurrent edits converge", async () => {
  const a = await device();
  await waitFor(async () => (await a.page.getByLabel("Exercise to add").count()) === 0 && (await stat(a.page, "successful")) === "11", 20_000);
  await a.page.getByLabel("New plan name").fill("Shared plan");
  await a.page.getByRole("button", { name: "Create plan" }).click();
  await a.page.getByRole("heading", { name: "Shared plan" }).waitFor();
  await waitFor(() => drained(a.page), 20_000);

  // The second device starts empty and gets the plan; then its socket is live.
  const b = await device();
  await planEntry(b.page).waitFor({ timeout: 10_000 });
  await waitFor(async () => (await stat(b.page, "remote")).includes("live"), 10_000, () => b.page.log.slice(-5).join(" | "));
  await waitFor(async () => (await stat(a.page, "remote")).includes("live"), 10_000);
  const start = await weeksShown(b.page);

  // An edit on A: once A's write is on the server, B shows it within a second (realtime, no polling).
  await a.page.getByRole("button", { name: "More weeks" }).click();
  await waitFor(async () => (await serverWeeks()) === start + 1, 10_000);
  const written = Date.now();
  await waitFor(async () => (await weeksShown(b.page)) === start + 1, 5_000);
  const lag = Date.now() - written;
  console.log(`[devices] an edit on one device shown on the other ${lag} ms after its write`);
  assert.ok(lag < 1000, `shown after ${lag} ms`);

  // B goes offline; A edits twice; B shows nothing new until it is back, then catches up.
  await b.context.setOffline(true);
  await a.page.getByRole("button", { name: "More weeks" }).click();
  await a.page.getByRole("button", { name: "More weeks" }).click();
  await waitFor(async () => (await serverWeeks()) === start + 3, 10_000);
  await new Promise((ok) => setTimeout(ok, 500));
  assert.equal(await weeksShown(b.page), start + 1, "nothing arrives while offline");
  await b.context.setOffline(false);
  await waitFor(async () => (await weeksShown(b.page)) === start + 3, 10_000, () => b.page.log.slice(-5).join(" | "));

  // Both edit the same record at once: both end with the server's row.
  await planEntry(b.page).click();
  await b.page.getByRole("heading", { name: "Shared plan" }).waitFor();
  await Promise.all([
    a.page.getByRole("button", { name: "More weeks" }).click(),
    b.page.getByRole("button", { name: "Fewer weeks" }).click(),
  ]);
  // Each wrote an absolute value (start + 4, start + 2); last writer wins on the server, and both devices must
  // end on the server's value, whichever it is. (The demo queues its patch after its local write, so "nothing
  // pending" right after the clicks says nothing yet: the three must agree on a value one of them wrote.)
  let seen = "";
  await waitFor(
    async () => {
      const [server, onA, onB] = [await serverWeeks(), await weeksShown(a.page), await weeksShown(b.page)];
      seen = `server ${server}, A ${onA}, B ${onB}`;
      return (server === start + 4 || server === start + 2) && onA === server && onB === server && (await drained(a.page)) && (await drained(b.page));
    },
    15_000,
    () => seen,
  );
  const weeks = await serverWeeks();
  // B reloads: catch-up goes on from the cursor stored with its queue, so nothing already seen comes again.
  await b.page.reload();
  await waitFor(async () => (await stat(b.page, "remote")).includes("last pull"), 10_000, () => b.page.log.slice(-5).join(" | "));
  // The feed holds a dozen rows of this user by now. From the stored cursor, at most the record both devices just
  // edited comes again: B held A's row of it behind its own change until the catch-up after that change was
  // confirmed, and that catch-up's cursor reaches IndexedDB a moment later; a reload in between reads the record
  // again (remote changes are delivered at least once). Seen once in CI under load: "1 received".
  const received = Number((await stat(b.page, "remote")).match(/^(\d+) received/)?.[1]);
  assert.ok(received <= 1, `a reload does not read the feed from the start: ${received} received`);
  assert.equal(await weeksShown(b.page), weeks);
  for (const d of [a, b]) {
    assert.ok(!d.page.log.some((l) => l.startsWith("[pageerror]")), d.page.log.join("\n"));
    await d.context.close();
  }
});
