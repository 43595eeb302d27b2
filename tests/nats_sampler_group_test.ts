/**
 * Samplers of one model share a queue group, on a real nats-server with a
 * trainer node and two sampler-only node processes: two clients of the same
 * checkpoint, each owning a sampler on its own node, have their requests
 * spread over both samplers (each sampler's `info` counts what it served)
 * with the same seeded tokens; closing one client's sampler leaves the
 * other serving both models' requests; a sampler node SIGKILLed with
 * requests in hand costs no request more than a bounded wait: each is
 * served by the other sampler (the link passes over a member that went
 * away) or fails with a clear error, never hangs.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { TINY } from "./_helpers.ts";
import { ensureTinyModels } from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import type { NodeProcess } from "./_node_process.ts";
import { startRoleNode, waitForMembers } from "./_recovery_run.ts";
import type { Member } from "../protocol/node_messages.ts";
import type { Connection } from "../client/connection.ts";

const ignore = await natsTestsIgnored();
const SAMPLE = {
  prompt: bios.types.ModelInput.fromInts([5, 6, 7]),
  samplingParams: { maxTokens: 8, temperature: 1, seed: 9 },
  numSamples: 2,
};
/** Long enough (~0.3 s here) to be in hand at the kill. */
const LONG = {
  prompt: bios.types.ModelInput.fromInts([5, 6, 7]),
  samplingParams: { maxTokens: 100, temperature: 1, seed: 11 },
  numSamples: 64,
};
/** Every request in flight at the kill ends within this (ms). */
const BOUND_MS = 10_000;

interface Info {
  samplerId: string;
  group?: string;
  served: number;
}

/** The node hosting the sampler at `address`. */
async function hostOf(conn: Connection, address: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const view = await conn.system.ref("node.a").ask<Member[]>({
      type: "members",
    });
    const host = view.find((m) =>
      m.samplers.some((s) => s.address === address)
    );
    if (host) return host.id;
    if (Date.now() > deadline) throw new Error(`no node hosts ${address}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const info = (sc: bios.SamplingClient) =>
  sc.ref.ask<Info>({ type: "info" }, { timeoutMs: 10_000 });

Deno.test({
  name:
    "NATS: samplers of one checkpoint form one queue group: requests spread over both, the same tokens; one closed or its node killed, the other serves",
  ignore,
  fn: async () => {
    const catalog = await ensureTinyModels();
    const dir = await Deno.makeTempDir({ prefix: "bios-sampler-group-" });
    const server = await NatsServer.start();
    const nodes = new Map<string, NodeProcess>();
    const s1 = new bios.ServiceClient({ nats: server.url });
    const s2 = new bios.ServiceClient({ nats: server.url });
    try {
      await Promise.all(
        [["t", "trainer,shard"], ["a", "sampler"], ["b", "sampler"]].map(
          async ([name, roles]) =>
            nodes.set(
              name,
              await startRoleNode(server.url, name, roles, dir, catalog),
            ),
        ),
      );
      const conn = await s1.connection();
      await waitForMembers(conn, "a", ["t", "b"]);
      const tc = await s1.createLoraTrainingClient({
        baseModel: TINY,
        rank: 4,
        seed: 3,
      });
      const { path } = await tc.saveWeightsForSampler("group");

      const sc1 = await s1.createSamplingClient({ modelPath: path });
      // Every registry's view has the first sampler's load before the second.
      await new Promise((r) => setTimeout(r, 300));
      const sc2 = await s2.createSamplingClient({ modelPath: path });
      const [i1, i2] = [await info(sc1), await info(sc2)];
      assert.ok(i1.group?.startsWith("sampler.model."), JSON.stringify(i1));
      assert.equal(i1.group, i2.group, "one group per model");
      assert.notEqual(
        await hostOf(conn, sc1.ref.address),
        await hostOf(conn, sc2.ref.address),
        "one sampler on each sampler node",
      );

      // Spread: 16 requests from both clients, all the same seeded tokens.
      const expected = await sc1.sample(SAMPLE);
      const outs = await Promise.all(
        Array.from(
          { length: 16 },
          (_, i) => (i % 2 ? sc1 : sc2).sample(SAMPLE),
        ),
      );
      for (const o of outs) assert.deepEqual(o, expected);
      const [a1, a2] = [await info(sc1), await info(sc2)];
      assert.equal(a1.served + a2.served, 17);
      assert.ok(
        a1.served > 0 && a2.served > 0,
        `both samplers served: ${a1.served} and ${a2.served}`,
      );

      // One closed: the group shrinks, the other serves everything.
      await sc1.close();
      await assert.rejects(
        async () => await sc1.sample(SAMPLE),
        bios.errors.ClientClosedError,
      );
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(await sc2.sample(SAMPLE), expected);
      }
      assert.equal((await info(sc2)).served, a2.served + 4);
      await assert.rejects(
        () => conn.system.ref(sc1.ref.address).ask({ type: "info" }),
        bios.errors.UnknownActorError,
      );

      // A third client's sampler joins; its node is killed mid-stream.
      await new Promise((r) => setTimeout(r, 300)); // a's load beat out
      const sc3 = await s1.createSamplingClient({ modelPath: path });
      const victim = await hostOf(conn, sc3.ref.address);
      assert.notEqual(victim, await hostOf(conn, sc2.ref.address));
      const long = await sc2.sample(LONG);
      const started = performance.now();
      const pending = Array.from(
        { length: 6 },
        (_, i) =>
          Promise.resolve((i % 2 ? sc2 : sc3).sample(LONG)).then(
            (v) => ({ v, ms: performance.now() - started }),
            (e: Error) => ({ e, ms: performance.now() - started }),
          ),
      );
      await new Promise((r) => setTimeout(r, 200));
      await nodes.get(victim)!.stop("SIGKILL");
      const outcomes = await Promise.all(pending);
      let served = 0;
      for (const o of outcomes) {
        assert.ok(o.ms < BOUND_MS, `a request ended after ${o.ms} ms`);
        if ("v" in o) {
          assert.deepEqual(o.v, long, "served: the same seeded tokens");
          served++;
          continue;
        }
        assert.ok(
          o.e instanceof bios.errors.ActorStoppedError ||
            o.e instanceof bios.errors.UnknownActorError,
          `${o.e.name}: ${o.e.message}`,
        );
      }
      console.log(
        `sampler node killed: ${served} of ${outcomes.length} in-flight requests served by the other, worst ${
          (Math.max(...outcomes.map((o) => o.ms)) / 1000).toFixed(2)
        } s`,
      );
      assert.deepEqual(await sc3.sample(SAMPLE), expected, "still served");
    } finally {
      await s1.close();
      await s2.close();
      await Promise.all([...nodes.values()].map((n) => n.stop("SIGKILL")));
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
