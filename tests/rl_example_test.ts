/**
 * The RL example (`examples/rl.ts`) raises its mean reward: a policy-gradient
 * loop on a verifiable task, run as a user would, 40 steps.
 */
import assert from "node:assert/strict";

Deno.test("examples/rl.ts: 40 steps of importance-sampling RL raise the mean reward", async () => {
  const home = await Deno.makeTempDir({ prefix: "bios-rl-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--config=${new URL("../deno.json", import.meta.url).pathname}`,
        new URL("../examples/rl.ts", import.meta.url).pathname,
        "--steps",
        "40",
      ],
      env: { BIOS_HOME: home, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const m = /first 8 steps ([\d.]+), last 8 steps ([\d.]+)/.exec(text);
    assert.ok(m, text);
    const [first, last] = [Number(m[1]), Number(m[2])];
    console.log(`RL example: mean reward ${first} → ${last}`);
    assert.ok(last > first + 0.1, `reward ${first} → ${last}`);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});
