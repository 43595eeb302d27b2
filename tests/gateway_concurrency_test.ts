/**
 * 32 clients at once through one gateway process, each its own tenant:
 * each makes a LoRA run (its own seed), trains a few pipelined steps on its
 * own data (`forward_backward` and `optim_step` posted together, as the SDK
 * does), snapshots a sampler and samples with a seed — all 32 at the same
 * time. Every client's losses are bit-identical, and its seeded samples
 * equal, to the same work done alone on the same gateway before; no request
 * fails.
 */
import assert from "node:assert/strict";
import { startGateway } from "./_gateway_process.ts";
import { type Json, wireAdam, WireCaller, wireDatum } from "./_wire_caller.ts";
import { TINY } from "./_helpers.ts";

const CLIENTS = 32;
const STEPS = 3;
const LR = 1e-2;

/** Client `i`'s key. */
const keyOf = (i: number) => `tml-concurrent-${i}-0123456789`;

/** Client `i`'s training data: two short sequences of its own bytes. */
function dataOf(i: number): Json[] {
  const ids = (
    k: number,
  ) => [256, ...new TextEncoder().encode(`client ${i} line ${k}`), 257];
  return [wireDatum(ids(0)), wireDatum(ids(1))];
}

/** What one client's work gave. */
interface Work {
  losses: number[];
  samples: number[][];
}

/** Client `i`'s whole work through `gw`. */
async function work(url: string, i: number): Promise<Work> {
  const c = new WireCaller(url, keyOf(i));
  const session = await c.session();
  const model = await c.createModel(session, 0, TINY, { rank: 4, seed: i });
  const data = dataOf(i);
  const losses: number[] = [];
  let seq = 1;
  for (let s = 0; s < STEPS; s++) {
    // Pipelined: both submitted before either result is awaited.
    const fb = await c.ok("forward_backward", {
      "model_id": model,
      "seq_id": seq++,
      "forward_backward_input": { data, "loss_fn": "cross_entropy" },
    });
    const opt = await c.ok("optim_step", {
      "model_id": model,
      "seq_id": seq++,
      "adam_params": wireAdam(LR),
    });
    const out = await c.settle(fb.request_id);
    assert.ok(!("error" in out), JSON.stringify(out));
    losses.push((out.metrics as Record<string, number>)["loss:sum"]);
    const done = await c.settle(opt.request_id);
    assert.ok(!("error" in done), JSON.stringify(done));
  }
  const saved = await c.result("save_weights_for_sampler", {
    "model_id": model,
    "seq_id": seq++,
    "sampling_session_seq_id": 0,
  });
  const samples = await c.sample(
    saved.sampling_session_id as string,
    [256, ...new TextEncoder().encode(`client ${i}`)],
    { "max_tokens": 6, temperature: 1, seed: 1000 + i },
    2,
  );
  return { losses, samples };
}

Deno.test({
  name:
    "32 clients training and sampling at once through one gateway: each result equals the same work done alone",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const keys = await Deno.makeTempFile({ suffix: ".txt" });
    await Deno.writeTextFile(
      keys,
      Array.from({ length: CLIENTS }, (_, i) => `t${i} ${keyOf(i)}`).join(
        "\n",
      ) + "\n",
    );
    const gw = await startGateway(["--keys", keys, "--rate-limit", "0"])
      .finally(() => Deno.remove(keys));
    try {
      const t0 = performance.now();
      const alone: Work[] = [];
      for (let i = 0; i < CLIENTS; i++) alone.push(await work(gw.url, i));
      const t1 = performance.now();
      const together = await Promise.all(
        Array.from({ length: CLIENTS }, (_, i) => work(gw.url, i)),
      );
      const t2 = performance.now();
      console.log(
        `${CLIENTS} clients × ${STEPS} steps + a sample: one at a time ${
          ((t1 - t0) / 1000).toFixed(1)
        } s, all at once ${((t2 - t1) / 1000).toFixed(1)} s`,
      );
      for (let i = 0; i < CLIENTS; i++) {
        assert.equal(alone[i].losses.length, STEPS);
        assert.ok(alone[i].losses[STEPS - 1] < alone[i].losses[0], "it learns");
        assert.deepEqual(together[i], alone[i], `client ${i}`);
      }
      // Each client's own seed and data: no two the same.
      assert.equal(
        new Set(alone.map((w) => JSON.stringify(w))).size,
        CLIENTS,
      );
      assert.equal((await fetch(`${gw.url}/api/v1/healthz`)).status, 200);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  },
});
