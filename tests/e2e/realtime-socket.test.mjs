// The realtime socket (its section of src/web/shell.js) against the dev server through a TCP proxy that can silence the
// realtime connection, as a NAT timeout or a network change does: no FIN, no RST, no event in the page. Page
// timers run on Playwright's clock, so the heartbeats that notice it take no real time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { launchBrowser, startDevServer, devToken, waitFor } from "./helpers.mjs";
import { servePage, openPage } from "../durable/page.mjs";

const USER = "cccccccc-0000-4000-8000-00000000000c";
let server, site, browser, proxy, token;
const links = new Set();

before(async () => {
  server = await startDevServer();
  site = await servePage();
  browser = await launchBrowser();
  token = devToken(USER);
  const target = new URL(server.origin);
  proxy = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    const link = { client, upstream, silent: false, socket: null };
    links.add(link);
    client.on("data", (d) => {
      link.socket ??= d.toString("latin1").startsWith("GET /realtime/v1/websocket");
      if (!link.silent) upstream.write(d);
    });
    upstream.on("data", (d) => link.silent || client.write(d));
    const end = () => {
      links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) socket.on("close", end).on("error", end);
  });
  await new Promise((ok) => proxy.listen(0, "127.0.0.1", ok));
});

after(async () => {
  for (const { client, upstream } of links) client.destroy(), upstream.destroy();
  await new Promise((ok) => proxy?.close(ok) ?? ok());
  await browser?.close();
  await site?.close();
  await server?.close();
});

test("a socket that went silent is noticed by its unanswered heartbeat, and what was written meanwhile arrives", async () => {
  const context = await browser.newContext();
  try {
    await context.clock.install();
    const page = await openPage(context, site.url);
    const url = `http://127.0.0.1:${proxy.address().port}/rest/v1`;
    await page.evaluate(({ url, token }) => {
      window.t.heard = [];
      window.t.token = token;
      window.t.create({ url, mode: "rpc", storage: null, pull: { tables: ["user_preferences"], realtime: true } });
      window.t.sync.onRemoteChanges((changes) => window.t.heard.push(...changes.map((c) => c.id)));
    }, { url, token });
    const live = () => page.evaluate(() => window.t.sync.stats().realtimeConnected);
    await waitFor(live, 5000, async () => "joining: " + JSON.stringify(await page.evaluate(() => window.t.sync.stats())));
    // The realtime connection only: fetches would otherwise wait for their own timeout on a silent keep-alive.
    for (const link of links) link.silent = link.socket;
    const write = await fetch(`${server.restUrl}/user_preferences`, {
      method: "POST",
      headers: { apikey: "dev-anon-key", authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "silent-1", theme: "x" }),
    });
    assert.ok(write.ok, `write: ${write.status}`);
    // Two heartbeat periods (25 s each): the first heartbeat goes unanswered, the second notices.
    await page.clock.fastForward(26_000);
    await page.clock.fastForward(26_000);
    await waitFor(async () => !(await live()), 2000, () => page.log.join(" | "));
    // The catch-up that follows brings the write, and the socket comes back on a new connection.
    await waitFor(() => page.evaluate(() => window.t.heard.includes("silent-1")), 5000, () => "catch-up");
    await page.clock.fastForward(2_000);
    await waitFor(live, 5000, () => "rejoin");
  } finally {
    await context.close();
  }
});
