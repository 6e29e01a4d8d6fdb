// Two devices of one user edit the same records, seeded at random, with remote changes on (issue 11): each keeps a
// local copy as README tells an app to (its own edits at once, other devices' from `onRemoteChanges`), and goes
// offline now and then. Every edit carries `last_changed`. At the end the server holds each record's newest edit,
// and each device's copy equals the server's rows: conflicts, echoes and held changes included. Against the dev
// server on PGlite; with DATABASE_URL set, on that PostgreSQL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { devToken, rows, seededPick } from "../e2e/helpers.mjs";
import { openPage, withServerAndBrowser } from "./page.mjs";

const USER = "d1d1d1d1-0000-4000-8000-0000000000d1";
const STEPS = 40;
const RECORDS = 5;

let server, site, browser;
withServerAndBrowser((started) => ({ server, site, browser } = started));

/** In the page: an instance with remote changes, and the device's copy of the rows kept from them. */
const START = ({ url, user, token, mode, realtime }) => {
  window.copy = new Map();
  window.t.token = token;
  window.t.create({ url, mode, user, pull: { tables: ["user_preferences"], realtime }, syncIntervals: { 0: 0, 1: 100, 2: 300, 3: 1000 } });
  window.t.sync.onRemoteChanges((changes, { reset }) => {
    if (reset) window.copy.clear();
    for (const c of changes) c.op === "delete" ? window.copy.delete(c.id) : window.copy.set(c.id, c.row.theme);
  });
};

/** In the page: the app's edits, each queued and applied to the copy at once. */
const EDIT = (edits) => {
  for (const { id, theme, last_changed, priority } of edits) {
    if (theme === null) {
      window.t.sync.queueChange("user_preferences", id, "delete", { last_changed }, priority);
      window.copy.delete(id);
    } else {
      window.t.sync.queueChange("user_preferences", id, "upsert", { id, theme, last_changed }, priority);
      window.copy.set(id, theme);
    }
  }
};

async function run(seed, mode, realtime) {
  const pick = seededPick(seed);
  const tag = `two-${Date.now().toString(36)}-${seed}`;
  const token = devToken(USER);
  const devices = [];
  /** Each record's newest edit (null: deleted), in the order the edits are made. */
  const newest = new Map();
  let clock = Date.parse("2027-06-01T00:00:00Z") + seed * 1e7;
  try {
    for (let i = 0; i < 2; i++) {
      const context = await browser.newContext();
      const page = await openPage(context, site.url);
      await page.evaluate(START, { url: server.restUrl, user: USER, token, mode, realtime });
      devices.push({ context, page });
    }
    for (let step = 0; step < STEPS; step++) {
      const device = devices[pick(2)];
      const edits = Array.from({ length: 1 + pick(3) }, () => {
        const id = `${tag}-${pick(RECORDS)}`;
        const theme = pick(6) === 0 ? null : `v${clock}`;
        newest.set(id, theme);
        return { id, theme, last_changed: new Date(clock++).toISOString(), priority: pick(4) };
      });
      await device.page.evaluate(EDIT, edits);
      if (pick(12) === 0) {
        await device.context.setOffline(true);
        await new Promise((ok) => setTimeout(ok, 200 + pick(500)));
        await device.context.setOffline(false);
      }
      await new Promise((ok) => setTimeout(ok, pick(150)));
    }
    // Both send everything, then both catch up past each other's last writes.
    for (let round = 0; round < 2; round++) {
      for (const { page } of devices) await page.evaluate(() => window.t.sync.forceSyncAll());
    }
    for (let round = 0; round < 2; round++) {
      for (const { page } of devices) await page.evaluate(() => window.t.sync.pull());
    }
    const stored = new Map((await rows(server, "user_preferences", token, `id=like.${tag}-*`)).map((r) => [r.id, r.theme]));
    const lost = [...newest].filter(([id, theme]) => (stored.get(id) ?? null) !== theme);
    const apart = [];
    for (const [i, { page }] of devices.entries()) {
      const copy = new Map(await page.evaluate((tag) => [...window.copy].filter(([id]) => id.startsWith(tag)), tag));
      for (const id of new Set([...copy.keys(), ...stored.keys()])) {
        if (copy.get(id) !== stored.get(id)) apart.push({ device: i, id, copy: copy.get(id) ?? null, server: stored.get(id) ?? null });
      }
    }
    const conflicts = await Promise.all(devices.map(({ page }) => page.evaluate(() => window.t.sync.stats().conflicts)));
    return { lost, apart, conflicts, records: newest.size };
  } finally {
    for (const { context } of devices) await context.close();
  }
}

for (const [seed, mode, realtime] of [[1, "rpc", true], [2, "rest", true], [5, "rpc", false]]) {
  test(`seed ${seed}, ${mode}, ${realtime ? "realtime" : "catch-up only"}: two devices editing the same records end with the newest edits, and each device's copy equals the server's`, async (t) => {
    const result = await run(seed, mode, realtime);
    t.diagnostic(`${result.records} records; conflicts ${result.conflicts.join(" + ")}`);
    assert.deepEqual({ lost: result.lost, apart: result.apart }, { lost: [], apart: [] });
    assert.ok(result.conflicts[0] + result.conflicts[1] > 0, "the devices' writes met (a conflict at least)");
  });
}
