import assert from "node:assert/strict";
import {
  childEnv,
  lastJsonLine,
  runChild,
  WorkerOutputError,
} from "./child.ts";

Deno.test("lastJsonLine: takes the last non-empty line and insists on an object", () => {
  assert.deepEqual(lastJsonLine('log line\n{"a": 1}\n\n'), { a: 1 });
  assert.throws(() => lastJsonLine(""), WorkerOutputError);
  assert.throws(() => lastJsonLine("not json"), /not JSON/);
  assert.throws(() => lastJsonLine("[1, 2]"), /not a JSON object/);
});

Deno.test("childEnv: removes, then sets", () => {
  const env = childEnv({ A: "1", B: "2", C: "3" }, { C: "x", D: "4" }, ["B"]);
  assert.deepEqual(env, { A: "1", C: "x", D: "4" });
});

Deno.test("runChild: answer, failure, environment and timeout", async () => {
  const deno = Deno.execPath();
  const ok = await runChild({
    cmd: deno,
    args: [
      "eval",
      'console.log("noise"); console.log(JSON.stringify({ v: Deno.env.get("BENCH_X") ?? null, u: Deno.env.get("BENCH_U") ?? null }))',
    ],
    env: { BENCH_X: "set" },
    unsetEnv: ["BENCH_U"],
    timeoutMs: 30_000,
  });
  assert.ok(ok.ok, ok.ok ? "" : ok.error);
  assert.deepEqual(ok.json, { v: "set", u: null });

  const bad = await runChild({
    cmd: deno,
    args: ["eval", 'console.error("boom"); Deno.exit(3)'],
    timeoutMs: 30_000,
  });
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? "" : bad.error, /exit code 3: boom/);

  const slow = await runChild({
    cmd: deno,
    args: ["eval", "setTimeout(() => {}, 60_000)"],
    timeoutMs: 300,
  });
  assert.equal(slow.ok, false);
  assert.match(slow.ok ? "" : slow.error, /timed out/);
});
