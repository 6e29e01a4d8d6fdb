// Two users' tabs in one browser, some signing in late, while tabs open, edit, reload, crash and close and the
// network drops: a seeded random check of the queue kept under no user (it moves to the user who signs in,
// src/web/storage.rs) and of tabs sharing a queue (src/web/tabs.rs). Every edit carries `last_changed`, so the
// server keeps the newest edit of each record in whatever order the writes arrive (README, Conflicts). At the end
// every record is its newest edit, every row is its user's, and no request carried a user's record with the
// other user's token. Against the dev server on PGlite; with DATABASE_URL set, on that PostgreSQL.
import { test } from "node:test";
import assert from "node:assert/strict";
import { devToken, rows, seededPick } from "../e2e/helpers.mjs";
import { crashPage, openPage, withServerAndBrowser } from "./page.mjs";

const USERS = { a: "a1a1a1a1-0000-4000-8000-0000000000a1", b: "b1b1b1b1-0000-4000-8000-0000000000b1" };
const STEPS = 20;
const RECORDS = 5;
const MAX_TABS = 3;

let server, site, browser;
withServerAndBrowser((started) => ({ server, site, browser } = started));

/** In the page: an instance for `user` ("user": named in the options, its token from getAccessToken) or one that
 *  knows no user until `setAccessToken` gives the token `delay` ms later ("late"), with `edits` queued first. */
const START = ({ url, mode, kind, uid, token, delay, edits }) => {
  const transport = { url, apiKey: "dev-anon-key", mode };
  const syncIntervals = { 0: 0, 1: 100, 2: 400, 3: 1500 };
  window.t.sync =
    kind === "user"
      ? new window.t.rs.RecordSync({ user: uid, syncIntervals, maxRetries: 100, transport: { ...transport, getAccessToken: () => token } })
      : new window.t.rs.RecordSync({ syncIntervals, maxRetries: 100, transport });
  for (const [id, data, priority] of edits) window.t.sync.queueChange("user_preferences", id, "upsert", data, priority);
  window.signedIn = kind === "user";
  if (!window.signedIn) {
    const sync = window.t.sync;
    setTimeout(() => {
      sync.setAccessToken(token);
      window.signedIn = true;
    }, delay);
  }
};

