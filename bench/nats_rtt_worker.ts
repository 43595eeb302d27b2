/**
 * Worker: actor round-trip latency over NATS, next to the floor — the raw
 * request/reply of the same nats-server software.
 *
 * `deno run -A bench/nats_rtt_worker.ts [--rounds 400]` starts two loopback
 * nats-servers: one as a cluster runs it (`max_payload` 1 MiB, so a 4 MiB
 * tensor goes in chunks) and one with `max_payload` 8 MiB, where the raw
 * client sends 4 MiB in one message. On the first, an echo actor on one
 * connection is asked from another (`ActorRef.ask`: codec, envelope,
 * transport); on the second, a raw `nc.request` is answered by a raw
 * subscription. Each measures a 100-byte message and a 4 MiB Float32Array,
 * after a warm-up, and prints one JSON line of p50 and p99 in milliseconds.
 *
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { ActorSystem } from "../runtime/system.ts";
import { NatsTransport } from "../runtime/nats_transport.ts";
import { freePort, NatsServer } from "../runtime/_nats_server.ts";
import { Flags } from "./flags.ts";
import { emit } from "./timing.ts";

/** p-th percentile (0–100) of `xs` by nearest rank. */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function timeEach(
  rounds: number,
  fn: () => Promise<void>,
): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < Math.min(20, rounds); i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

/** Measure; see the module doc. */
export async function measureRoundTrips(
  rounds: number,
): Promise<Record<string, number>> {
  const small = { text: "x".repeat(80) };
  const big = new Float32Array(1024 * 1024); // 4 MiB
  const bigRounds = Math.max(10, Math.floor(rounds / 10));
  const out: Record<string, number> = {};

  // Bios: an echo actor on one connection, asked from another.
  const server = await NatsServer.start();
  const a = await NatsTransport.connect({ servers: server.url });
  const b = await NatsTransport.connect({ servers: server.url });
  const sysA = new ActorSystem({ transport: a });
  const sysB = new ActorSystem({ transport: b });
  try {
    await sysA.spawn("bench.echo", () => ({ receive: (m: unknown) => m }));
    const ref = sysB.ref("bench.echo");
    const s = await timeEach(rounds, async () => void await ref.ask(small));
    const l = await timeEach(
      bigRounds,
      async () => void await ref.ask(big, { timeoutMs: 60_000 }),
    );
    out.biosSmallP50 = s.p50;
    out.biosSmallP99 = s.p99;
    out.biosBigP50 = l.p50;
    out.biosBigP99 = l.p99;
  } finally {
    await sysA.shutdown();
    await sysB.shutdown();
    await a.close();
    await b.close();
    await server.kill();
  }

  // The floor: raw request/reply, 4 MiB in one message (max_payload 8 MiB).
  const dir = await Deno.makeTempDir({ prefix: "bios-nats-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/server.conf`,
    `listen: 127.0.0.1:${port}\nmax_payload: 8MB\n`,
  );
  const raw = new Deno.Command("nats-server", {
    args: ["-c", `${dir}/server.conf`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch (e) {
        if (i > 500) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const nc1 = await connect({ servers: `127.0.0.1:${port}` });
    const nc2 = await connect({ servers: `127.0.0.1:${port}` });
    nc1.subscribe("raw.echo", {
      callback: (_e, m) => {
        m.respond(m.data);
      },
    });
    await nc1.flush();
    const smallBytes = new TextEncoder().encode(JSON.stringify(small));
    const bigBytes = new Uint8Array(big.buffer);
    const s = await timeEach(
      rounds,
      async () => void await nc2.request("raw.echo", smallBytes),
    );
    const l = await timeEach(
      bigRounds,
      async () =>
        void await nc2.request("raw.echo", bigBytes, { timeout: 60_000 }),
    );
    out.rawSmallP50 = s.p50;
    out.rawSmallP99 = s.p99;
    out.rawBigP50 = l.p50;
    out.rawBigP99 = l.p99;
    await nc1.close();
    await nc2.close();
  } finally {
    raw.kill("SIGKILL");
    await raw.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return out;
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  emit(await measureRoundTrips(flags.int("rounds", 400)));
}
