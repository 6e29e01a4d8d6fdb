// The training-plan demo (www/app, built with Vite against pkg/ as a `file:` dependency) in Chromium against the
// dev server: a person edits a plan; the server ends with exactly what the screen and the local database show,
// in far fewer writes than edits; offline edits wait in SyncMonitor and drain when the network returns; a
// server error shows in SyncMonitor and retrying works. Run once per transport mode (rpc, rest).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  ROOT,
  ANON_KEY,
  DEMO_USER,
  admin,
  devToken,
  launchBrowser,
  newPage,
  requirePkg,
  rows,
  buildDemo,
  serveStatic,
  startDevServer,
  waitFor,
} from "./helpers.mjs";

const DEMO_OUT = join(ROOT, "build/demo");
const SHOTS = join(ROOT, "build/screenshots");
const TABLES = [
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
// Short deadlines so the test does not wait minutes for low-priority changes; still long enough for typing
// and repeated clicks to merge.
const INTERVALS = { 0: 0, 1: 1500, 2: 2500, 3: 3500 };

let browser, server, site, token;

before(async () => {
  requirePkg();
  await buildDemo(DEMO_OUT);
  mkdirSync(SHOTS, { recursive: true });
  server = await startDevServer();
  token = devToken(DEMO_USER);
  site = await serveStatic(DEMO_OUT);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await server?.close();
});

function configure(mode) {
  writeFileSync(
    join(DEMO_OUT, "config.json"),
    JSON.stringify({ url: server.restUrl, anonKey: ANON_KEY, accessToken: token, mode, dbName: `training-plans-${mode}`, syncIntervals: INTERVALS }),
  );
}

/** Every store of the app's IndexedDB database, read directly (not through the app). */
async function localRows(page, dbName) {
  return page.evaluate(async (name) => {
    const db = await new Promise((ok, fail) => {
      const req = indexedDB.open(name);
      req.onsuccess = () => ok(req.result);
      req.onerror = () => fail(req.error);
    });
    const out = {};
    for (const store of db.objectStoreNames) {
      out[store] = await new Promise((ok) => {
        const req = db.transaction(store).objectStore(store).getAll();
        req.onsuccess = () => ok(req.result);
      });
    }
    db.close();
    return out;
  }, dbName);
}

function same(a, b, key) {
  if (a === b) return true;
  if (a == null || b == null) return a == b;
  if (typeof a === "string" && typeof b === "string" && /(_changed|_at)$/.test(key)) return Date.parse(a) === Date.parse(b);
  if (typeof a === "number" || typeof b === "number") return Number(a) === Number(b);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The server holds exactly the local rows: same ids in every table, same values in every column the app has. */
async function assertServerMatchesLocal(page, dbName) {
  const local = await localRows(page, dbName);
  for (const table of TABLES) {
    const serverRows = await rows(server, table, token);
    const mine = (local[table] ?? []).slice().sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(
      serverRows.map((r) => r.id).sort(),
      mine.map((r) => r.id),
      `${table}: the server has exactly the rows the browser has`,
    );
    const byId = new Map(serverRows.map((r) => [r.id, r]));
    for (const row of mine) {
      const remote = byId.get(row.id);
      for (const [key, value] of Object.entries(row)) {
        assert.ok(same(remote[key], value, key), `${table} ${row.id}.${key}: server ${JSON.stringify(remote[key])}, local ${JSON.stringify(value)}`);
      }
      assert.equal(remote.user_id, DEMO_USER, `${table} ${row.id} belongs to the demo user`);
    }
  }
  return local;
}

function monitor(page) {
  return page.getByRole("region", { name: "Sync monitor" });
}

async function stat(page, name) {
  return (await monitor(page).locator(`[data-stat=${name}]`).textContent()).trim();
}

async function waitSynced(page, timeoutMs = 30_000) {
  await waitFor(
    async () => (await stat(page, "pending")) === "0" && (await stat(page, "in-flight")) === "0" && (await stat(page, "failed")) !== null,
    timeoutMs,
    () => "waiting for the queue to drain",
  );
}

function writeCount(stats) {
  const byMethod = stats?.requests?.byMethod ?? {};
  // Catch-up reads of the change feed (issue 11) are POSTs too, but they write nothing.
  const feedReads = stats?.requests?.byTable?.["rpc/record_sync_changes"] ?? 0;
  return (
    Object.entries(byMethod)
      .filter(([method]) => method !== "GET" && method !== "HEAD" && method !== "OPTIONS")
      .reduce((sum, [, n]) => sum + n, 0) - feedReads
  );
}

const sumValues = (o) => Object.values(o ?? {}).reduce((a, b) => a + (typeof b === "number" ? b : 0), 0);

for (const mode of ["rpc", "rest"]) {
  describe(`training-plan demo, ${mode} mode`, () => {
    let context, page;

    before(async () => {
      await admin(server, "reset", {});
      configure(mode);
      context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      page = await newPage(context);
      await page.goto(site.url);
      await page.getByRole("button", { name: "Create plan" }).waitFor();
      await monitor(page).waitFor();
      // The first start seeds this user's catalog (3 models, 8 exercises) and syncs it.
      await waitFor(async () => (await page.getByLabel("Exercise to add").count()) === 0 && (await stat(page, "successful")) === "11", 20_000, () => `seeding: ${page.log.slice(-5).join(" | ")}`);
    });

    after(async () => {
      await context?.close();
    });

    test("editing a plan: the server ends as the screen shows, in far fewer writes than edits", async (t) => {
      const before = await admin(server, "stats");
      const queuedBefore = Number((await stat(page, "total")).split(" ")[0]);

      await page.getByLabel("New plan name").fill("Spring strength");
      await page.getByRole("button", { name: "Create plan" }).click();
      await page.getByRole("heading", { name: "Spring strength" }).waitFor();
      for (let i = 0; i < 3; i++) await page.getByRole("button", { name: "Add session" }).click();
      await page.getByRole("textbox", { name: "Session name" }).nth(2).waitFor();

      const session1 = page.getByRole("region", { name: "Session 1" });
      await session1.getByRole("button", { name: "Add block" }).click();
      await session1.getByRole("button", { name: "Add exercise" }).click();
      await session1.getByLabel("Exercise to add").selectOption({ label: "Deadlift" });
      await session1.getByRole("button", { name: "Add exercise" }).click();
      await session1.getByRole("textbox", { name: "Exercise name" }).nth(1).waitFor();

      // Typing a name: one change per keystroke, one write in the end.
      const name = session1.getByRole("textbox", { name: "Exercise name" }).first();
      await name.click();
      await name.press("ControlOrMeta+a");
      await name.pressSequentially("Front squat, paused", { delay: 25 });
      // Series and progression of that exercise.
      const squat = page.getByRole("group", { name: "Exercise Front squat, paused" });
      await squat.getByLabel("Reps of set 1").fill("5");
      await squat.getByRole("button", { name: "Add set" }).click();
      await squat.getByRole("button", { name: "Add progression week" }).click();
      await squat.getByLabel("Week 2 weight").fill("62.5");

      // Weeks: 4 -> 12 -> 8.
      // Eight clicks in one burst (faster than a re-render): none is lost.
      await page.getByRole("button", { name: "More weeks" }).evaluate((button) => {
        for (let i = 0; i < 8; i++) button.click();
      });
      await waitFor(async () => (await page.getByTestId("weeks").textContent()) === "12", 5000);
      for (let i = 0; i < 4; i++) await page.getByRole("button", { name: "Fewer weeks" }).click();
      await waitFor(async () => (await page.getByTestId("weeks").textContent()) === "8", 5000);

      // Rename session 2 by typing, delete session 3.
      const session2Name = page.getByRole("textbox", { name: "Session name" }).nth(1);
      await session2Name.click();
      await session2Name.press("End");
      await session2Name.pressSequentially(" heavy", { delay: 25 });
      await page.getByRole("button", { name: "Delete session Session 3" }).click();
      await page.getByRole("region", { name: "Session 3" }).waitFor({ state: "detached" });

      await page.getByLabel("New comment").fill("Deload in week 4");
      await page.getByRole("button", { name: "Add comment" }).click();
      await page.getByLabel("Units").selectOption("lb");
      await page.getByLabel("Description").fill("Squat 140 kg");

      // What the screen shows now.
      assert.equal(await page.getByRole("heading", { level: 2 }).first().textContent(), "Spring strength");
      assert.equal(await page.getByTestId("weeks").textContent(), "8");
      const sessionNames = await page.getByRole("textbox", { name: "Session name" }).evaluateAll((els) => els.map((e) => e.value));
      assert.deepEqual(sessionNames, ["Session 1", "Session 2 heavy"]);
      const exerciseNames = await page.getByRole("textbox", { name: "Exercise name" }).evaluateAll((els) => els.map((e) => e.value));
      assert.deepEqual(exerciseNames, ["Front squat, paused", "Deadlift"]);

      // Everything is queued; "Sync now" sends what is not due yet.
      await monitor(page).getByRole("button", { name: "Sync now" }).click();
      await waitSynced(page);
      await page.screenshot({ path: join(SHOTS, `demo-editor-${mode}.png`) });

      const local = await assertServerMatchesLocal(page, `training-plans-${mode}`);
      const plan = (await rows(server, "training_plans", token))[0];
      assert.equal(plan.name, "Spring strength");
      assert.equal(plan.weeks, 8);
      assert.equal(plan.description, "Squat 140 kg");
      assert.deepEqual((await rows(server, "sessions", token)).map((s) => s.name).sort(), ["Session 1", "Session 2 heavy"]);
      const selected = await rows(server, "selected_exercises", token);
      assert.deepEqual(selected.map((s) => s.name).sort(), ["Deadlift", "Front squat, paused"]);
      const squatRow = selected.find((s) => s.name === "Front squat, paused");
      assert.equal(squatRow.series.length, 4);
      assert.equal(squatRow.series[0].reps, 5);
      const progression = (await rows(server, "progressions", token))[0];
      assert.equal(progression.week, 2);
      assert.deepEqual(progression.series.map((s) => s.weight), [62.5, 62.5, 62.5, 62.5]);
      assert.equal((await rows(server, "user_preferences", token))[0].units, "lb");
      assert.equal(local.comments.length, 1);

      // Far fewer writes than edits.
      const afterStats = await admin(server, "stats");
      const edits = Number((await stat(page, "total")).split(" ")[0]) - queuedBefore;
      const writes = writeCount(afterStats) - writeCount(before);
      const rowsWritten = sumValues(afterStats.rowsWritten) - sumValues(before.rowsWritten);
      t.diagnostic(`${mode}: ${edits} edits -> ${writes} write requests, ${rowsWritten} rows written`);
      assert.ok(edits >= 50, `the scenario made ${edits} edits`);
      // rpc sends one request per batch; rest one per table and kind of write in a batch.
      assert.ok(writes * (mode === "rpc" ? 4 : 3) <= edits, `${writes} write requests for ${edits} edits`);
      assert.ok(rowsWritten * 3 <= edits, `${rowsWritten} rows written for ${edits} edits`);
    });

    test("offline: edits continue and wait in SyncMonitor; back online they drain", async () => {
      const before = await admin(server, "stats");
      await context.setOffline(true);
      await waitFor(async () => (await stat(page, "online")) === "Offline", 5000);

      const session1Name = page.getByRole("textbox", { name: "Session name" }).first();
      await session1Name.click();
      await session1Name.press("End");
      await session1Name.pressSequentially(" (offline)", { delay: 20 });
      await page.getByRole("button", { name: "More weeks" }).click();
      await page.getByRole("button", { name: "Add session" }).click();
      await page.getByRole("region", { name: "Session 3" }).waitFor();

      // Well past the high-priority deadline: still pending, nothing reached the server.
      await page.waitForTimeout(INTERVALS[1] + 500);
      assert.ok(Number(await stat(page, "pending")) >= 3, `pending: ${await stat(page, "pending")}`);
      assert.match(await monitor(page).getByTestId("sync-summary").textContent(), /Offline, \d+ pending/);
      const pendingList = monitor(page).getByRole("list", { name: /Pending changes/ });
      assert.ok((await pendingList.getByText(/sessions/).count()) >= 1, "the pending list shows the session changes");
      assert.equal(writeCount(await admin(server, "stats")), writeCount(before), "no write while offline");
      await page.screenshot({ path: join(SHOTS, `demo-offline-${mode}.png`) });

      await context.setOffline(false);
      await waitFor(async () => (await stat(page, "online")) === "Online", 5000);
      await monitor(page).getByRole("button", { name: "Sync now" }).click();
      await waitSynced(page);
      await assertServerMatchesLocal(page, `training-plans-${mode}`);
      const names = (await rows(server, "sessions", token)).map((s) => s.name).sort();
      assert.deepEqual(names, ["Session 1 (offline)", "Session 2 heavy", "Session 3"]);
      assert.equal((await rows(server, "training_plans", token))[0].weeks, 9);
    });

    test("server errors: a 503 shows in SyncMonitor and is retried; a 400 lands in the failed list and Retry works", async () => {
      // Transient: the next request fails with 503; the change is retried on its own.
      await admin(server, "faults", { failNext: { count: 1, status: 503 } });
      await page.getByRole("button", { name: "Add session" }).click();
      await waitFor(async () => /503/.test(await stat(page, "last-error")), 10_000, () => "waiting for the 503 in SyncMonitor");
      await waitSynced(page);
      assert.equal((await rows(server, "sessions", token)).length, 4);

      // Permanent: a 400 puts the change on the failed list; the person retries it from SyncMonitor.
      await admin(server, "faults", { failNext: { count: 1, status: 400 } });
      await page.getByLabel("New comment").fill("Check the squat depth");
      await page.getByRole("button", { name: "Add comment" }).click();
      await monitor(page).getByRole("button", { name: "Sync now" }).click();
      const failedList = monitor(page).getByRole("list", { name: /Failed changes/ });
      await waitFor(async () => (await failedList.getByRole("listitem").count()) >= 1, 10_000, () => "waiting for the failed list");
      assert.match(await monitor(page).getByTestId("sync-summary").textContent(), /failed/);
      assert.match(await stat(page, "last-error"), /400|bad request|fault/i);
      assert.equal((await rows(server, "comments", token)).length, 1, "the failed comment is not on the server");
      await page.screenshot({ path: join(SHOTS, `demo-failed-${mode}.png`) });

      await monitor(page).getByRole("button", { name: "Retry all failed" }).click();
      await waitFor(async () => (await monitor(page).getByRole("list", { name: /Failed changes/ }).count()) === 0, 10_000);
      await waitSynced(page);
      await assertServerMatchesLocal(page, `training-plans-${mode}`);
      assert.equal((await rows(server, "comments", token)).length, 2);
    });

    test("reload at once after editing: nothing is lost, nothing reconciled by hand", async () => {
      // Low-priority clicks (weeks, due in 3.5 s here) and a high-priority name, then a reload right away.
      await page.getByRole("button", { name: "More weeks" }).click();
      await page.getByRole("button", { name: "More weeks" }).click();
      await waitFor(async () => (await page.getByTestId("weeks").textContent()) === "11", 5000);
      const session4 = page.getByRole("textbox", { name: "Session name" }).nth(3);
      await session4.click();
      await session4.press("End");
      await session4.pressSequentially(" reloaded", { delay: 10 });
      // Reload as soon as the app has the edit (in its local database, a few ms after the last keystroke).
      await waitFor(async () => (await localRows(page, `training-plans-${mode}`)).sessions.some((s) => s.name === "Session 4 reloaded"), 5000);
      const before = (await rows(server, "training_plans", token))[0].weeks;
      assert.equal(before, 9, "the clicks had not reached the server before the reload");
      await page.reload();
      await page.getByRole("button", { name: "Create plan" }).waitFor();
      await monitor(page).waitFor();
      await waitFor(async () => (await rows(server, "training_plans", token))[0].weeks === 11, 15_000, () => "the weeks did not arrive");
      await waitFor(async () => (await rows(server, "sessions", token)).some((s) => s.name === "Session 4 reloaded"), 15_000);
      await waitSynced(page);
      await assertServerMatchesLocal(page, `training-plans-${mode}`);
      // Put the name back, for the next test's expectations.
      await page.getByRole("button", { name: /Spring strength/ }).click().catch(() => {});
      const name = page.getByRole("textbox", { name: "Session name" }).nth(3);
      await name.fill("Session 4");
      await monitor(page).getByRole("button", { name: "Sync now" }).click();
      await waitFor(async () => (await rows(server, "sessions", token)).some((s) => s.name === "Session 4"), 15_000);
      await page.getByRole("button", { name: "Fewer weeks" }).click();
      await page.getByRole("button", { name: "Fewer weeks" }).click();
      await monitor(page).getByRole("button", { name: "Sync now" }).click();
      await waitFor(async () => (await rows(server, "training_plans", token))[0].weeks === 9, 15_000);
    });

    test("another browser of the same user starts from the server's rows (no duplicate catalog)", async () => {
      const other = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      try {
        const second = await newPage(other);
        await second.goto(site.url);
        await second.getByRole("button", { name: /Spring strength/ }).click();
        await second.getByRole("textbox", { name: "Session name" }).nth(3).waitFor();
        const names = await second.getByRole("textbox", { name: "Session name" }).evaluateAll((els) => els.map((e) => e.value));
        assert.deepEqual(names.sort(), ["Session 1 (offline)", "Session 2 heavy", "Session 3", "Session 4"]);
        assert.equal(await second.getByTestId("weeks").textContent(), "9");
        await second.waitForTimeout(300);
        assert.equal((await rows(server, "training_models", token)).length, 3, "the catalog was not seeded again");
        assert.equal((await rows(server, "exercises", token)).length, 8);
        await assertServerMatchesLocal(second, `training-plans-${mode}`);
      } finally {
        await other.close();
      }
    });
  });
}
