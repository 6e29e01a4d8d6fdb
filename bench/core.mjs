// The native core (benches/core.rs, release build): enqueue and take-due per change at 10k, 100k and 1M writes
// pending, heap bytes per pending write beyond its payload, and the editing trace replayed on a virtual clock
// under each `Fill` policy (handed to the trace section). Runs `cargo bench --bench core -- --machine`
// and reads its `#bench {...}` lines.
export const title = "Native core (cargo bench --bench core)";
export const order = 30;

export async function bench(ctx) {
  ctx.log("cargo bench --bench core (builds the release bench first)");
  const out = await ctx.run("cargo", ["bench", "--quiet", "--bench", "core", "--", "--machine", ...(ctx.quick ? ["--quick"] : [])]);
  const lines = out
    .split("\n")
    .filter((l) => l.startsWith("#bench "))
    .map((l) => JSON.parse(l.slice("#bench ".length)));
  if (!lines.length) throw new Error(`benches/core.rs printed no #bench lines:\n${out.slice(-2000)}`);
  const of = (figure) => lines.filter((l) => l.figure === figure);
  const largest = Math.max(...of("enqueue_ns").map((l) => l.pending));
  const label = (n) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`);
  for (const [figure, name, target] of [
    ["enqueue_ns", "enqueue", "<= 300"],
    ["take_due_ns", "take-due", "<= 500"],
  ]) {
    for (const l of of(figure)) {
      const atTarget = l.pending === 1_000_000 || (l.pending === largest && largest < 1_000_000);
      ctx.figure(`${name} at ${label(l.pending)} pending`, l.value, {
        unit: "ns/change",
        target: atTarget ? `${target} (at 1M)` : undefined,
      });
    }
  }
  const overhead = of("overhead_bytes");
  for (const l of overhead) {
    ctx.figure(`bytes per pending write beyond payload, ${label(l.pending)}`, l.value, {
      unit: "bytes",
      target: l.pending === largest ? "<= 100" : undefined,
    });
  }
  if (ctx.quick) ctx.note("--quick: 10k pending only (the full run adds 100k and 1M).");
  const trace = {};
  for (const l of lines.filter((l) => l.figure.startsWith("trace_"))) {
    (trace[{ "due only": "due", "fill all": "fill", "idle 1 s": "idle" }[l.fill]] ??= {})[l.figure.slice("trace_".length)] = l.value;
  }
  ctx.shared.set("nativeTrace", trace);
}
