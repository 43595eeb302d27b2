/**
 * The NATS transport against a real nats-server the tests start themselves
 * (on a free port, killed and started again where a test needs it): actors
 * addressed by subject across connections, "no responders" told apart from a
 * timeout, queue groups, a 64 MiB tensor over a 1 MiB `max_payload`, and a
 * server restart.
 */
import assert from "node:assert/strict";
import { ActorSystem } from "./system.ts";
import { NatsTransport } from "./nats_transport.ts";
import { NatsServer, natsTestsIgnored } from "./_nats_server.ts";
import { ActorTimeoutError, UnknownActorError } from "./errors.ts";

const ignore = await natsTestsIgnored();

/** A server and `n` transports connected to it; everything closed after `body`. */
async function withNats(
  n: number,
  body: (server: NatsServer, ts: NatsTransport[]) => Promise<void>,
): Promise<void> {
  const server = await NatsServer.start();
  const ts: NatsTransport[] = [];
  try {
    for (let i = 0; i < n; i++) {
      ts.push(await NatsTransport.connect({ servers: server.url }));
    }
    await body(server, ts);
  } finally {
    for (const t of ts) await t.close();
    await server.kill();
  }
}

Deno.test({
  name: "NATS: an actor on one connection answers asks and tells from another",
  ignore,
  fn: () =>
    withNats(2, async (_server, [a, b]) => {
      const sysA = new ActorSystem({ transport: a, name: "a" });
      const sysB = new ActorSystem({ transport: b, name: "b" });
      const told: unknown[] = [];
      await sysA.spawn("echo.one", () => ({
        receive: (m: unknown) => {
          told.push(m);
          return { got: m };
        },
      }));
      const ref = sysB.ref("echo.one");
      assert.deepEqual(await ref.ask({ x: 1 }), { got: { x: 1 } });
      // Typed arrays in one message (no chunks) arrive intact.
      const ids = new Int32Array([5, 6, 7, 8]);
      const back = await ref.ask<{ got: { ids: Int32Array } }>({ ids });
      assert.deepEqual([...back.got.ids], [5, 6, 7, 8]);
      ref.tell("hello");
      const deadline = Date.now() + 2000;
      while (!told.includes("hello") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(told.includes("hello"), "the tell arrived");
      assert.equal(a.subject("echo.one"), "bios.echo.one");
      await sysA.shutdown();
      await sysB.shutdown();
    }),
});

Deno.test({
  name:
    "NATS: no responders is UnknownActorError at once; silence is ActorTimeoutError",
  ignore,
  fn: () =>
    withNats(2, async (_server, [a, b]) => {
      const t0 = performance.now();
      await assert.rejects(
        () => b.request("nobody.home", new Uint8Array([1]), 5000),
        UnknownActorError,
      );
      assert.ok(performance.now() - t0 < 2000, "told at once, not timed out");
      a.register("silent.one", () => new Promise(() => {}));
      await a.flush();
      await assert.rejects(
        () => b.request("silent.one", new Uint8Array([1]), 300),
        ActorTimeoutError,
      );
    }),
});

Deno.test({
  name: "NATS: actors sharing an address on two connections form a queue group",
  ignore,
  fn: () =>
    withNats(3, async (_server, [a, b, c]) => {
      const counts = [0, 0];
      a.register("sampler.m", (bytes) => {
        counts[0]++;
        return Promise.resolve(bytes);
      });
      b.register("sampler.m", (bytes) => {
        counts[1]++;
        return Promise.resolve(bytes);
      });
      await a.flush();
      await b.flush();
      for (let i = 0; i < 40; i++) {
        const r = await c.request("sampler.m", new Uint8Array([i]), 2000);
        assert.deepEqual([...r], [i]);
      }
      assert.equal(counts[0] + counts[1], 40, "each request handled once");
      assert.ok(counts[0] > 0 && counts[1] > 0, `split ${counts}`);
    }),
});

Deno.test({
  name:
    "NATS: a 64 MiB tensor goes both ways in chunks over a 1 MiB max_payload",
  ignore,
  fn: () =>
    withNats(2, async (_server, [a, b]) => {
      assert.equal(a.maxPayload, 1024 * 1024);
      const sysA = new ActorSystem({ transport: a });
      const sysB = new ActorSystem({ transport: b });
      await sysA.spawn("big.one", () => ({
        receive: (m: { t: Float32Array }) => {
          const out = new Float32Array(m.t.length);
          for (let i = 0; i < out.length; i++) out[i] = m.t[i] * 2;
          return { t: out };
        },
      }));
      const n = 16 * 1024 * 1024; // 64 MiB of float32
      const t = new Float32Array(n);
      for (let i = 0; i < n; i += 4099) t[i] = i % 1000;
      const r = await sysB.ref("big.one").ask<{ t: Float32Array }>({ t }, {
        timeoutMs: 60_000,
      });
      assert.equal(r.t.length, n);
      for (let i = 0; i < n; i += 4099) assert.equal(r.t[i], 2 * (i % 1000));
      assert.equal(r.t[n - 1], 0);
      await sysA.shutdown();
      await sysB.shutdown();
    }),
});

Deno.test({
  name:
    "NATS: after a server restart the connections come back; a request sent with resend is published again, one without is not",
  ignore,
  fn: () =>
    withNats(2, async (server, [a, b]) => {
      // The first delivery of each request is "lost" (never answered), as a
      // reply is when the server dies before passing it on.
      const calls = new Map<number, number>();
      a.register("trainer.x", (bytes) => {
        const n = (calls.get(bytes[0]) ?? 0) + 1;
        calls.set(bytes[0], n);
        return n === 1 ? new Promise(() => {}) : Promise.resolve(bytes);
      });
      await a.flush();
      const resent = b.request("trainer.x", new Uint8Array([1]), 20_000, {
        resend: true,
      });
      const once = b.request("trainer.x", new Uint8Array([2]), 6_000);
      const deadline = Date.now() + 5000;
      while (
        (calls.get(1) !== 1 || calls.get(2) !== 1) && Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 5));
      }
      await server.kill();
      await new Promise((r) => setTimeout(r, 500));
      await server.restart();
      assert.deepEqual([...await resent], [1]);
      assert.equal(calls.get(1), 2, "delivered again after the reconnect");
      await assert.rejects(() => once, ActorTimeoutError);
      assert.equal(calls.get(2), 1, "not resent");
    }),
});
