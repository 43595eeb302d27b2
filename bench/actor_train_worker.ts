/**
 * Worker: the same LoRA step as `train_worker.ts`, through the whole embedded
 * actor path a user script takes (ServiceClient → Registry → Trainer →
 * ParameterShards), so the actors' overhead shows next to the bare model.
 *
 * `deno run -A bench/actor_train_worker.ts [--batch 8 --seq 128]` prints one
 * JSON line: `{"backend", "device", "tokensPerSecond", "steps", "seconds", "loss"}`.
 *
 * It writes the benchmark model to a model folder in a temporary `BIOS_HOME`,
 * registers it through a `BIOS_MODELS` catalog file, and trains rank 16 /
 * alpha 32 adapters on every target with the embedded node's defaults. One
 * step submits `forwardBackward` (B sequences of T tokens, weights 1) and
 * `optimStep` (the same AdamW settings as the direct worker) together and
 * awaits both. The backend is the default `selectBackend()` choice, or what
 * `BIOS_BACKEND` forces. Same repetition policy as `train_worker.ts`.
 *
 * @module
 */
import { ServiceClient } from "../mod.ts";
import { ModelInput } from "../client/types.ts";
import { withBenchHome } from "./bench_home.ts";
import {
  BENCH_ADAM,
  BENCH_LORA,
  BENCH_MODEL_NAME,
  benchTokens,
} from "./bench_model.ts";
import { Flags } from "./flags.ts";
import { emit, timeRepeated } from "./timing.ts";
import { NatsServer } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "../tests/_node_process.ts";

/**
 * Time LoRA steps through a fresh ServiceClient; see the module doc. With
 * `natsNodes` > 0 the client talks over NATS to that many node processes
 * (a loopback nats-server started here) instead of an embedded node.
 */
export async function measureActorTraining(
  batch: number,
  seq: number,
  minSeconds: number,
  natsNodes = 0,
): Promise<Record<string, unknown>> {
  return await withBenchHome("bios-bench-", async (home, catalog) => {
    const cluster = natsNodes > 0
      ? await startCluster(natsNodes, home, catalog)
      : undefined;
    await using _cluster = cluster;
    await using service = new ServiceClient(
      cluster ? { nats: cluster.url } : {},
    );
    const caps = await service.getServerCapabilities();
    const tc = await service.createLoraTrainingClient({
      baseModel: BENCH_MODEL_NAME,
      rank: BENCH_LORA.rank,
      alpha: BENCH_LORA.alpha,
      seed: BENCH_LORA.seed,
    });
    const data = Array.from({ length: batch }, (_, b) => {
      const s = [...benchTokens(seq + 1, 100 + b)];
      return {
        modelInput: ModelInput.fromInts(s.slice(0, seq)),
        lossFnInputs: {
          targetTokens: s.slice(1),
          weights: new Array<number>(seq).fill(1),
        },
      };
    });
    const adam = {
      learningRate: BENCH_ADAM.lr,
      beta1: BENCH_ADAM.beta1,
      beta2: BENCH_ADAM.beta2,
      eps: BENCH_ADAM.eps,
      weightDecay: BENCH_ADAM.weightDecay,
    };
    let loss = NaN;
    const step = async () => {
      const fb = tc.forwardBackward(data, "cross_entropy");
      const opt = tc.optimStep(adam);
      loss = (await fb).loss / (batch * seq);
      await opt;
    };
    const w0 = performance.now();
    await step();
    const firstLoss = loss;
    const slow = performance.now() - w0 > 3000;
    const t = await timeRepeated(step, {
      warmup: 0,
      minRuns: slow ? 1 : 2,
      maxRuns: 8,
      minSeconds: slow ? 0 : minSeconds,
    });
    return {
      backend: caps.backend,
      device: caps.device,
      natsNodes,
      tokensPerSecond: (batch * seq * t.runs) / t.seconds,
      steps: t.runs,
      seconds: t.seconds,
      loss: firstLoss,
    };
  });
}

/** A loopback nats-server and `n` node processes serving the bench model. */
async function startCluster(n: number, home: string, catalog: string) {
  const server = await NatsServer.start();
  const nodes: NodeProcess[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(
      await startNodeProcess(
        server.url,
        ["--checkpoint-dir", `${home}/runs`, "--name", `bench-node-${i + 1}`],
        { BIOS_HOME: home, BIOS_MODELS: catalog },
      ),
    );
  }
  return {
    url: server.url,
    async [Symbol.asyncDispose]() {
      for (const node of nodes) await node.stop("SIGTERM");
      await server.kill();
    },
  };
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  emit(
    await measureActorTraining(
      flags.int("batch", 8),
      flags.int("seq", 128),
      flags.num("seconds", 2),
      flags.int("nats-nodes", 0),
    ),
  );
}
