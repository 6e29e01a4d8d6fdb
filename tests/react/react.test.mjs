// The React bindings (record-sync/react from the built pkg/) in a real Chromium: bounded re-renders under a burst,
// a stable snapshot and stable callbacks, StrictMode-safe ownership, cleanup on unmount, the SyncMonitor's
// behaviour and accessibility, and server-side rendering in Node.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, PKG, launchBrowser, newPage, requirePkg, serveStatic, waitFor } from "../e2e/helpers.mjs";

const OUT = join(ROOT, "build/react-test");
let browser, site;

before(async () => {
  requirePkg();
  const esbuild = await import("esbuild");
  mkdirSync(OUT, { recursive: true });
  await esbuild.build({
    entryPoints: [join(ROOT, "tests/react/app.jsx")],
    bundle: true,
    format: "esm",
    outfile: join(OUT, "app.js"),
    jsx: "automatic",
    target: "es2022",
    alias: { "record-sync": PKG },
    define: { "process.env.NODE_ENV": '"development"' },
    logLevel: "error",
  });
  // The package loads its wasm from `new URL("./record_sync_bg.wasm", import.meta.url)`: next to the bundle here.
  copyFileSync(join(PKG, "record_sync_bg.wasm"), join(OUT, "record_sync_bg.wasm"));
  writeFileSync(join(OUT, "index.html"), `<!doctype html><meta charset="utf-8"><title>react bindings</title><script type="module" src="/app.js"></script>`);
  site = await serveStatic(OUT);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

async function open() {
  const context = await browser.newContext();
  const page = await newPage(context);
  await page.goto(site.url);
  await page.waitForFunction(() => window.rsTest?.ready === true);
  return { context, page };
}

describe("record-sync/react in Chromium", () => {
  test("useRemoteChanges subscribes once, calls the latest listener, and unsubscribes on unmount", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mountRemote());
      await page.waitForFunction(() => window.rsTest.remote.listeners.size === 1);
      const heard = await page.evaluate(async () => {
        const r = window.rsTest.remote;
        r.emit([{ table: "t", id: "a", op: "upsert", row: { id: "a" }, version: 1 }]);
        r.render("second");
        await new Promise((ok) => setTimeout(ok, 50));
        r.emit([{ table: "t", id: "a", op: "delete", row: null, version: 2 }, { table: "t", id: "b", op: "delete", row: null, version: 3 }]);
        return { heard: r.heard, subscribes: r.subscribes };
      });
      assert.deepEqual(heard, { heard: [["first", 1], ["second", 2]], subscribes: 1 });
      await page.evaluate(() => window.rsTest.unmount());
      assert.equal(await page.evaluate(() => window.rsTest.remote.listeners.size), 0);
    } finally {
      await context.close();
    }
  });

  test("useRemoteChanges under a provider without pull: its error boundary says so, and the rest of the tree works", async () => {
    const { context, page } = await open();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.evaluate(() => window.rsTest.mountRemoteWithoutPull());
      await page.getByTestId("refused").waitFor({ timeout: 5000 });
      assert.match(await page.getByTestId("refused").textContent(), /pull/);
      await page.evaluate(() => window.rsTest.actions.queueChange("items", "a", "upsert", { id: "a" }));
      await page.getByText("pending 1").waitFor({ timeout: 5000 });
      assert.deepEqual(errors, [], "nothing escaped to the page");
      // The refused subscription left nothing behind that keeps the provider's instance alive.
      const destroyed = await page.evaluate(async () => {
        const t = window.rsTest;
        t.unmount();
        await new Promise((ok) => setTimeout(ok, 50));
        return t.instances.map(t.isDestroyed);
      });
      assert.deepEqual(destroyed, [true]);
    } finally {
      await context.close();
    }
  });

  test("a burst of 1000 changes re-renders a bounded number of times; snapshot and callbacks stay stable", async (t) => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount());
      await page.waitForFunction(() => window.rsTest.instances.length === 1);
      const before = await page.evaluate(() => ({ ...window.rsTest.renders }));
      // 1000 changes to 100 records, queued synchronously in one task, then a forced flush.
      const summary = await page.evaluate(async () => {
        const t = window.rsTest;
        for (let i = 0; i < 1000; i++) t.api.queueHighChange("items", `r${i % 100}`, "upsert", { id: `r${i % 100}`, v: i });
        const s = await t.api.forceSyncAll();
        return { confirmed: s.confirmed, failed: s.failed.length };
      });
      assert.equal(summary.failed, 0);
      await page.waitForFunction(() => document.querySelector("[data-testid=hook]").textContent.startsWith("pending 0"));
      await page.waitForTimeout(100);
      const r = await page.evaluate(() => {
        const t = window.rsTest;
        const inst = t.instances[0];
        return {
          renders: { ...t.renders },
          sends: t.sends.length,
          sent: t.sends.reduce((a, b) => a + b, 0),
          stats: inst.stats(),
          sameStats: inst.stats() === inst.stats(),
          lastSeenIsCurrent: t.stats[t.stats.length - 1] === inst.stats(),
          text: document.querySelector("[data-testid=hook]").textContent,
        };
      });
      assert.equal(r.stats.totalChanges, 1000);
      assert.equal(r.sent, 100, "merged: one write per record");
      assert.equal(r.stats.successfulSyncs, 100);
      assert.ok(r.sameStats, "stats() returns the same object while nothing changes");
      assert.ok(r.lastSeenIsCurrent, "the hook renders the instance's current snapshot");
      const hookRenders = r.renders.hook - before.hook;
      const selectorRenders = r.renders.selector - before.selector;
      t.diagnostic(`1000 changes, ${r.sends} requests: useRecordSync re-rendered ${hookRenders} times, useSyncStats(busy) ${selectorRenders}`);
      // Renders follow notifications (at most one per tick), not changes: one for the burst, then a few per
      // request at most.
      assert.ok(hookRenders <= 3 * r.sends + 4, `hook re-rendered ${hookRenders} times for 1000 changes in ${r.sends} requests`);
      assert.ok(hookRenders < 100, `hook re-rendered ${hookRenders} times`);
      assert.ok(selectorRenders <= 3, `a selector of (busy) re-rendered ${selectorRenders} times`);
      assert.match(r.text, /pending 0, synced 100, listed 0/);

      // A parent re-render without any change keeps the same snapshot and the same callbacks.
      const stable = await page.evaluate(async () => {
        const t = window.rsTest;
        const n = t.stats.length;
        t.rerender();
        t.rerender();
        await new Promise((ok) => setTimeout(ok, 50));
        return {
          rendered: t.stats.length - n,
          sameSnapshot: t.stats.slice(n - 1).every((s) => s === t.stats[n - 1]),
          callbacks: Object.values(t.callbacks).map((set) => set.size),
        };
      });
      assert.ok(stable.rendered >= 1);
      assert.ok(stable.sameSnapshot, "syncStats is the same object across renders without changes");
      assert.deepEqual(stable.callbacks, [1, 1, 1], "queueChange, queueHighChange, forceSyncAll never change identity");
      assert.equal(await page.evaluate(() => window.rsTest.actionObjects.size), 1, "useRecordSyncActions returns one object");
    } finally {
      await context.close();
    }
  });

  test("useRecordSyncActions: sync ticks render nothing, the actions stay the same object", async (t) => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount());
      await page.waitForFunction(() => window.rsTest.instances.length === 1 && window.rsTest.actions !== null);
      const r = await page.evaluate(async () => {
        const t = window.rsTest;
        const before = { ...t.renders };
        // Queued through the actions hook itself: 1000 changes to 100 records, in 10 tasks, then a flush.
        for (let task = 0; task < 10; task++) {
          for (let i = 0; i < 100; i++) t.actions.queueHighChange("items", `a${i}`, "upsert", { id: `a${i}`, v: task });
          await new Promise((ok) => setTimeout(ok, 0));
        }
        const summary = await t.actions.forceSyncAll();
        await new Promise((ok) => setTimeout(ok, 100));
        return {
          confirmed: summary.confirmed,
          hook: t.renders.hook - before.hook,
          actions: t.renders.actions - before.actions,
          objects: t.actionObjects.size,
          sameFunctions: t.actions.queueHighChange === t.api.queueHighChange && t.actions.forceSyncAll === t.api.forceSyncAll,
        };
      });
      t.diagnostic(`1000 changes: useRecordSync rendered ${r.hook} times, useRecordSyncActions ${r.actions}`);
      assert.ok(r.confirmed >= 100, `confirmed ${r.confirmed}`);
      assert.ok(r.hook >= 3, `the stats did change (useRecordSync rendered ${r.hook} times)`);
      assert.equal(r.actions, 0, "a component on useRecordSyncActions does not re-render on sync ticks");
      assert.equal(r.objects, 1, "the actions object is the same on every render");
      assert.ok(r.sameFunctions, "useRecordSync returns the same functions as useRecordSyncActions");
    } finally {
      await context.close();
    }
  });

  test("after a reload, a provider whose tree only takes actions sends the stored queue without another edit", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount());
      await page.waitForFunction(() => window.rsTest.instances.length === 1 && window.rsTest.instances[0].stats().durable === true);
      // Paused, so the change is stored and not sent; the pause is not stored, so the next page sends it.
      await page.evaluate(() => {
        window.rsTest.instances[0].pause();
        window.rsTest.api.queueHighChange("items", "kept", "upsert", { id: "kept" });
      });
      await page.waitForTimeout(300);
      assert.deepEqual(await page.evaluate(() => window.rsTest.sends), [], "nothing was sent before the reload");

      await page.reload();
      await page.waitForFunction(() => window.rsTest?.ready === true);
      await page.evaluate(() => window.rsTest.mount({ actionsOnly: true }));
      await page.waitForFunction(() => window.rsTest.sends.length > 0, null, { timeout: 5000 }).catch(() => {});
      const r = await page.evaluate(() => ({ sends: window.rsTest.sends, renders: window.rsTest.renders.actions }));
      assert.deepEqual(r.sends, [1], "the restored change went out with no subscriber and no edit on this page");
      assert.equal(r.renders, 1, "sending it rendered nothing");
    } finally {
      await context.close();
    }
  });

  test("switching users with the provider's key: A's stored changes never go out under B, and go when A is back", async () => {
    const { context, page } = await open();
    try {
      const live = () => page.evaluate(() => [...new Set(window.rsTest.instances)].filter((i) => !window.rsTest.isDestroyed(i)).map((i) => i.stats()));
      await page.evaluate(() => window.rsTest.mountUser("user-a"));
      await page.waitForFunction(() => window.rsTest.instances.some((i) => !window.rsTest.isDestroyed(i) && i.stats().durable));
      // Low priority with slow intervals: A's changes wait, stored.
      await page.evaluate(() => {
        for (const id of ["a1", "a2"]) window.rsTest.actions.queueLowChange("items", id, "upsert", { id });
      });
      await page.getByText("pending 2").waitFor({ timeout: 5000 });

      await page.evaluate(() => window.rsTest.mountUser("user-b"));
      await page.getByText("pending 0").waitFor({ timeout: 5000 });
      await page.waitForFunction(() => window.rsTest.instances.some((i) => !window.rsTest.isDestroyed(i) && i.stats().durable && i.stats().user === "user-b"));
      const b = await page.evaluate(async () => {
        const s = await window.rsTest.actions.forceSyncAll();
        return { confirmed: s.confirmed, sent: [...window.rsTest.sentIds] };
      });
      assert.deepEqual(b, { confirmed: 0, sent: [] }, "B's instance sends none of A's changes");
      assert.deepEqual((await live()).map((s) => s.user), ["user-b"], "one live instance, B's");

      await page.evaluate(() => window.rsTest.actions.queueCriticalChange("items", "b1", "upsert", { id: "b1" }));
      await page.waitForFunction(() => window.rsTest.sentIds.includes("b1"));

      await page.evaluate(() => window.rsTest.mountUser("user-a"));
      await page.waitForFunction(() => window.rsTest.instances.some((i) => !window.rsTest.isDestroyed(i) && i.stats().durable && i.stats().user === "user-a"));
      const a = await page.evaluate(async () => {
        const s = await window.rsTest.actions.forceSyncAll();
        return { confirmed: s.confirmed, sent: [...window.rsTest.sentIds].sort() };
      });
      assert.deepEqual(a, { confirmed: 2, sent: ["a1", "a2", "b1"] }, "A's stored changes went once A was back");
      assert.deepEqual((await live()).map((s) => s.user), ["user-a"]);
    } finally {
      await context.close();
    }
  });

  test("StrictMode: exactly one live instance while mounted; unmount destroys what the provider created", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount({ strict: true }));
      await page.waitForFunction(() => window.rsTest.instances.length >= 1);
      await page.waitForTimeout(50);
      const mounted = await page.evaluate(() => {
        const t = window.rsTest;
        const unique = [...new Set(t.instances)];
        return { count: unique.length, destroyed: unique.map(t.isDestroyed) };
      });
      // StrictMode mounts, unmounts and remounts every effect: the provider keeps one instance through that.
      assert.equal(mounted.count, 1, `instances created: ${JSON.stringify(mounted)}`);
      assert.equal(mounted.destroyed[0], false, "the instance in use is alive");

      // Queue through the hook, then unmount: the instance is destroyed and nothing renders any more.
      const after = await page.evaluate(async () => {
        const t = window.rsTest;
        t.api.queueLowChange("items", "x", "upsert", { id: "x" });
        const live = t.instances.at(-1);
        const renders = t.renders.hook;
        t.unmount();
        await new Promise((ok) => setTimeout(ok, 50));
        let queueAfterUnmount = "ok";
        try {
          t.api.queueLowChange("items", "y", "upsert", { id: "y" });
        } catch (e) {
          queueAfterUnmount = String(e.message);
        }
        return {
          destroyed: t.instances.map(t.isDestroyed),
          rendersAfter: t.renders.hook - renders,
          queueAfterUnmount,
          sendsOfLive: live,
        };
      });
      assert.ok(after.destroyed.every(Boolean), "every instance the provider created is destroyed");
      assert.equal(after.rendersAfter, 0);
      assert.notEqual(after.queueAfterUnmount, "ok", "a stale queue function does not revive a destroyed provider silently");
    } finally {
      await context.close();
    }
  });

  test("a provider given an instance observes it and leaves it alive on unmount, unsubscribed", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount({ external: true }));
      await page.waitForFunction(() => window.rsTest.api !== null);
      const r = await page.evaluate(async () => {
        const t = window.rsTest;
        t.api.queueCriticalChange("items", "a", "upsert", { id: "a" });
        await t.api.forceSyncAll();
        await new Promise((ok) => setTimeout(ok, 20));
        const text = document.querySelector("[data-testid=hook]").textContent;
        t.unmount();
        const renders = t.renders.hook;
        t.external.queueCriticalChange("items", "b", "upsert", { id: "b" });
        const summary = await t.external.forceSyncAll();
        await new Promise((ok) => setTimeout(ok, 20));
        const out = { text, alive: !t.isDestroyed(t.external), confirmed: summary.confirmed, rendersAfter: t.renders.hook - renders };
        t.external.destroy();
        return out;
      });
      assert.match(r.text, /synced 1/);
      assert.ok(r.alive, "the caller's instance is not destroyed by the provider");
      assert.equal(r.confirmed, 1);
      assert.equal(r.rendersAfter, 0, "no renders after unmount");
    } finally {
      await context.close();
    }
  });

  test("with flushOnHide the provider sends everything queued when the page is hidden, whatever the priority", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount({ slow: true, flushOnHide: true }));
      await page.waitForFunction(() => window.rsTest.instances.length === 1);
      await page.evaluate(() => window.rsTest.api.queueLowChange("items", "late", "upsert", { id: "late" }));
      await page.waitForTimeout(200);
      assert.equal(await page.evaluate(() => window.rsTest.sends.length), 0, "a low-priority change waits for its deadline");
      await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pagehide")));
      await page.waitForFunction(() => window.rsTest.sends.length === 1);
      await page.waitForFunction(() => document.querySelector("[data-testid=hook]").textContent.includes("synced 1"));
    } finally {
      await context.close();
    }
  });

  test("by default a hidden page sends what is due soon and keeps the rest stored", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount({ slow: "hide" }));
      await page.waitForFunction(() => window.rsTest.instances.length === 1);
      await page.waitForFunction(() => window.rsTest.instances[0].stats().durable === true);
      await page.evaluate(() => {
        window.rsTest.api.queueLowChange("items", "later", "upsert", { id: "later" });
        window.rsTest.api.queueHighChange("items", "soon", "upsert", { id: "soon" });
      });
      await page.waitForTimeout(200);
      assert.equal(await page.evaluate(() => window.rsTest.sends.length), 0, "both wait for their deadlines");
      await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent("pagehide")));
      await page.waitForFunction(() => window.rsTest.sends.length === 1);
      await page.waitForTimeout(200);
      const r = await page.evaluate(() => ({ sends: window.rsTest.sends, pending: window.rsTest.instances[0].pendingChanges().map((p) => p.id) }));
      assert.deepEqual(r.sends, [1], "only the change due soon left");
      assert.deepEqual(r.pending, ["later"], "the low-priority change stays queued (and stored)");
    } finally {
      await context.close();
    }
  });

  test("SyncMonitor: labelled, keyboard-operable, shows pending per priority and failures, retry and discard work", async () => {
    const { context, page } = await open();
    try {
      await page.evaluate(() => window.rsTest.mount({ monitor: "closed" }));
      const region = page.getByRole("region", { name: "Sync monitor" });
      await region.waitFor();
      const toggle = region.getByRole("button", { expanded: false });
      await toggle.focus();
      await page.keyboard.press("Enter");
      await assertExpanded(region, true);
      await page.keyboard.press("Escape");
      await assertExpanded(region, false);
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("aria-expanded")), "false", "focus returns to the toggle");
      await page.keyboard.press("Space");
      await assertExpanded(region, true);

      // Pending per priority: pause, queue one of each and two low, read the panel.
      await page.evaluate(() => {
        const t = window.rsTest;
        t.instances.at(-1).pause();
        t.api.queueCriticalChange("items", "c", "upsert", { id: "c" });
        t.api.queueHighChange("items", "h", "upsert", { id: "h" });
        t.api.queueMediumChange("items", "m", "upsert", { id: "m" });
        t.api.queueLowChange("items", "l1", "upsert", { id: "l1" });
        t.api.queueLowChange("items", "l2", "upsert", { id: "l2" });
      });
      await waitText(region.locator("[data-stat=pending]"), "5");
      assert.equal(await region.locator("[data-stat=pending-critical]").textContent(), "1");
      assert.equal(await region.locator("[data-stat=pending-low]").textContent(), "2");
      assert.equal(await region.getByRole("list", { name: /Pending changes/ }).getByRole("listitem").count(), 5);
      assert.match(await region.getByRole("button").first().textContent(), /Paused, 5 pending/);

      // A permanent server error: the failed list, the last error, then retry one and discard the other.
      await page.evaluate(() => {
        window.rsTest.failMode = "permanent";
        window.rsTest.instances.at(-1).resume();
      });
      await region.getByRole("button", { name: "Sync now" }).click();
      const failedList = region.getByRole("list", { name: /Failed changes/ });
      await waitFor(async () => (await failedList.getByRole("listitem").count()) === 5, 10_000);
      assert.match(await region.locator("[data-stat=last-error]").textContent(), /check constraint/);
      assert.equal(await region.locator("[data-stat=pending]").textContent(), "0");
      await page.evaluate(() => (window.rsTest.failMode = null));
      await region.getByRole("button", { name: "Retry upsert items c" }).click();
      await region.getByRole("button", { name: "Discard upsert items h" }).click();
      await waitFor(async () => (await failedList.getByRole("listitem").count()) === 3, 10_000);
      await region.getByRole("button", { name: "Retry all failed" }).click();
      await region.getByRole("button", { name: "Sync now" }).click();
      await waitFor(async () => (await region.getByRole("list", { name: /Failed changes/ }).count()) === 0, 10_000);
      await waitText(region.locator("[data-stat=successful]"), "4");
      assert.match(await region.getByRole("status").textContent(), /All changes synced/);
      assert.doesNotMatch(await region.locator("[data-stat=last-error]").getAttribute("class") ?? "", /error/);

      // A write the server did not take (a newer row stood): never "All changes synced".
      await page.evaluate(() => {
        window.rsTest.failMode = "conflict";
        window.rsTest.api.queueCriticalChange("items", "c", "upsert", { id: "c" });
      });
      await waitText(region.locator("[data-stat=conflicts]"), "1");
      const status = await region.getByRole("status").textContent();
      assert.doesNotMatch(status, /All changes synced/);
      assert.match(status, /1 conflict/);
      assert.equal(await region.getAttribute("data-state"), "conflict");
      await page.evaluate(() => (window.rsTest.failMode = null));
    } finally {
      await context.close();
    }
  });
});

