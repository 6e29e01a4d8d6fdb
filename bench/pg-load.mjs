#!/usr/bin/env node
// Load benchmark for record_sync_apply on a real PostgreSQL: many users, each with two devices racing batches
// over the same records in opposite orders, with timestamps shuffled so that older changes often arrive after
// newer ones. Prints record_sync_apply's changes/s beside a plain set-based upsert with the same last-writer-wins
// guard, measured in the same run on the same workload, and their ratio; counts deadlocks (must be 0); checks that
// the newest write won on every record. Exits non-zero if any check fails.
//
//   npm run bench:pg [-- --users 20 --records 100 --batch 50 --batches 10]
// DATABASE_URL=postgres://... reuses that server (a fresh database is created and dropped); otherwise a
// throwaway PostgreSQL from Debian's packages is started on a free loopback port and removed at exit.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, chmodSync, rmSync, readdirSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { SCHEMA_FILES } from "../www/server/db/schema.js";
// mulberry32: the same workload every run.
import { seeded } from "../www/server/faults.js";

const { values: opt } = parseArgs({
  options: {
    users: { type: "string", default: "20" },
    records: { type: "string", default: "100" },
    batch: { type: "string", default: "50" },
    batches: { type: "string", default: "10" },
    "time-limit": { type: "string", default: "300" },
  },
});
const USERS = Number(opt.users);
const RECORDS = Number(opt.records);
const BATCH = Math.min(Number(opt.batch), RECORDS);
const BATCHES = Number(opt.batches);
const DEVICES = 2;
const say = (m) => console.error(`[bench:pg] ${m}`);

// A hard bound, whatever happens: the throwaway server is stopped on the way out.
const deadline = setTimeout(() => {
  say(`gave up after ${opt["time-limit"]} s`);
  process.exitCode = 1;
  cleanup();
  process.exit(1);
}, Number(opt["time-limit"]) * 1000);
deadline.unref();

let cleanup = () => {};

