/**
 * Checkpoints on a cluster live in the NATS server's JetStream object store:
 * a run trained on node A saves, node A stops, and node B (another process,
 * another checkpoint folder) loads the same `bios://` paths — the training
 * state with its optimizer and the sampler weights — and carries on exactly
 * as A would have. Neither node writes a checkpoint to its disk.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { nextTokenDatum, SAMPLE_TEXTS, textIds, TINY } from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";

const ignore = await natsTestsIgnored();
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 3 } as const;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const PROMPT = bios.types.ModelInput.fromInts(textIds("Q: 3*3?").slice(0, -1));
const SAMPLE = {
  prompt: PROMPT,
  samplingParams: { maxTokens: 8, temperature: 1, seed: 9 },
  numSamples: 2,
};

/** Two more steps from where `tc` is: their losses. */
async function twoSteps(tc: bios.TrainingClient): Promise<number[]> {
  const out: number[] = [];
  for (let s = 0; s < 2; s++) {
    const fb = tc.forwardBackward(batch, "cross_entropy");
    const opt = tc.optimStep({ learningRate: 1e-2 });
    out.push((await fb).loss);
    await opt;
  }
  return out;
}

async function listed(
  service: bios.ServiceClient,
  runId: string,
): Promise<string[]> {
  const conn = await service.connection();
  const entries = await conn.registry.ask<{ path: string }[]>({
    type: "list_checkpoints",
    runId,
  });
  return entries.map((e) => e.path).sort();
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out;
}

Deno.test({
  name:
    "NATS cluster: what node A saved loads on node B by the same bios:// path, with A stopped first",
  ignore,
  fn: async () => {
    const server = await NatsServer.start(undefined, [], { jetstream: true });
    const dirA = await Deno.makeTempDir({ prefix: "bios-node-a-" });
    const dirB = await Deno.makeTempDir({ prefix: "bios-node-b-" });
    let nodeB: NodeProcess | undefined;
    // Node A picks the object store itself: its server has JetStream on.
    const nodeA = await startNodeProcess(server.url, [
      "--checkpoint-dir",
      dirA,
      "--name",
      "node-a",
    ]);
    const service = new bios.ServiceClient({ nats: server.url });
    try {
      const tc = await service.createLoraTrainingClient(RUN);
      await twoSteps(tc);
      const state = (await tc.saveState("after-2")).path;
      const weights = (await tc.saveWeightsForSampler("after-2w")).path;
      assert.equal(state, `bios://${tc.runId}/weights/after-2`);
      // What A does from there: two more steps, and a seeded sample.
      const sc = await service.createSamplingClient({ modelPath: weights });
      const wantTokens = (await sc.sample(SAMPLE)).sequences.map((q) =>
        q.tokens
      );
      await sc.close();
      const wantLosses = await twoSteps(tc);
      const wantList = await listed(service, tc.runId);
      assert.deepEqual(wantList, [state, weights].sort());
      assert.equal(await nodeA.stop("SIGTERM"), 0, "node A drained");

      nodeB = await startNodeProcess(server.url, [
        "--checkpoint-dir",
        dirB,
        "--name",
        "node-b",
      ]);
      const resumed = await service.createTrainingClientFromState(state, {
        withOptimizer: true,
      });
      assert.equal((await resumed.getInfo()).step, 2);
      assert.deepEqual(await twoSteps(resumed), wantLosses);
      const sb = await service.createSamplingClient({ modelPath: weights });
      assert.deepEqual(
        (await sb.sample(SAMPLE)).sequences.map((q) => q.tokens),
        wantTokens,
      );
      await sb.close();
      assert.deepEqual(await listed(service, tc.runId), wantList);
      assert.equal((await service.weightsInfo(state)).step, 2);
      // B saves too, and the name is taken for everyone.
      await resumed.saveState("on-b");
      await assert.rejects(
        () => resumed.saveState("on-b").result(),
        bios.errors.ConflictError,
      );
      // Nothing went to either node's disk.
      assert.deepEqual(await filesUnder(dirA), []);
      assert.deepEqual(await filesUnder(dirB), []);
    } finally {
      await service.close();
      await nodeA.stop("SIGKILL");
      await nodeB?.stop("SIGKILL");
      await server.stop();
      await Deno.remove(dirA, { recursive: true }).catch(() => {});
      await Deno.remove(dirB, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "NATS node: --checkpoints jetstream on a server without JetStream refuses to start, in one line",
  ignore,
  fn: async () => {
    const server = await NatsServer.start();
    try {
      await assert.rejects(
        () => startNodeProcess(server.url, ["--checkpoints", "jetstream"]),
        /start nats-server with -js, or pass --checkpoints files/,
      );
    } finally {
      await server.stop();
    }
  },
});