describe("record-sync/react during server-side rendering", () => {
  test("renderToString of the provider, the hook and SyncMonitor in Node creates no instance and does not crash", async () => {
    const React = await import("react");
    const { renderToString } = await import("react-dom/server");
    const core = await import(join(PKG, "index.js"));
    const bindings = await import(join(PKG, "react/index.js"));
    assert.equal(core.isSupported, false);
    let used = null;
    function Uses() {
      used = bindings.useRecordSync();
      return React.createElement("span", null, `pending ${used.syncStats.pending}`);
    }
    const html = renderToString(
      React.createElement(
        bindings.RecordSyncProvider,
        { options: { transport: { url: "http://127.0.0.1:1/rest/v1", apiKey: "k" } } },
        React.createElement(Uses),
        React.createElement(bindings.SyncMonitor, { defaultOpen: true }),
      ),
    );
    assert.match(html, /pending 0/);
    assert.match(html, /Sync monitor/);
    assert.equal(used.syncStats, bindings.INITIAL_STATS);
  });

  test("bad arguments to the store, the provider and the hooks are TypeErrors that name them", async () => {
    const React = await import("react");
    const { renderToString } = await import("react-dom/server");
    const bindings = await import(join(PKG, "react/index.js"));
    const options = { transport: { url: "http://127.0.0.1:1/rest/v1", apiKey: "k" } };
    const refused = (fn, pattern) => assert.throws(fn, (e) => e instanceof TypeError && pattern.test(e.message));
    refused(() => bindings.createRecordSyncStore(), /^createRecordSyncStore: pass \{ options \} or \{ instance \}/);
    refused(() => bindings.createRecordSyncStore({}), /exactly one of `options` or `instance`/);
    refused(() => bindings.createRecordSyncStore({ instance: 5 }), /^createRecordSyncStore: `instance` must be a RecordSync/);
    const render = (props, child) => renderToString(React.createElement(bindings.RecordSyncProvider, props, child && React.createElement(child)));
    refused(() => render({ instance: 5 }), /^RecordSyncProvider: `instance` must be a RecordSync/);
    refused(() => render({ options }, () => bindings.useSyncStats(5)), /^useSyncStats: selector must be a function/);
    refused(() => render({ options }, () => bindings.useRemoteChanges("x")), /^useRemoteChanges: listener must be a function/);
  });
});

async function assertExpanded(region, expanded) {
  await waitFor(async () => (await region.locator("button[aria-expanded]").first().getAttribute("aria-expanded")) === String(expanded), 5000);
  const hidden = await region.locator(".rs-monitor__body").evaluate((el) => el.hidden);
  assert.equal(hidden, !expanded);
}

async function waitText(locator, text) {
  await waitFor(async () => (await locator.textContent()) === text, 10_000, () => `waiting for ${text}`);
}
