/**
 * Load on a cluster: four node processes on one nats-server serve sixteen
 * training runs and four samplers at once, driven by four clients (each its
 * own connection) concurrently. Every run's losses equal the same run alone
 * (embedded, in this process), every sample equals the same seeded sample
 * alone, and nothing fails. It prints p50/p99 per operation and each node's
 * peak memory (VmHWM).
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
  TINY2,
} from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";

const ignore = await natsTestsIgnored();
const NODES = 4, CLIENTS = 4, RUNS_PER_CLIENT = 4, STEPS = 3;
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const PROMPT = bios.types.ModelInput.fromInts(textIds("Q:").slice(0, -1));

const runOf = (k: number) => ({
  baseModel: k % 2 === 0 ? TINY : TINY2,
  rank: 4,
  seed: 100 + k,
});

/** Train run k for STEPS pipelined steps; its losses, and each op's latency. */
async function train(
  service: bios.ServiceClient,
  k: number,
  times: Map<string, number[]>,
): Promise<number[]> {
  const timed = async <T>(op: string, p: PromiseLike<T>): Promise<T> => {
    const t0 = performance.now();
    const v = await p;
    const list = times.get(op) ?? [];
    list.push(performance.now() - t0);
    times.set(op, list);
    return v;
  };
  const tc = await timed(
    "createLoraTrainingClient",
    service.createLoraTrainingClient(runOf(k)),
  );
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const fb = timed(
      "forwardBackward",
      tc.forwardBackward(batch, "cross_entropy"),
    );
    const opt = timed("optimStep", tc.optimStep({ learningRate: 1e-2 }));
    losses.push((await fb).loss);
    await opt;
  }
  return losses;
}

async function sample(
  service: bios.ServiceClient,
  k: number,
  times: Map<string, number[]>,
): Promise<number[][]> {
  const sc = await service.createSamplingClient({
    baseModel: k % 2 === 0 ? TINY : TINY2,
  });
  const t0 = performance.now();
  const out = await sc.sample({
    prompt: PROMPT,
    samplingParams: { maxTokens: 16, temperature: 1, seed: 7 + k },
    numSamples: 2,
  });
  const list = times.get("sample") ?? [];
  list.push(performance.now() - t0);
  times.set("sample", list);
  await sc.close();
  return out.sequences.map((q) => q.tokens);
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

Deno.test({
  name:
    "load: 4 nodes, 16 runs and 4 samplers from 4 concurrent clients, each equal to the same work alone",
  ignore,
  fn: async () => {
    const total = CLIENTS * RUNS_PER_CLIENT;
    const alone = await startTestService();
    const wantLosses: number[][] = [];
    const wantSamples: number[][][] = [];
    try {
      const none = new Map<string, number[]>();
      for (let k = 0; k < total; k++) {
        wantLosses.push(await train(alone.service, k, none));
      }
      for (let c = 0; c < CLIENTS; c++) {
        wantSamples.push(await sample(alone.service, c, none));
      }
    } finally {
      await alone.close();
    }

    const server = await NatsServer.start();
    const dir = await Deno.makeTempDir({ prefix: "bios-load-" });
    const nodes: NodeProcess[] = [];
    const clients: bios.ServiceClient[] = [];
    try {
      for (let i = 0; i < NODES; i++) {
        nodes.push(
          await startNodeProcess(server.url, [
            "--checkpoint-dir",
            dir,
            "--name",
            `node-${i + 1}`,
          ]),
        );
      }
      for (let c = 0; c < CLIENTS; c++) {
        clients.push(new bios.ServiceClient({ nats: server.url }));
      }
      const times = new Map<string, number[]>();
      const t0 = performance.now();
      const results = await Promise.all(clients.map(async (service, c) => {
        const runs = Array.from(
          { length: RUNS_PER_CLIENT },
          (_, j) => train(service, c * RUNS_PER_CLIENT + j, times),
        );
        const [samples, ...losses] = await Promise.all([
          sample(service, c, times),
          ...runs,
        ]);
        return { samples, losses };
      }));
      const seconds = (performance.now() - t0) / 1000;
      results.forEach((r, c) => {
        assert.deepEqual(r.samples, wantSamples[c], `client ${c}'s sample`);
        r.losses.forEach((l, j) => {
          const k = c * RUNS_PER_CLIENT + j;
          assert.deepEqual(l, wantLosses[k], `run ${k}`);
        });
      });
      const report = {
        seconds: Math.round(seconds * 10) / 10,
        ops: Object.fromEntries(
          [...times].map(([op, ms]) => [op, {
            n: ms.length,
            p50: Math.round(percentile(ms, 50)),
            p99: Math.round(percentile(ms, 99)),
          }]),
        ),
        nodePeakRssMiB: await Promise.all(
          nodes.map((n) => peakRssMiB(n.child.pid)),
        ),
      };
      console.log(`load: ${JSON.stringify(report)}`);
    } finally {
      for (const s of clients) await s.close();
      for (const n of nodes) await n.stop("SIGTERM");
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