async function run(seed, mode) {
  const pick = seededPick(seed);
  const tag = `si-${Date.now().toString(36)}-${seed}`;
  const tokens = { a: devToken(USERS.a), b: devToken(USERS.b) };
  const context = await browser.newContext();
  /** Each record's newest edit; `last_changed` counts up from a fixed date, in the order the edits are made. */
  const newest = new Map();
  let clock = Date.parse("2027-01-01T00:00:00Z") + seed * 1e7;
  const crossed = [];
  const happened = { late: 0, reload: 0, crash: 0, close: 0, offline: 0 };
  let tabs = [];

  const edits = (user, count) =>
    Array.from({ length: count }, () => {
      const id = `${tag}-${user}-${pick(RECORDS)}`;
      const theme = `v${clock}`;
      const last_changed = new Date(clock++).toISOString();
      newest.set(id, theme);
      return [id, { id, theme, last_changed }, pick(4)];
    });
  const watch = (page) =>
    page.on("request", async (request) => {
      if (!request.url().startsWith(server.restUrl) || request.method() === "GET") return;
      // `headers()` leaves Authorization out.
      const authorization = (await request.allHeaders().catch(() => ({}))).authorization ?? "";
      let sub = null;
      try {
        sub = JSON.parse(Buffer.from(authorization.split(".")[1], "base64url").toString()).sub;
      } catch {}
      const text = `${decodeURIComponent(request.url())} ${request.postData() ?? ""}`;
      for (const [user, uid] of Object.entries(USERS)) {
        // A queue that is nobody's yet goes with the API key (sub null), which this server refuses (README).
        if (text.includes(`${tag}-${user}-`) && sub !== null && sub !== uid) crossed.push({ records: user, sub, url: request.url() });
      }
    });
  const start = async (tab) => {
    const late = tab.kind === "late";
    await tab.page.evaluate(START, {
      url: server.restUrl, mode, kind: tab.kind, uid: USERS[tab.user], token: tokens[tab.user],
      delay: pick(200), edits: late ? edits(tab.user, 1 + pick(3)) : [],
    });
  };
  // One tab at a time is without a user: what the queue kept under no user holds goes to the first user who signs
  // in (by design), so with two such tabs whose edits they become would be a race.
  const signedIn = (tab) => tab.page.waitForFunction(() => window.signedIn === true, null, { timeout: 10_000 });
  const settleLate = () => Promise.all(tabs.filter((t) => t.kind === "late").map(signedIn));

  try {
    for (let step = 0; step < STEPS; step++) {
      const choices = ["queue", "queue", "queue", "reload", "crash", "crash", "close", "offline"];
      if (tabs.length < MAX_TABS) choices.push("open");
      const choice = tabs.length === 0 ? "open" : choices[pick(choices.length)];
      if (choice === "open") {
        const kind = pick(2) ? "late" : "user";
        if (kind === "late") {
          await settleLate();
          happened.late++;
        }
        const tab = { page: await openPage(context, site.url), kind, user: pick(2) ? "a" : "b" };
        watch(tab.page);
        await start(tab);
        tabs.push(tab);
      } else if (choice === "queue") {
        const tab = tabs[pick(tabs.length)];
        const made = edits(tab.user, 1 + pick(4));
        await tab.page.evaluate((made) => {
          for (const [id, data, priority] of made) window.t.sync.queueChange("user_preferences", id, "upsert", data, priority);
        }, made);
      } else if (choice === "reload") {
        const tab = tabs[pick(tabs.length)];
        // A late tab reloaded starts without a user again.
        await settleLate();
        happened.reload++;
        await tab.page.reload();
        await tab.page.waitForFunction(() => window.ready === true);
        await start(tab);
      } else if (choice === "crash" || choice === "close") {
        const tab = tabs[pick(tabs.length)];
        await signedIn(tab);
        tabs = tabs.filter((t) => t !== tab);
        if (choice === "crash") {
          happened.crash++;
          await crashPage(context, tab.page);
        } else {
          happened.close++;
        }
        await tab.page.close().catch(() => {});
      } else {
        happened.offline++;
        await context.setOffline(true);
        await new Promise((ok) => setTimeout(ok, 100 + pick(400)));
        await context.setOffline(false);
      }
      await new Promise((ok) => setTimeout(ok, pick(300)));
    }

    // Each user signs in once more on a tab of their own, which sends whatever is left of theirs.
    await settleLate();
    const ends = {};
    for (const user of ["a", "b"]) {
      const tab = { page: await openPage(context, site.url), kind: "user", user };
      watch(tab.page);
      await start(tab);
      ends[user] = await tab.page.evaluate(async () => {
        const summary = await Promise.race([window.t.sync.forceSyncAll(), new Promise((ok) => setTimeout(() => ok(null), 60_000))]);
        return { settled: summary !== null, failed: summary?.failed.length ?? -1, pending: window.t.sync.stats().pending };
      });
      tabs.push(tab);
    }

    const wrong = [];
    for (const [user, token] of Object.entries(tokens)) {
      const stored = new Map((await rows(server, "user_preferences", token, `id=like.${tag}-*`)).map((r) => [r.id, r.theme]));
      for (const id of stored.keys()) if (!id.startsWith(`${tag}-${user}-`)) wrong.push({ id, filedUnder: user });
      for (const [id, theme] of newest) {
        if (id.startsWith(`${tag}-${user}-`) && stored.get(id) !== theme) wrong.push({ id, want: theme, got: stored.get(id) ?? null });
      }
    }
    return { happened, ends, wrong, crossed: crossed.slice(0, 3), records: newest.size };
  } finally {
    await context.close();
  }
}

// SIGN_IN_SEEDS=4,5,6 runs other seeds (even ones in rest mode).
const SEEDS = process.env.SIGN_IN_SEEDS?.split(",").map(Number) ?? [1, 2, 3];
for (const [seed, mode] of SEEDS.map((seed) => [seed, seed % 2 ? "rpc" : "rest"])) {
  test(`seed ${seed}, ${mode}: two users' tabs signing in late through reloads, crashes and offline spells end with every record its newest edit, under its user`, async (t) => {
    const result = await run(seed, mode);
    t.diagnostic(`${result.records} records; ${JSON.stringify(result.happened)}`);
    assert.deepEqual(
      { ends: result.ends, wrong: result.wrong, crossed: result.crossed },
      { ends: { a: { settled: true, failed: 0, pending: 0 }, b: { settled: true, failed: 0, pending: 0 } }, wrong: [], crossed: [] },
      JSON.stringify(result.happened),
    );
    // The chosen seeds exercise what the test is about (others may not: a check for these seeds only).
    if (!process.env.SIGN_IN_SEEDS) assert.ok(result.happened.late > 0 && result.records > 4, JSON.stringify(result));
  });
}
