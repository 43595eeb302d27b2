/**
 * A client whose NATS connection is cut mid-operation (a TCP proxy between
 * it and nats-server, started here, closes every connection while the
 * step's forwardBackward and optimStep are in flight) reconnects through
 * the proxy and resends them under their seqs: each result comes back once
 * and is applied once — the step count and last seq are exact and the
 * losses, LoRA weights and Adam moments equal the same run embedded.
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
  withRecoveryReference,
} from "./_recovery_run.ts";

const ignore = await natsTestsIgnored();
const STEPS = 12;
const CUTS = new Set([2, 4, 6, 8, 10]);

/** A TCP proxy to `port` on 127.0.0.1 whose connections can be cut. */
function startProxy(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pipe = (from: Deno.Conn, to: Deno.Conn) =>
    from.readable.pipeTo(to.writable).catch(() => {}).finally(() => {
      for (const c of [from, to]) {
        try {
          c.close();
        } catch { /* closed */ }
        open.delete(c);
      }
    });
  (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port })
        .catch(() => undefined);
      if (!server) {
        client.close();
        continue;
      }
      open.add(client);
      open.add(server);
      pipe(client, server);
      pipe(server, client);
    }
  })().catch(() => {});
  return {
    url: `nats://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    /** Closes every connection through the proxy; returns how many. */
    cut(): number {
      const n = open.size / 2;
      for (const c of [...open]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      open.clear();
      return n;
    },
    close(): void {
      this.cut();
      listener.close();
    },
  };
}

Deno.test({
  name:
    "a client's connection cut mid-operation: it reconnects, each result comes once, each step applies once, bit-identical",
  ignore,
  fn: async () => {
    await withRecoveryReference(
      "bios-client-drop-",
      STEPS,
      async ({ catalog, dir, want }) => {
        const clock = new ProgressClock();

        const server = await NatsServer.start();
        const proxy = startProxy(server.port);
        let node: NodeProcess | undefined;
        const service = new bios.ServiceClient({ nats: proxy.url });
        try {
          node = await startRoleNode(
            server.url,
            "n0",
            "trainer,shard,sampler",
            `${dir}/c`,
            catalog,
          );
          const tc = await service.createLoraTrainingClient(RECOVERY_RUN);
          const rand = seeded(11);
          let inFlight = 0;
          const got = await trainWithFaults(
            tc,
            () => service.connection(),
            STEPS,
            async (step, pending) => {
              if (!CUTS.has(step)) return;
              await new Promise((r) => setTimeout(r, Math.floor(rand() * 10)));
              const busy = pending();
              assert.ok(proxy.cut() >= 1, "the client's connection was cut");
              clock.fault();
              if (busy) inFlight++;
            },
            clock,
          );
          assert.ok(
            inFlight >= 1,
            `cuts with an operation in flight: ${inFlight}`,
          );
          assert.equal(got.step, STEPS, "every step applied once");
          assert.equal(got.lastSeq, 2 * STEPS, "one seq per operation");
          assert.deepEqual(got.losses, want.losses);
          assertSameState(got.state, want.state, "after the cuts vs embedded");
          console.log(
            `${
              clock.summary("client connection cut")
            }; ${inFlight} of ${CUTS.size} with operations in flight`,
          );
        } finally {
          await service.close();
          await node?.stop("SIGKILL");
          proxy.close();
          await server.kill();
        }
      },
    );
  },
});
