/**
 * A sampler node SIGKILLed with sample requests in hand, on a real
 * nats-server with two sampler-only node processes: every request ends
 * within a bound — served (the same seeded tokens as before the kill) or
 * failed with a clear error naming the sampler — never hanging; the next
 * request is served by the sampler started again on the other node, with
 * the same tokens. Prints the time from the kill to that first answer.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { ensureTinyModels, TINY } from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import type { NodeProcess } from "./_node_process.ts";
import { startRoleNode, waitForMembers } from "./_recovery_run.ts";
import type { Member } from "../protocol/node_messages.ts";

const ignore = await natsTestsIgnored();
/** A request long enough (~0.5 s here) to be in hand at the kill. */
const LONG = {
  type: "sample",
  prompt: { chunks: [{ type: "encoded_text", tokens: [5, 6, 7] }] },
  samplingParams: { maxTokens: 100, temperature: 1, seed: 9 },
  numSamples: 96,
};
/** Every in-flight request ends within this (ms). */
const BOUND_MS = 10_000;

Deno.test({
  name:
    "a sampler node SIGKILLed mid-request: each request is served or fails with a clear error within 10 s, the next is served by the other node",
  ignore,
  fn: async () => {
    const catalog = await ensureTinyModels();
    const dir = await Deno.makeTempDir({ prefix: "bios-sampler-kill-" });
    const server = await NatsServer.start();
    const nodes = new Map<string, NodeProcess>();
    const service = new bios.ServiceClient({ nats: server.url });
    try {
      for (const name of ["a", "b"]) {
        nodes.set(
          name,
          await startRoleNode(server.url, name, "sampler", dir, catalog),
        );
      }
      const conn = await service.connection();
      await waitForMembers(conn, "a", ["b"]);
      const { address } = await conn.registry.ask<{ address: string }>({
        type: "create_sampler",
        baseModel: TINY,
      }, { timeoutMs: 60_000 });
      const hostOf = async (skip?: string) => {
        const view = await conn.system.ref("node.a").ask<Member[]>({
          type: "members",
        }).catch(() =>
          conn.system.ref("node.b").ask<Member[]>({ type: "members" })
        );
        return view.find((m) =>
          m.id !== skip && m.samplers.some((s) => s.address === address)
        )?.id;
      };
      let victim: string | undefined;
      for (let i = 0; i < 100 && !victim; i++) {
        victim = await hostOf();
        if (!victim) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(victim, "the sampler is on a node");
      const sampler = conn.system.ref(address);
      const expected = await sampler.ask(LONG, { timeoutMs: 60_000 });

      const started = performance.now();
      const pending = Array.from(
        { length: 3 },
        () =>
          sampler.ask(LONG, { timeoutMs: 60_000 }).then(
            (v) => ({ v, ms: performance.now() - started }),
            (e: Error) => ({ e, ms: performance.now() - started }),
          ),
      );
      await new Promise((r) => setTimeout(r, 200));
      await nodes.get(victim)!.stop("SIGKILL");
      const killed = performance.now();
      const outcomes = await Promise.all(pending);
      let failed = 0;
      for (const o of outcomes) {
        assert.ok(o.ms < BOUND_MS, `a request ended after ${o.ms} ms`);
        if ("v" in o) {
          assert.deepEqual(o.v, expected, "served: the same seeded tokens");
          continue;
        }
        failed++;
        assert.ok(
          o.e instanceof bios.errors.ActorStoppedError ||
            o.e instanceof bios.errors.UnknownActorError,
          `${o.e.name}: ${o.e.message}`,
        );
        assert.ok(o.e.message.includes(address), o.e.message);
      }

      // The next request: served by the sampler started again elsewhere.
      let after: unknown;
      const deadline = Date.now() + 15_000;
      while (after === undefined) {
        try {
          after = await sampler.ask(LONG, { timeoutMs: 60_000 });
        } catch (e) {
          if (Date.now() > deadline) throw e;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const failover = performance.now() - killed;
      assert.deepEqual(after, expected, "the other node: the same tokens");
      const survivor = victim === "a" ? "b" : "a";
      assert.equal(await hostOf(victim), survivor);
      const e = outcomes.find((o) => "e" in o) as { e?: Error } | undefined;
      console.log(
        `sampler node SIGKILLed: ${failed} of ${outcomes.length} in-flight requests failed (worst ${
          (Math.max(...outcomes.map((o) => o.ms)) / 1000).toFixed(2)
        } s${
          e?.e ? `, ${e.e.name}: ${e.e.message}` : ""
        }); served again from ${survivor} ${
          (failover / 1000).toFixed(2)
        } s after the kill`,
      );
    } finally {
      await service.close();
      await Promise.all([...nodes.values()].map((n) => n.stop("SIGKILL")));
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