async function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A PostgreSQL for this run: DATABASE_URL's server, or one started here (as test-server.sh does). */
async function postgres() {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, version: "DATABASE_URL" };
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
  if (!versions.length) throw new Error("no PostgreSQL in /usr/lib/postgresql (apt-get install postgresql), or set DATABASE_URL");
  const bin = join(root, versions.at(-1), "bin");
  const asPg = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  const run = (cmd, args, check = true) => {
    const [c, ...rest] = [...asPg, join(bin, cmd), ...args];
    const r = spawnSync(c, rest, { encoding: "utf8" });
    if (check && r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  };
  const dir = mkdtempSync(join(tmpdir(), "record-sync-bench-pg."));
  chmodSync(dir, 0o755);
  if (asPg.length) execFileSync("chown", ["postgres:", dir]);
  const port = await freePort();
  cleanup = () => {
    cleanup = () => {};
    run("pg_ctl", ["-D", join(dir, "data"), "-m", "immediate", "stop"], false);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", () => cleanup());
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => process.exit(1));
  run("initdb", ["-D", join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  run("pg_ctl", [
    "-D", join(dir, "data"), "-l", join(dir, "postgres.log"), "-w", "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
    "start",
  ]);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, version: `PostgreSQL ${versions.at(-1)}` };
}

const uuid = (u) => `00000000-0000-4000-8000-${String(u + 1).padStart(12, "0")}`;

/**
 * The workloads. "racing": for each user and device, BATCHES batches of BATCH upserts over that user's RECORDS
 * records; device 0 walks them forwards, device 1 backwards, so their row orders always cross. Every change gets
 * a distinct timestamp, shuffled, so arrival order says nothing about which is newest. "disjoint": the same
 * sizes, but every device writes records of its own, with rising timestamps: no contention and no conflicts,
 * the cost of the function itself.
 */
function workload(shape) {
  const random = seeded(7);
  const total = USERS * DEVICES * BATCHES * BATCH;
  const stamps = Array.from({ length: total }, (_, i) => i);
  for (let i = stamps.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [stamps[i], stamps[j]] = [stamps[j], stamps[i]];
  }
  const base = Date.UTC(2026, 0, 1);
  let k = 0;
  const devices = [];
  for (let u = 0; u < USERS; u++) {
    for (let d = 0; d < DEVICES; d++) {
      const batches = [];
      for (let b = 0; b < BATCHES; b++) {
        const owner = shape === "racing" ? `u${u}` : `u${u}-d${d}`;
        const ids = Array.from({ length: BATCH }, (_, i) => `${owner}-r${String((b * BATCH + i) % RECORDS).padStart(4, "0")}`);
        if (d === 1 && shape === "racing") ids.reverse();
        batches.push(
          ids.map((id, i) => {
            const lc = new Date(base + (shape === "racing" ? stamps[k++] : k++)).toISOString();
            return { client_id: `u${u}-dev${d}`, seq: b * BATCH + i + 1, table: "training_plans", id, op: "upsert",
                     data: { name: `${id} by dev${d} batch ${b}`, weeks: 1 + (b % 8), description: "x".repeat(40) }, last_changed: lc };
          }),
        );
      }
      devices.push({ user: uuid(u), batches });
    }
  }
  return devices;
}

/** The newest change of every record: what the table must hold at the end. */
function expected(devices) {
  const want = new Map();
  for (const dev of devices) for (const batch of dev.batches) for (const c of batch) {
    const prev = want.get(c.id);
    if (!prev || c.last_changed > prev.last_changed) want.set(c.id, c);
  }
  return want;
}

const AS_USER = `select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true),
                        set_config('request.jwt.claim.sub', $2, true)`;

// low_water as a client sends it: every seq below this batch's first was answered.
const RPC = `select public.record_sync_apply($1::jsonb, $2)::text as r`;
// The baseline: what a hand-written bulk upsert with the same guard costs. Rows sorted by key so that two such
// statements cannot deadlock each other.
const UPSERT = `insert into public.training_plans as t (id, name, weeks, description, last_changed)
  select r.id, r.name, r.weeks, r.description, r.last_changed
    from jsonb_populate_recordset(null::public.training_plans, $1::jsonb) r order by r.id
  on conflict (id) do update set name = excluded.name, weeks = excluded.weeks, description = excluded.description,
                                 last_changed = excluded.last_changed
   where t.last_changed is null or t.last_changed <= excluded.last_changed`;

/** Runs every device's batches, devices concurrently, each on its own connection, one transaction per batch. */
async function race(url, devices, kind) {
  const clients = await Promise.all(devices.map(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  const codes = {};
  const statuses = {};
  let changes = 0;
  const latencies = [];
  const started = performance.now();
  await Promise.all(devices.map(async (dev, i) => {
    const client = clients[i];
    const claims = JSON.stringify({ sub: dev.user, role: "authenticated" });
    for (const batch of dev.batches) {
      const t0 = performance.now();
      try {
        await client.query("begin");
        await client.query(AS_USER, [claims, dev.user]);
        if (kind === "rpc") {
          const { rows } = await client.query(RPC, [JSON.stringify(batch), batch[0].seq]);
          for (const r of JSON.parse(rows[0].r)) {
            statuses[r.status] = (statuses[r.status] ?? 0) + 1;
            if (r.status === "error") codes[r.code] = (codes[r.code] ?? 0) + 1;
          }
        } else {
          await client.query(UPSERT, [JSON.stringify(batch.map((c) => ({ ...c.data, id: c.id, last_changed: c.last_changed })))]);
        }
        await client.query("commit");
        changes += batch.length;
      } catch (e) {
        await client.query("rollback").catch(() => {});
        codes[e.code ?? "?"] = (codes[e.code ?? "?"] ?? 0) + batch.length;
      }
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  latencies.sort((a, b) => a - b);
  return { kind, changes, seconds, rate: changes / seconds, codes, statuses, p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)] };
}

async function check(admin, want) {
  const { rows } = await admin.query("select id, name, last_changed from public.training_plans");
  const got = new Map(rows.map((r) => [r.id, r]));
  let wrong = 0;
  for (const [id, c] of want) {
    const r = got.get(id);
    if (!r || r.name !== c.data.name || new Date(r.last_changed).toISOString() !== c.last_changed) wrong++;
  }
  return { records: want.size, wrong };
}

const server = await postgres();
const admin = new pg.Client({ connectionString: server.url });
await admin.connect();
const dbName = `rs_bench_${process.pid}`;
await admin.query(`create database ${dbName}`);
const url = new URL(server.url);
url.pathname = `/${dbName}`;
const db = new pg.Client({ connectionString: url.toString() });
await db.connect();
let failed = false;
try {
  for (const f of SCHEMA_FILES) await db.query(readFileSync(f, "utf8"));
  const results = {};
  for (const shape of ["disjoint", "racing"]) {
    const devices = workload(shape);
    const want = expected(devices);
    const total = devices.reduce((n, d) => n + d.batches.length * BATCH, 0);
    say(`${shape}: ${USERS} users x ${DEVICES} devices, ${BATCHES} batches of ${BATCH} upserts each, ${shape === "racing" ? `both devices of a user over the same ${RECORDS} records in opposite orders, timestamps shuffled` : `each device over ${RECORDS} records of its own, timestamps rising`} (${total} changes per run)`);
    const runs = {};
    // Each kind on a fresh table, twice, alternating (the first pair also warms up); the better run counts.
    for (const kind of ["upsert", "rpc", "upsert", "rpc"]) {
      await db.query("truncate public.training_plans cascade; truncate public.record_sync_applied");
      const r = await race(url.toString(), devices, kind);
      const c = await check(db, want);
      r.wrong = c.wrong;
      if (!runs[kind] || r.rate > runs[kind].rate) runs[kind] = r;
      say(`  ${kind}: ${r.changes} changes in ${r.seconds.toFixed(2)} s = ${Math.round(r.rate)}/s, batch p50 ${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms, errors ${JSON.stringify(r.codes)}${kind === "rpc" ? `, results ${JSON.stringify(r.statuses)}` : ""}, records where the newest did not win: ${c.wrong}/${c.records}`);
      if (c.wrong || Object.keys(r.codes).length) failed = true;
    }
    results[shape] = runs;
  }
  console.log(`${server.version}, ${USERS} users x ${DEVICES} devices, batches of ${BATCH}, ${BATCHES} per device; best of two runs each`);
  console.log(`workload   record_sync_apply   set-based upsert, same guard   ratio   deadlocks   newest write won`);
  for (const [shape, runs] of Object.entries(results)) {
    const deadlocks = (runs.rpc.codes["40P01"] ?? 0) + (runs.upsert.codes["40P01"] ?? 0);
    if (deadlocks) failed = true;
    const won = runs.rpc.wrong === 0 && runs.upsert.wrong === 0 ? "on every record" : "NO";
    console.log(
      `${shape.padEnd(10)} ${String(Math.round(runs.rpc.rate)).padStart(7)} changes/s   ${String(Math.round(runs.upsert.rate)).padStart(7)} rows/s` +
        `                ${String(Math.round((runs.rpc.rate / runs.upsert.rate) * 100)).padStart(3)} %   ${String(deadlocks).padStart(9)}   ${won}`,
    );
  }
  const lat = (r) => `${r.p50.toFixed(0)}/${r.p99.toFixed(0)}`;
  console.log(`batch latency p50/p99 ms: ${Object.entries(results).map(([shape, r]) => `${shape}: rpc ${lat(r.rpc)}, upsert ${lat(r.upsert)}`).join("; ")}`);
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await db.end();
  await admin.query(`drop database ${dbName} with (force)`).catch(() => {});
  await admin.end();
}
clearTimeout(deadline);
cleanup();
process.exit(failed ? 1 : 0);
