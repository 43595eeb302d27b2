/**
 * `deno task cluster`: a nats-server and two node processes. Runs created
 * through one client land on both nodes (the registries share a queue
 * group), and each trains exactly as the same run embedded. Ctrl-C drains
 * the cluster and it exits 0.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import {
  ensureTinyModels,
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { freePort, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { TrainingClient } from "../client/training_client.ts";

const ignore = await natsTestsIgnored();
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

/** Two pipelined steps of a run with `seed`: its losses. */
async function losses(
  service: bios.ServiceClient,
  seed: number,
): Promise<{ losses: number[]; node: string }> {
  const conn = await service.connection();
  const run = await conn.registry.ask<{ runId: string; node: string }>({
    type: "create_run",
    options: { baseModel: TINY, rank: 4, seed },
  }, { timeoutMs: 60_000 });
  const tc = new TrainingClient(service, conn, run.runId, TINY);
  const out: number[] = [];
  for (let s = 0; s < 2; s++) {
    const fb = tc.forwardBackward(batch, "cross_entropy");
    await tc.optimStep({ learningRate: 1e-2 });
    out.push((await fb).loss);
  }
  return { losses: out, node: run.node };
}

Deno.test({
  name:
    "cluster: runs spread over two node processes and train as embedded; Ctrl-C drains it",
  ignore,
  fn: async () => {
    const seeds = [1, 2, 3, 4, 5, 6];
    const embedded = await startTestService();
    const want = new Map<number, number[]>();
    try {
      for (const seed of seeds) {
        want.set(seed, (await losses(embedded.service, seed)).losses);
      }
    } finally {
      await embedded.close();
    }
    const port = freePort();
    const dir = await Deno.makeTempDir({ prefix: "bios-cluster-" });
    const cluster = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--config=${new URL("../deno.json", import.meta.url).pathname}`,
        new URL("../scripts/cluster.ts", import.meta.url).pathname,
        "--nodes",
        "2",
        "--port",
        String(port),
        "--checkpoint-dir",
        dir,
      ],
      env: { BIOS_MODELS: await ensureTinyModels() },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = cluster.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const service = new bios.ServiceClient({
      nats: `nats://127.0.0.1:${port}`,
    });
    try {
      while (!text.includes('"ready":true')) {
        const { value, done } = await reader.read();
        if (done) {
          throw new Error(
            `the cluster never got ready: ${text} ${await new Response(
              cluster.stderr,
            ).text()}`,
          );
        }
        text += value;
      }
      const nodes = new Set<string>();
      const got = await Promise.all(seeds.map((seed) => losses(service, seed)));
      got.forEach((g, i) => {
        nodes.add(g.node);
        assert.deepEqual(g.losses, want.get(seeds[i]), `seed ${seeds[i]}`);
      });
      // Six runs over two registries in a queue group: both nodes took some
      // (all on one would happen once in 32 tries).
      let extra = 0;
      while (nodes.size < 2 && extra++ < 20) {
        nodes.add((await losses(service, 1)).node);
      }
      assert.deepEqual([...nodes].sort(), ["node-1", "node-2"]);
      await service.close();
      cluster.kill("SIGINT");
      assert.equal((await cluster.status).code, 0, "drained and exited 0");
    } finally {
      await service.close();
      try {
        cluster.kill("SIGKILL");
      } catch { /* exited */ }
      await cluster.status;
      await reader.cancel().catch(() => {});
      await cluster.stderr.cancel().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
