/**
 * A run's remote shard node SIGKILLed ten times at seeded random moments of
 * a 50-step run, on a real nats-server with node processes: a trainer node
 * (`--roles trainer,shard`, stage 0) and shard-only nodes (stage 1), a
 * fresh one started before each kill so the shard has somewhere to go. The
 * run's remote shard child moves the shard to the fresh node, the trainer
 * restores it from its commit point and replays: the run completes with
 * every step applied once, and its losses, LoRA weights and Adam moments
 * equal the same run embedded, bit for bit. Prints the recovery times.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import type { NodeProcess } from "./_node_process.ts";
import { assertSameState } from "./_dp_run.ts";
import {
  ProgressClock,
  RECOVERY_RUN,
  seeded,
  startRoleNode,
  trainWithFaults,
  waitForMembers,
  withRecoveryReference,
} from "./_recovery_run.ts";
import { shardAddress } from "../protocol/addresses.ts";

const ignore = await natsTestsIgnored();
const STEPS = 50;
const KILLS = 10;

Deno.test({
  name:
    "a shard node SIGKILLed 10 times in a 50-step run: the shard moves, no step lost or applied twice, bit-identical to embedded",
  ignore,
  fn: async () => {
    await withRecoveryReference(
      "bios-shard-kill-",
      STEPS,
      async ({ catalog, dir, want }) => {
        // Ten distinct steps of 1..48, and a delay after each one's sends.
        const rand = seeded(20240610);
        const killAt = new Map<number, number>();
        while (killAt.size < KILLS) {
          killAt.set(
            1 + Math.floor(rand() * (STEPS - 2)),
            Math.floor(rand() * 40),
          );
        }
        const clock = new ProgressClock();

        const server = await NatsServer.start();
        const nodes: NodeProcess[] = [];
        const service = new bios.ServiceClient({ nats: server.url });
        try {
          const start = (name: string, roles: string) =>
            startRoleNode(server.url, name, roles, `${dir}/cluster`, catalog)
              .then((n) => (nodes.push(n), n));
          await start("t0", "trainer,shard");
          let current = await start("s00", "shard");
          let currentName = "s00";
          const conn = await service.connection();
          await waitForMembers(conn, "t0", ["s00"]);
          const tc = await service.createLoraTrainingClient(RECOVERY_RUN);
          const info = await tc.getInfo() as unknown as {
            placement?: string[][];
          };
          assert.deepEqual(info.placement, [["node.t0", "node.s00"]]);
          const stage1 = conn.system.ref(shardAddress(tc.runId, 1, 0));
          let fresh: Promise<NodeProcess> | undefined;
          let kills = 0;
          const got = await trainWithFaults(
            tc,
            () => service.connection(),
            STEPS,
            async (step) => {
              const delay = killAt.get(step);
              if (delay === undefined) return;
              // A fresh shard node is up (and seen by the trainer's node).
              const name = `s${String(kills + 1).padStart(2, "0")}`;
              fresh ??= start(name, "shard");
              const next = await fresh;
              fresh = undefined;
              await waitForMembers(conn, "t0", [name]);
              const before = await stage1.ask({ type: "ping" });
              await new Promise((r) => setTimeout(r, delay));
              await current.stop("SIGKILL");
              clock.fault();
              kills++;
              current = next;
              currentName = name;
              // The shard came back elsewhere, as a new instance.
              let after = before;
              const deadline = Date.now() + 60_000;
              while (after === before && Date.now() < deadline) {
                after = await stage1.ask({ type: "ping" }).catch(async () => {
                  await new Promise((r) => setTimeout(r, 20));
                  return before;
                });
              }
              assert.notEqual(after, before, `kill ${kills}: a new shard`);
            },
            clock,
          );
          assert.equal(kills, KILLS);
          assert.equal(got.step, STEPS, "every step applied once");
          assert.equal(got.lastSeq, 2 * STEPS);
          assert.deepEqual(got.losses, want.losses);
          assertSameState(got.state, want.state, "after 10 kills vs embedded");
          // get_info's placement follows the shard to where it runs now.
          const moved = await tc.getInfo() as unknown as {
            placement?: string[][];
          };
          assert.deepEqual(moved.placement, [[
            "node.t0",
            `node.${currentName}`,
          ]]);
          console.log(clock.summary("shard node SIGKILLed"));
        } finally {
          await service.close();
          await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
          await server.kill();
        }
      },
    );
  },
});
