/**
 * nats-server stopped mid-run and started again on its port — twice
 * briefly, once for longer than 20 s — while a run's stages live on two
 * node processes (the trainer's node and a shard-only node), so trainer
 * and shard speak over NATS: every transport reconnects without limit, the
 * client resends its operations under their seqs, the trainer recovers the
 * shard requests the outage cut (restore, replay). The run completes with
 * every step applied once, bit-identical to the same run embedded. Prints
 * the times from each restart to the run's next finished operation.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import type { NodeProcess } from "./_node_process.ts";
import { assertSameState } from "./_dp_run.ts";
import {
  ProgressClock,
  RECOVERY_RUN,
  startRoleNode,
  trainWithFaults,
  waitForMembers,
  withRecoveryReference,
} from "./_recovery_run.ts";

const ignore = await natsTestsIgnored();
const STEPS = 14;
/** Outages: at step → for how long (ms), one past 20 s. */
const OUTAGES = new Map([[3, 300], [6, 1_500], [10, 21_000]]);

Deno.test({
  name:
    "nats-server restarted mid-run (once after 21 s): no step lost or applied twice, bit-identical to embedded",
  ignore,
  fn: async () => {
    await withRecoveryReference(
      "bios-outage-",
      STEPS,
      async ({ catalog, dir, want }) => {
        const clock = new ProgressClock();

        const server = await NatsServer.start();
        const nodes: NodeProcess[] = [];
        const service = new bios.ServiceClient({ nats: server.url });
        try {
          for (
            const [name, roles] of [["t0", "trainer,shard"], ["s0", "shard"]]
          ) {
            nodes.push(
              await startRoleNode(server.url, name, roles, `${dir}/c`, catalog),
            );
          }
          const conn = await service.connection();
          await waitForMembers(conn, "t0", ["s0"]);
          const tc = await service.createLoraTrainingClient(RECOVERY_RUN);
          const info = await tc.getInfo() as unknown as {
            placement?: string[][];
          };
          assert.deepEqual(info.placement, [["node.t0", "node.s0"]]);
          let outages = 0;
          const got = await trainWithFaults(
            tc,
            () => service.connection(),
            STEPS,
            async (step) => {
              const ms = OUTAGES.get(step);
              if (ms === undefined) return;
              // The server dies with the step's operations in flight.
              await new Promise((r) => setTimeout(r, 5));
              await server.kill();
              await new Promise((r) => setTimeout(r, ms));
              await server.restart();
              clock.fault();
              outages++;
            },
            clock,
          );
          assert.equal(outages, OUTAGES.size);
          assert.equal(got.step, STEPS, "every step applied once");
          assert.equal(got.lastSeq, 2 * STEPS);
          assert.deepEqual(got.losses, want.losses);
          assertSameState(
            got.state,
            want.state,
            "after the outages vs embedded",
          );
          console.log(
            clock.summary("nats-server restarted (from its restart)"),
          );
        } finally {
          await service.close();
          await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
          await server.kill();
        }
      },
    );
  },
});
