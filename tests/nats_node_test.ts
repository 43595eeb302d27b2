/**
 * A node process on NATS, driven through `ServiceClient({ nats })`: a real
 * nats-server on a free port, `deno task node` in its own process, and the
 * same training script as embedded, with bit-identical losses and samples
 * (both processes pick the same backend). Bad input crosses the wire as the
 * same named error; SIGTERM drains the node and it exits 0.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";

const ignore = await natsTestsIgnored();
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 21 } as const;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const PROMPT = bios.types.ModelInput.fromInts(textIds("Q: 2+2?").slice(0, -1));

/**
 * A nats-server, a node process on it (checkpoints in a temporary folder)
 * and a client of it for `body`; all stopped and removed afterwards.
 */
async function withNode(
  body: (
    c: { server: NatsServer; node: NodeProcess; service: bios.ServiceClient },
  ) => Promise<void>,
): Promise<void> {
  const server = await NatsServer.start();
  const dir = await Deno.makeTempDir({ prefix: "bios-node-ckpt-" });
  const node = await startNodeProcess(server.url, ["--checkpoint-dir", dir]);
  const service = new bios.ServiceClient({ nats: server.url });
  try {
    await body({ server, node, service });
  } finally {
    await service.close();
    await node.stop("SIGKILL");
    await server.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The script: three pipelined steps, a checkpoint, a seeded sample. */
async function script(service: bios.ServiceClient) {
  const tc = await service.createLoraTrainingClient(RUN);
  const losses: number[] = [];
  for (let s = 0; s < 3; s++) {
    const fb = tc.forwardBackward(batch, "cross_entropy");
    const opt = tc.optimStep({ learningRate: 1e-2 });
    losses.push((await fb).loss);
    await opt;
  }
  const { path } = await tc.saveState("after-3");
  const resumed = await service.createTrainingClientFromState(path, {
    withOptimizer: true,
  });
  const info = await resumed.getInfo();
  const sc = await tc.saveWeightsAndGetSamplingClient();
  const out = await sc.sample({
    prompt: PROMPT,
    samplingParams: { maxTokens: 8, temperature: 1, seed: 5 },
    numSamples: 2,
  });
  await sc.close();
  return {
    losses,
    step: info.step,
    tokens: out.sequences.map((q) => q.tokens),
  };
}

Deno.test({
  name:
    "NATS node: the same script gives the same losses, step and samples as embedded; errors cross by name; SIGTERM drains",
  ignore,
  fn: async () => {
    const embedded = await startTestService();
    let want;
    try {
      want = await script(embedded.service);
    } finally {
      await embedded.close();
    }
    await withNode(async ({ node, service }) => {
      const caps = await service.getServerCapabilities();
      assert.ok(caps.supportedModels.some((m) => m.modelName === TINY));
      const got = await script(service);
      assert.deepEqual(got.losses, want.losses);
      assert.equal(got.step, 3);
      assert.deepEqual(got.tokens, want.tokens);
      const tc = await service.createLoraTrainingClient(RUN);
      await assert.rejects(
        () => tc.optimStep({ learningRate: -1 }).result(),
        (e: Error & { field?: string }) => {
          assert.ok(e instanceof bios.errors.InvalidArgumentError, e.message);
          assert.equal(e.field, "adamParams.learningRate");
          return true;
        },
      );
      await service.close();
      assert.equal(
        await node.stop("SIGTERM"),
        0,
        "the node drained and exited 0",
      );
    });
  },
});

Deno.test({
  name:
    "NATS node: a nats-server restart mid-run loses no step and applies none twice",
  ignore,
  fn: async () => {
    const embedded = await startTestService();
    let want: number[];
    try {
      const tc = await embedded.service.createLoraTrainingClient(RUN);
      want = [];
      for (let s = 0; s < 6; s++) {
        const fb = tc.forwardBackward(batch, "cross_entropy");
        const opt = tc.optimStep({ learningRate: 1e-2 });
        want.push((await fb).loss);
        await opt;
      }
    } finally {
      await embedded.close();
    }
    await withNode(async ({ server, service }) => {
      const tc = await service.createLoraTrainingClient(RUN);
      const got: number[] = [];
      let restarted = 0;
      for (let s = 0; s < 6; s++) {
        const fb = tc.forwardBackward(batch, "cross_entropy");
        const opt = tc.optimStep({ learningRate: 1e-2 });
        if (s === 2 || s === 4) {
          // The server dies with both operations in flight (or queued).
          await server.kill();
          await new Promise((r) => setTimeout(r, s === 2 ? 300 : 1500));
          await server.restart();
          restarted++;
        }
        got.push((await fb).loss);
        assert.equal((await opt).metrics["step:max"], s + 1);
      }
      assert.equal(restarted, 2);
      assert.deepEqual(got, want);
      const info = await tc.getInfo();
      assert.equal(info.step, 6, "every step applied once");
      assert.equal(info.lastSeq, 12);
    });
  },
});

Deno.test({
  name:
    "NATS node: a sampler whose node is killed mid-request fails its requests with a clear error within seconds, never hangs",
  ignore,
  fn: async () => {
    await withNode(async ({ node, service }) => {
      const sc = await service.createSamplingClient({ baseModel: TINY });
      // Four long requests: one in hand, three queued behind it (~0.6 s each).
      const args = {
        prompt: PROMPT,
        samplingParams: { maxTokens: 120, temperature: 1, seed: 1 },
        numSamples: 128,
      };
      const started = performance.now();
      const pending = Array.from(
        { length: 4 },
        () => sc.sample(args).result().then(() => null, (e: Error) => e),
      );
      await new Promise((r) => setTimeout(r, 300));
      await node.stop("SIGKILL");
      const errors = await Promise.all(pending);
      const seconds = (performance.now() - started) / 1000;
      const failed = errors.filter((e) => e !== null) as Error[];
      assert.ok(failed.length >= 3, `failed: ${failed.length}`);
      for (const e of failed) {
        assert.ok(
          e instanceof bios.errors.ActorStoppedError ||
            e instanceof bios.errors.UnknownActorError,
          `${e.name}: ${e.message}`,
        );
        assert.match(e.message, /smp-/);
      }
      console.log(
        `sampler node killed: ${failed.length} requests failed after ${
          seconds.toFixed(1)
        } s (${failed[0].name}: ${failed[0].message}; ${
          (failed[0].cause as Error | undefined)?.message ?? ""
        })`,
      );
      assert.ok(seconds < 10, `the requests ended after ${seconds} s`);
    });
  },
});
