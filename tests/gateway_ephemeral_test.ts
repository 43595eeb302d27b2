/**
 * Ephemeral sampler saves (`save_weights_for_sampler` without a name, what
 * the SDK's `save_weights_and_get_sampling_client()` sends each step of an
 * RL loop) do not pile up: the gateway keeps a run's newest
 * KEPT_EPHEMERAL_SAVES on disk and deletes the older ones once their
 * samplers hold the weights, and those samplers go on sampling.
 */
import assert from "node:assert/strict";
import { KEPT_EPHEMERAL_SAVES } from "../server/gateway.ts";
import { startGateway } from "./_gateway_process.ts";
import { type Json, nextTokenDatum, TinkerHttp } from "./_tinker_http.ts";
import { textIds, TINY } from "./_helpers.ts";

const KEY = "tml-ephemeral-0123456789";

Deno.test("a run's ephemeral sampler saves past the newest 8 are deleted; their samplers keep sampling", async () => {
  const gw = await startGateway([], { BIOS_API_KEYS: KEY });
  try {
    const wire = new TinkerHttp(gw.url, KEY);
    const run = await wire.createModel(await wire.session(), TINY);
    const saves = KEPT_EPHEMERAL_SAVES + 4;
    const sessions: string[] = [];
    let seq = 1;
    for (let i = 0; i < saves; i++) {
      await wire.call("forward_backward", {
        "model_id": run,
        "seq_id": seq++,
        "forward_backward_input": {
          data: [nextTokenDatum(textIds(`step ${i}`))],
          "loss_fn": "cross_entropy",
        },
      });
      await wire.call("optim_step", {
        "model_id": run,
        "seq_id": seq++,
        "adam_params": { "learning_rate": 0.02 },
      });
      const saved = await wire.call("save_weights_for_sampler", {
        "model_id": run,
        "seq_id": seq++,
        "sampling_session_seq_id": i,
      });
      sessions.push(saved.sampling_session_id as string);
    }
    // The pruning runs after each save's future: wait for it to settle.
    const ephemeral = async () => {
      const res = await fetch(
        `${gw.url}/api/v1/training_runs/${run}/checkpoints`,
        { headers: { "X-API-Key": KEY } },
      );
      return ((await res.json()).checkpoints as Json[])
        .map((c) => String(c.checkpoint_id))
        .filter((id) => id.startsWith("sampler_weights/ephemeral-"));
    };
    let left = await ephemeral();
    for (let i = 0; i < 200 && left.length > KEPT_EPHEMERAL_SAVES; i++) {
      await new Promise((r) => setTimeout(r, 50));
      left = await ephemeral();
    }
    // The newest ones: each save's name is its seq (every third from 3).
    const want = Array.from(
      { length: KEPT_EPHEMERAL_SAVES },
      (_, k) =>
        `sampler_weights/ephemeral-${
          3 * (saves - KEPT_EPHEMERAL_SAVES + k + 1)
        }`,
    );
    assert.deepEqual(left.sort(), want.sort());
    // The oldest save's sampler and the newest's both sample.
    for (const id of [sessions[0], sessions.at(-1)!]) {
      const out = await wire.call("asample", {
        "sampling_session_id": id,
        prompt: { chunks: [{ type: "encoded_text", tokens: [256, 81] }] },
        "num_samples": 1,
        "sampling_params": { "max_tokens": 3, seed: 1 },
      });
      assert.equal((out.sequences as Json[]).length, 1, id);
    }
  } finally {
    await gw.stop();
  }
});
