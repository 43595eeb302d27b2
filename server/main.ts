/**
 * `deno task serve`: the HTTP gateway. It starts an embedded node (as
 * `new bios.ServiceClient()` does) or joins a NATS cluster (`--nats`), and
 * serves Tinker's wire under `/api/v1` so that the official Tinker SDK
 * trains and samples on Bios unmodified. Flags: see server/args.ts.
 *
 * Keys come from `--keys FILE` and `BIOS_API_KEYS` (server/auth/keys.ts);
 * with none, it refuses to start unless `--insecure-no-auth`. Once it
 * listens it prints one JSON line, `{"ready":true,"pid","url",…}`
 * (`deno task` does not pass signals on: stop the process `pid` names). SIGINT or
 * SIGTERM stops it: the listener closes, then the node. SIGHUP reloads the
 * keys (the keys file and `BIOS_API_KEYS`): added keys work and removed ones
 * are refused from then on; keys that do not load leave the old ones.
 *
 * @module
 */
import { ServiceClient } from "../client/service_client.ts";
import { parseServeArgs, type ServeArgs } from "./args.ts";
import { createApp } from "./app.ts";
import {
  KeyRing,
  type KeySpec,
  parseEnvKeys,
  parseKeysText,
} from "./auth/keys.ts";
import { RateLimiter } from "./auth/rate_limit.ts";
import { Gateway } from "./gateway.ts";
import { biosHome } from "../runtime/home.ts";

/** The keys the gateway takes: the keys file's and `BIOS_API_KEYS`'s. */
async function loadKeys(args: ServeArgs): Promise<KeyRing | null> {
  const specs: KeySpec[] = [];
  if (args.keys !== undefined) {
    specs.push(...parseKeysText(await Deno.readTextFile(args.keys), args.keys));
  }
  const env = Deno.env.get("BIOS_API_KEYS");
  if (env !== undefined) specs.push(...await parseEnvKeys(env));
  if (specs.length === 0) {
    if (args.insecureNoAuth) return null;
    throw new Error(
      "no API keys: give --keys FILE or BIOS_API_KEYS (keys start with tml-), or --insecure-no-auth to serve everyone as one tenant",
    );
  }
  if (args.insecureNoAuth) {
    throw new Error(
      "--insecure-no-auth and API keys exclude each other: drop one",
    );
  }
  return await KeyRing.of(specs);
}

/** Start the gateway with `argv`; resolves once it has stopped. */
export async function serve(argv: readonly string[]): Promise<void> {
  const args = parseServeArgs(argv);
  const keys = await loadKeys(args);
  const service = new ServiceClient(
    args.nats !== undefined
      ? { nats: args.nats, natsAuth: args.natsAuth }
      : { checkpointDir: args.checkpointDir },
  );
  await service.connection();
  const gateway = new Gateway({
    service,
    tenants: keys !== null,
    sessionIdleMs: args.sessionIdleS !== undefined
      ? args.sessionIdleS * 1000
      : undefined,
    futures: args.pollHoldS !== undefined
      ? { holdMs: args.pollHoldS * 1000 }
      : undefined,
    // Each run's metrics.jsonl beside its checkpoints (embedded), or in
    // this host's Bios home (a cluster's checkpoints are on its nodes).
    runsDir: args.checkpointDir ?? `${biosHome()}/runs`,
  });
  const app = createApp({
    gateway,
    keys,
    maxBodyBytes: args.maxBodyBytes,
    metricsKey: args.metricsKey ?? Deno.env.get("BIOS_METRICS_KEY") ?? null,
    rateLimit: args.rateLimit > 0
      ? new RateLimiter({
        perSecond: args.rateLimit,
        burst: args.rateBurst ?? Math.max(50, 4 * args.rateLimit),
      })
      : null,
  });
  const server = Deno.serve({
    port: args.port,
    hostname: args.host,
    onListen: ({ port, hostname }) => {
      console.log(JSON.stringify({
        ready: true,
        pid: Deno.pid,
        url: `http://${
          hostname.includes(":") ? `[${hostname}]` : hostname
        }:${port}`,
        cluster: args.nats ?? "embedded",
        auth: keys === null ? "none" : `${keys.size} keys`,
      }));
    },
  }, app.fetch);
  const stop = async () => {
    // Held long polls answer "try again" now, so the listener can drain.
    gateway.futures.close();
    // Open dashboard event streams end too.
    gateway.observer.feed.close();
    await server.shutdown();
  };
  const reload = async () => {
    if (keys === null) return;
    try {
      const fresh = await loadKeys(args);
      if (fresh === null) throw new Error("no keys");
      keys.replaceWith(fresh);
      console.log(JSON.stringify({ keysReloaded: keys.size }));
    } catch (e) {
      console.error(
        `bios serve: the keys were not reloaded (the old ones stay): ${
          (e as Error).message
        }`,
      );
    }
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGHUP", reload);
  await server.finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGHUP", reload);
  await gateway.close();
  await service.close();
}

if (import.meta.main) {
  try {
    await serve(Deno.args);
  } catch (e) {
    console.error(`bios serve: ${(e as Error).message}`);
    Deno.exit(2);
  }
  Deno.exit(0);
}
