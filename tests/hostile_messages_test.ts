/**
 * Raw messages, as a hostile or broken client on the wire could send them,
 * straight to the registry, a sampler, a shard and the checkpoint store:
 * each is refused with a named error, and no actor crashes (every run and
 * sampler of the node goes on working).
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  CHECKPOINT_STORE,
  REGISTRY,
  shardAddress,
} from "../protocol/addresses.ts";
import { startTestService, textIds, TINY } from "./_helpers.ts";

const { InvalidArgumentError } = bios.errors;

/** `ask` rejects with an InvalidArgumentError naming `field`. */
async function refused(
  ask: () => Promise<unknown>,
  field: string,
): Promise<void> {
  await assert.rejects(ask, (e: Error & { field?: string }) => {
    assert.ok(e instanceof InvalidArgumentError, `${e.name}: ${e.message}`);
    assert.equal(e.field, field, e.message);
    return true;
  });
}

Deno.test("the registry refuses malformed messages by their field and keeps running", async () => {
  const ts = await startTestService();
  try {
    const conn = await ts.service.connection();
    const reg = conn.registry;
    await refused(() => reg.ask(null), "value");
    await refused(() => reg.ask({ type: "nope" }), "type");
    await refused(
      () => reg.ask({ type: "tokenizer", baseModel: {} }),
      "baseModel",
    );
    await refused(
      () => reg.ask({ type: "weights_info", path: "../../etc/passwd" }),
      "path",
    );
    await refused(
      () => reg.ask({ type: "list_checkpoints", runId: "../x" }),
      "runId",
    );
    await refused(
      () => reg.ask({ type: "stop_sampler", samplerId: { toString: 1 } }),
      "samplerId",
    );
    await refused(
      () =>
        reg.ask({
          type: "create_sampler",
          baseModel: TINY,
          modelPath: "bios://r/weights/a",
        }),
      "modelPath",
    );
    // A snapshot whose tensors fit no model: the sampler cannot start, the
    // request fails, the registry stays.
    const withTensor = (data: Float32Array) =>
      reg.ask({
        type: "create_sampler",
        baseModel: TINY,
        lora: {
          spec: { rank: 2, alpha: 4, dropout: 0, targets: ["q_proj"], seed: 1 },
          params: { x: { shape: [2, 2], data } },
        },
      });
    await refused(() => withTensor(new Float32Array(4)), "lora");
    await refused(() => withTensor(new Float32Array(3)), "lora.params.x");
    assert.ok(conn.system.liveActors().includes(REGISTRY));
    assert.ok(!conn.system.wasStopped(REGISTRY), "the registry restarted");
    const caps = await ts.service.getServerCapabilities();
    assert.ok(caps.supportedModels.some((m) => m.modelName === TINY));
  } finally {
    await ts.close();
  }
});

Deno.test("a sampler refuses malformed messages by their field and keeps sampling", async () => {
  const ts = await startTestService();
  try {
    const sc = await ts.service.createSamplingClient({ baseModel: TINY });
    const conn = await ts.service.connection();
    const before = conn.system.liveActors().sort();
    const raw = sc.ref;
    await refused(() => raw.ask({ type: "sample", prompt: 5 }), "prompt");
    await refused(
      () => raw.ask({ type: "sample", prompt: { length: 1e9 }, numSamples: 1 }),
      "prompt.chunks",
    );
    await refused(
      () => raw.ask({ type: "compute_logprobs", prompt: [1, 2] }),
      "prompt",
    );
    await refused(() => raw.ask({ type: "info", extra: 1 }), "extra");
    // A sampler tells progress only to a sample stream's address: never at
    // another actor (here the registry).
    await refused(
      () =>
        raw.ask({
          type: "sample",
          prompt: bios.types.ModelInput.fromInts([1, 2]),
          numSamples: 1,
          samplingParams: { maxTokens: 2 },
          streamTo: "registry",
        }),
      "streamTo",
    );
    assert.deepEqual(conn.system.liveActors().sort(), before);
    const out = await sc.sample({
      prompt: bios.types.ModelInput.fromInts(textIds("Q:").slice(0, -1)),
      samplingParams: { maxTokens: 4, seed: 1 },
    });
    assert.equal(out.sequences.length, 1);
  } finally {
    await ts.close();
  }
});

Deno.test("a shard and the checkpoint store refuse malformed messages by their field and the run goes on", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 4,
      seed: 1,
    });
    const conn = await ts.service.connection();
    const shard = conn.system.ref(shardAddress(tc.runId, 0));
    const store = conn.system.ref(CHECKPOINT_STORE);
    const before = conn.system.liveActors().sort();
    await refused(() => shard.ask({ type: "forward", mb: 1 }), "input");
    await refused(
      () =>
        shard.ask({
          type: "set_state",
          optimizer: false,
          state: {
            params: { a: { shape: [2], data: new Float32Array(3) } },
            step: 0,
          },
        }),
      "state.params.a",
    );
    await refused(() => shard.ask({ type: "optim_step", step: {} }), "step.lr");
    await refused(
      () =>
        store.ask({
          type: "load",
          path: "bios://r/x/y",
          optimizer: true,
          forTraining: true,
        }),
      "path",
    );
    await refused(() => store.ask({ type: "list", runId: "../.." }), "runId");
    assert.deepEqual(
      conn.system.liveActors().sort(),
      before,
      "an actor restarted",
    );
    const ids = textIds("Q: 2+2?\nA: 4");
    const out = await tc.forwardBackward([{
      modelInput: bios.types.ModelInput.fromInts(ids.slice(0, -1)),
      lossFnInputs: { targetTokens: ids.slice(1) },
    }], "cross_entropy");
    assert.ok(Number.isFinite(out.loss));
    assert.equal((await tc.getInfo()).lastSeq, 1);
  } finally {
    await ts.close();
  }
});
