// Many things going wrong at once, as they do for real users: four users (two per wire mode), each editing in
// its own browser context with the default IndexedDB store, while the server fails requests, drops answers
// after committing, resets connections, hangs and slows down, and the pages are reloaded, crashed and taken
// offline between edits. At the end every server row must be what that user's edits make it, and nothing may
// be on the failed list. Against the dev server on PGlite; with DATABASE_URL set, on that PostgreSQL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { admin, devToken, rows, seededPick } from "../e2e/helpers.mjs";
import { crashPage, openPage, withServerAndBrowser } from "./page.mjs";

const USERS = 4;
const STEPS = 30;
const EDITS = 30;
const RECORDS = 60;
const FAULTS = [
  { failRate: { p: 0.3, status: 503, seed: 7 } },
  { commitThenDropNext: 3 },
  { resetNext: 2 },
  { latencyMs: 300 },
  { hangNext: 1, hangMs: 20_000 },
  {},
];

let server, site, browser;
withServerAndBrowser((started) => ({ server, site, browser } = started));

const CREATE = ({ url, mode, user, token }) => {
  window.t.token = token;
  window.t.create({ url, mode, user, maxRetries: 100, syncIntervals: { 0: 0, 1: 100, 2: 400, 3: 1500 } });
};

/** One user's session: edits in steps, with a reload, a crash or an offline spell between some of them. */
async function session(index, run, arrive) {
  const user = `eeeeeee${index}-0000-4000-8000-00000000000${index}`;
  const token = devToken(user);
  const mode = index % 2 ? "rest" : "rpc";
  const args = { url: server.restUrl, mode, user, token };
  const context = await browser.newContext();
  const pick = seededPick(1000 + index);
  const model = new Map();
  const happened = { reload: 0, crash: 0, offline: 0 };
  let clock = Date.parse("2027-01-01T00:00:00Z") + index * 1e7;
  let arrived = false;
  try {
    let page = await openPage(context, site.url);
    await page.evaluate(CREATE, args);
    for (let step = 0; step < STEPS; step++) {
      const edits = [];
      for (let k = 0; k < EDITS; k++) {
        const id = `chaos-${run}-${index}-${pick(RECORDS)}`;
        const last_changed = new Date(clock++).toISOString();
        const priority = pick(4);
        const kind = pick(10);
        const row = model.get(id);
        if (kind < 4) {
          const next = { theme: `t${step}.${k}`, units: pick(2) ? "kg" : "lb" };
          edits.push([id, "upsert", { id, ...next, last_changed }, priority]);
          model.set(id, next);
        } else if (kind < 8) {
          if (!row) continue;
          row.theme = `u${step}.${k}`;
          edits.push([id, "update", { theme: row.theme, last_changed }, priority]);
        } else {
          edits.push([id, "delete", { last_changed }, priority]);
          model.set(id, null);
        }
      }
      await page.evaluate((edits) => {
        for (const [id, op, data, priority] of edits) window.t.sync.queueChange("user_preferences", id, op, data, priority);
      }, edits);
      await new Promise((ok) => setTimeout(ok, pick(250)));
      const event = (step + index) % 10;
      if (event === 3) {
        happened.reload++;
        await page.reload();
        await page.waitForFunction(() => window.ready === true);
        await page.evaluate(CREATE, args);
      } else if (event === 7) {
        happened.crash++;
        await crashPage(context, page);
        await page.close().catch(() => {});
        page = await openPage(context, site.url);
        await page.evaluate(CREATE, args);
      } else if (event === 5) {
        happened.offline++;
        await context.setOffline(true);
        await new Promise((ok) => setTimeout(ok, 200));
        await context.setOffline(false);
      }
    }
    arrived = true;
    await arrive();
    const end = await page.evaluate(async () => {
      const summary = await Promise.race([window.t.sync.forceSyncAll(), new Promise((ok) => setTimeout(() => ok(null), 120_000))]);
      const stats = window.t.sync.stats();
      return { settled: summary !== null, failed: summary?.failed.length ?? -1, pending: stats.pending, conflicts: stats.conflicts };
    });
    const stored = new Map((await rows(server, "user_preferences", token, `id=like.chaos-${run}-${index}-*`)).map((r) => [r.id, r]));
    const wrong = [...model].filter(([id, want]) => {
      const row = stored.get(id);
      return want === null ? row !== undefined : row?.theme !== want.theme || row?.units !== want.units;
    });
    return { mode, happened, end, records: model.size, wrong: wrong.slice(0, 3).map(([id, want]) => ({ id, want, got: stored.get(id) ?? null })) };
  } finally {
    // A session that failed still arrives, or the others would wait for it forever.
    if (!arrived) arrive();
    await context.close();
  }
}

test("four users editing through failures, dropped answers, reloads, crashes and offline spells: the server ends as their edits say", async () => {
  const run = Date.now().toString(36);
  let faulting = true;
  let plans = 0;
  const faults = (async () => {
    while (faulting) {
      await admin(server, "faults", FAULTS[plans++ % FAULTS.length]);
      await new Promise((ok) => setTimeout(ok, 700));
    }
    await admin(server, "faults", {});
  })();
  // Faults stop once every user has made all their edits; then each flushes, and the flush must settle.
  let edited = 0;
  let release;
  const calm = new Promise((ok) => (release = ok));
  const arrive = () => {
    if (++edited === USERS) {
      faulting = false;
      faults.then(release);
    }
    return calm;
  };
  const sessions = await Promise.all(Array.from({ length: USERS }, (_, i) => session(i, run, arrive)));
  assert.ok(plans >= FAULTS.length, `every fault plan was in force at some point (${plans} plans)`);
  for (const s of sessions) {
    assert.ok(s.happened.reload > 0 && s.happened.crash > 0 && s.happened.offline > 0, JSON.stringify(s.happened));
    assert.deepEqual({ mode: s.mode, ...s.end, wrong: s.wrong }, { mode: s.mode, settled: true, failed: 0, pending: 0, conflicts: 0, wrong: [] });
    assert.ok(s.records > RECORDS / 2, `${s.records} records edited`);
  }
});
