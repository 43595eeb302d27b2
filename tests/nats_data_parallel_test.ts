/**
 * One path, three deployments, for a pipelined data-parallel run: the same
 * training script (two pipeline stages, `dataParallel: 2`, a few steps)
 * gives bit-identical losses and final LoRA weights and Adam moments — of
 * every shard of both replicas — embedded (all in one process, tensors as
 * device handles) and on a real nats-server with three node processes,
 * where the run's shards are spread over all three nodes and tensors and
 * commit points cross between them by value.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { ensureTinyModels } from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";
import { assertSameState, type DpScript, trainDp } from "./_dp_run.ts";
import type { Member } from "../protocol/node_messages.ts";

const ignore = await natsTestsIgnored();
const SCRIPT: DpScript = { dataParallel: 2, steps: 3, dropout: 0.1 };

Deno.test({
  name:
    "dataParallel 2 over 2 stages: embedded and a 3-node cluster (shards on every node) give bit-identical losses, weights and Adam state",
  ignore,
  fn: async () => {
    const catalog = await ensureTinyModels();
    const prev = Deno.env.get("BIOS_MODELS");
    Deno.env.set("BIOS_MODELS", catalog);
    const dir = await Deno.makeTempDir({ prefix: "bios-dp-" });
    let placement: string[][] | undefined;
    let embedded, cluster;
    try {
      const local = new bios.ServiceClient({ checkpointDir: `${dir}/local` });
      try {
        embedded = await trainDp(local, () => local.connection(), SCRIPT);
      } finally {
        await local.close();
      }

      const server = await NatsServer.start();
      const nodes: NodeProcess[] = [];
      const service = new bios.ServiceClient({ nats: server.url });
      try {
        for (const name of ["n1", "n2", "n3"]) {
          nodes.push(
            await startNodeProcess(server.url, [
              "--checkpoint-dir",
              `${dir}/cluster`,
              "--name",
              name,
              "--heartbeat-ms",
              "200",
            ], { BIOS_MODELS: catalog }),
          );
        }
        // Every node must see the three members before the run is placed.
        const conn = await service.connection();
        const deadline = Date.now() + 15_000;
        for (;;) {
          const views = await Promise.all(
            ["n1", "n2", "n3"].map((n) =>
              conn.system.ref(`node.${n}`).ask<Member[]>({ type: "members" })
            ),
          );
          if (views.every((v) => v.length === 3)) break;
          if (Date.now() > deadline) throw new Error("the nodes never met");
          await new Promise((r) => setTimeout(r, 50));
        }
        cluster = await trainDp(service, () => service.connection(), {
          ...SCRIPT,
          onRun: async (tc) => {
            const info = await tc.getInfo() as unknown as {
              placement?: string[][];
            };
            placement = info.placement;
          },
        });
      } finally {
        await service.close();
        await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
        await server.kill();
      }
    } finally {
      if (prev === undefined) Deno.env.delete("BIOS_MODELS");
      else Deno.env.set("BIOS_MODELS", prev);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    // Replica 0's stages on two nodes, replica 1's on the third and the first.
    assert.ok(placement, "the trainer reports its shards' nodes");
    assert.equal(new Set(placement.flat()).size, 3, JSON.stringify(placement));
    assert.notEqual(placement[0][0], placement[0][1]);
    assert.deepEqual(cluster.losses, embedded.losses);
    for (const r of [0, 1]) {
      assertSameState(
        cluster.state[r],
        embedded.state[r],
        `replica ${r}: cluster vs embedded`,
      );
    }
    assertSameState(embedded.state[1], embedded.state[0], "replica 1 vs 0");
  },
});
