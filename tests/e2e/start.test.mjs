// `npm start` as a new user runs it: it prints the URL, the editor there syncs to the dev server, and Ctrl-C
// (SIGINT) stops both servers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT, ANON_KEY, DEMO_USER, devToken, freePort, launchBrowser, newPage, waitFor } from "./helpers.mjs";

test("npm start: prints the URL, the editor syncs to the dev server, Ctrl-C stops both", async (t) => {
  const serverPort = await freePort();
  const appPort = await freePort();
  const dataDir = join(ROOT, "build", `start-test-data-${process.pid}`);
  const child = spawn("bash", [join(ROOT, "scripts/start.sh")], {
    cwd: ROOT,
    env: { ...process.env, SERVER_PORT: String(serverPort), APP_PORT: String(appPort), DEMO_DATA_DIR: dataDir },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
  const browser = await launchBrowser();
  try {
    const url = `http://127.0.0.1:${appPort}/`;
    await waitFor(() => out.includes(url), 300_000, () => out.slice(-3000));
    const context = await browser.newContext();
    const page = await newPage(context);
    await page.goto(url);
    try {
      await page.getByLabel("New plan name").waitFor({ timeout: 60_000 });
    } catch (error) {
      throw new Error(`${error.message}\npage log:\n${page.log.join("\n")}\nnpm start:\n${out.slice(-2000)}`);
    }
    await page.getByLabel("New plan name").fill("Started plan");
    await page.getByRole("button", { name: "Create plan" }).click();
    await page.getByRole("heading", { name: "Started plan" }).waitFor();
    const token = devToken(DEMO_USER);
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${serverPort}/rest/v1/training_plans?select=name`, { headers: { apikey: ANON_KEY, authorization: `Bearer ${token}` } });
        return res.ok && (await res.json()).some((p) => p.name === "Started plan");
      },
      20_000,
      () => page.log.slice(-10).join("\n"),
    );
    await context.close();
  } finally {
    await browser.close();
    process.kill(-child.pid, "SIGINT");
    const result = await Promise.race([exited, new Promise((ok) => setTimeout(() => ok(null), 15_000))]);
    if (result === null) process.kill(-child.pid, "SIGKILL");
    assert.ok(result !== null, "npm start stopped on SIGINT");
    const { rmSync } = await import("node:fs");
    rmSync(dataDir, { recursive: true, force: true });
  }
  // Both ports are free again.
  for (const port of [serverPort, appPort]) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(() => true, () => false);
    assert.equal(ok, false, `port ${port} is closed after Ctrl-C`);
  }
  t.diagnostic(out.split("\n").filter((l) => l.includes("http://")).join(" | "));
});
