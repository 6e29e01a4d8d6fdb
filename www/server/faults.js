// Scripted failures for tests: POST /__admin/faults replaces the plan, DELETE clears it. Counted faults ("next N")
// are used up one request at a time, in the order reset, hang, fail, html, redirect, then commit-then-drop;
// latency, the failure rate and a lowered body limit apply to every matching request.
import { ApiError } from "./errors.js";

const HANG_LIMIT_MS = 60_000;

/** A small seeded generator (mulberry32), so a failure rate with a seed fails the same requests every run (the
 *  benchmarks use it too, for workloads that are the same on every run). */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bad = (message) => new ApiError(400, "PGRST102", `Invalid fault plan: ${message}`);
const count = (v, name) => {
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0) throw bad(`${name} must be a non-negative integer`);
  return v;
};
const httpStatus = (v, name) => {
  if (!Number.isInteger(v) || v < 400 || v > 599) throw bad(`${name} must be an HTTP error status (400-599)`);
  return v;
};
const KEYS = new Set([
  "failNext", "failRate", "latencyMs", "hangNext", "hangMs", "resetNext", "commitThenDropNext", "htmlNext", "redirectNext",
  "bomNext", "maxBodyBytes", "paths",
]);

/**
 * @typedef {{kind: "reset"} | {kind: "hang", ms: number} | {kind: "fail", status: number, retryAfter?: number, body?: unknown}
 *   | {kind: "html"} | {kind: "redirect"} | {kind: "commitThenDrop"} | {kind: "bom"}} Fault
 */
export class Faults {
  constructor() {
    this.clear();
  }
  clear() {
    this.plan = null;
  }

  /** Validates and installs a plan; throws an ApiError (400) and keeps the old plan if it is malformed. */
  set(raw) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw bad("expected a JSON object");
    for (const k of Object.keys(raw)) if (!KEYS.has(k)) throw bad(`unknown key ${k}`);
    const plan = {
      paths: raw.paths ?? "/rest/v1/",
      latencyMs: count(raw.latencyMs, "latencyMs"),
      hangNext: count(raw.hangNext, "hangNext"),
      hangMs: raw.hangMs === undefined ? HANG_LIMIT_MS : Math.min(count(raw.hangMs, "hangMs"), HANG_LIMIT_MS),
      resetNext: count(raw.resetNext, "resetNext"),
      commitThenDropNext: count(raw.commitThenDropNext, "commitThenDropNext"),
      htmlNext: count(raw.htmlNext, "htmlNext"),
      redirectNext: count(raw.redirectNext, "redirectNext"),
      bomNext: count(raw.bomNext, "bomNext"),
      maxBodyBytes: raw.maxBodyBytes === undefined ? null : count(raw.maxBodyBytes, "maxBodyBytes"),
      failNext: null,
      failRate: null,
    };
    if (typeof plan.paths !== "string") throw bad("paths must be a path prefix string");
    if (raw.failNext !== undefined) {
      const f = raw.failNext;
      if (f === null || typeof f !== "object") throw bad("failNext must be an object");
      plan.failNext = {
        skip: count(f.skip, "failNext.skip"),
        count: count(f.count ?? 1, "failNext.count"),
        status: httpStatus(f.status ?? 503, "failNext.status"),
        retryAfter: f.retryAfter === undefined ? undefined : count(f.retryAfter, "failNext.retryAfter"),
        body: f.body,
      };
    }
    if (raw.failRate !== undefined) {
      const f = raw.failRate;
      if (f === null || typeof f !== "object" || typeof f.p !== "number" || f.p < 0 || f.p > 1) {
        throw bad("failRate must be {p: 0..1, status?, seed?}");
      }
      plan.failRate = {
        p: f.p,
        status: httpStatus(f.status ?? 500, "failRate.status"),
        random: f.seed === undefined ? Math.random : seeded(count(f.seed, "failRate.seed")),
      };
    }
    this.plan = plan;
  }

  /**
   * The faults for one request: its added latency and at most one counted fault, used up now.
   * @param {string} path
   * @returns {{latencyMs: number, fault: Fault|null}}
   */
  take(path) {
    const p = this.plan;
    if (!p || !path.startsWith(p.paths)) return { latencyMs: 0, fault: null };
    let fault = null;
    if (p.resetNext > 0) {
      p.resetNext--;
      fault = { kind: "reset" };
    } else if (p.hangNext > 0) {
      p.hangNext--;
      fault = { kind: "hang", ms: p.hangMs };
    } else if (p.failNext && p.failNext.skip > 0) {
      p.failNext.skip--;
    } else if (p.failNext && p.failNext.count > 0) {
      p.failNext.count--;
      fault = { kind: "fail", status: p.failNext.status, retryAfter: p.failNext.retryAfter, body: p.failNext.body };
    } else if (p.failRate && p.failRate.random() < p.failRate.p) {
      fault = { kind: "fail", status: p.failRate.status };
    } else if (p.htmlNext > 0) {
      p.htmlNext--;
      fault = { kind: "html" };
    } else if (p.redirectNext > 0) {
      p.redirectNext--;
      fault = { kind: "redirect" };
    } else if (p.commitThenDropNext > 0) {
      p.commitThenDropNext--;
      fault = { kind: "commitThenDrop" };
    } else if (p.bomNext > 0) {
      p.bomNext--;
      fault = { kind: "bom" };
    }
    return { latencyMs: p.latencyMs, fault };
  }

  /** The request-body limit for a path: the plan's lowered one when it sets one, else the server's. */
  bodyLimit(path, serverLimit) {
    const p = this.plan;
    if (!p || p.maxBodyBytes === null || !path.startsWith(p.paths)) return serverLimit;
    return p.maxBodyBytes;
  }

  toJSON() {
    if (!this.plan) return null;
    const { failRate, ...rest } = this.plan;
    return { ...rest, failRate: failRate && { p: failRate.p, status: failRate.status } };
  }
}
