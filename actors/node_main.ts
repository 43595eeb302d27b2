/**
 * A Bios node process on a NATS cluster: the node's supervision tree (the
 * checkpoint store, the runs and samplers supervisors, the registry) on the
 * NATS transport, so that clients anywhere reach it by subject.
 *
 * ```sh
 * deno task node --nats nats://127.0.0.1:4222 [--checkpoint-dir DIR] [--name NAME]
 *   [--user U --pass P | --token T | --nkey SEEDFILE | --creds FILE]
 *   [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
 *   [--shards-per-run N] [--micro-batch-tokens N] [--device-handoff true|false]
 * ```
 *
 * It prints one JSON line, `{"ready": true, ...}`, once its actors are
 * reachable. SIGINT or SIGTERM drains it: every actor finishes the message
 * in hand and stops, the connection closes, and the process exits 0.
 *
 * @module
 */
import { ActorSystem } from "../runtime/system.ts";
import { NatsTransport } from "../runtime/nats_transport.ts";
import { biosHome } from "../runtime/home.ts";
import { startNode } from "./node.ts";
import {
  NATS_AUTH_FLAGS,
  type NatsAuth,
  natsAuthOptions,
  setAuthFlag,
} from "../runtime/nats_auth.ts";

/** The node's settings, from its command line. */
export interface NodeArgs {
  /** NATS server URL. */
  nats: string;
  /** Folder for checkpoints. */
  checkpointDir: string;
  /** Connection name. */
  name: string;
  /** Credentials and TLS for the NATS connection. */
  auth: NatsAuth;
  /** Pipeline stages per run (`--shards-per-run`). */
  shardsPerRun?: number;
  /** Largest padded micro-batch in tokens (`--micro-batch-tokens`). */
  microBatchTokens?: number;
  /** Device hand-off between a run's actors (`--device-handoff true|false`). */
  deviceHandoff?: boolean;
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`${flag} must be an integer ≥ 1: got ${value}`);
  }
  return n;
}

/**
 * Reads `--nats URL [--checkpoint-dir DIR] [--name NAME]`.
 *
 * @throws {Error} naming the flag that is missing or unknown
 */
export function parseNodeArgs(args: readonly string[]): NodeArgs {
  const out: Partial<NodeArgs> = {};
  const auth: NatsAuth = {};
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = args[i].split("=", 2);
    const value = inline ?? args[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (setAuthFlag(auth, flag, value)) continue;
    if (flag === "--nats") out.nats = value;
    else if (flag === "--checkpoint-dir") out.checkpointDir = value;
    else if (flag === "--name") out.name = value;
    else if (flag === "--shards-per-run") {
      out.shardsPerRun = positiveInt(flag, value);
    } else if (flag === "--micro-batch-tokens") {
      out.microBatchTokens = positiveInt(flag, value);
    } else if (flag === "--device-handoff") {
      if (value !== "true" && value !== "false") {
        throw new Error(`--device-handoff must be true or false: got ${value}`);
      }
      out.deviceHandoff = value === "true";
    } else {
      throw new Error(
        `unknown flag ${flag}: usage --nats URL [--checkpoint-dir DIR] [--name NAME] [--shards-per-run N] [--micro-batch-tokens N] [--device-handoff true|false] [${
          NATS_AUTH_FLAGS.join(" | ")
        } VALUE]`,
      );
    }
  }
  if (!out.nats) throw new Error("--nats URL is required (nats://host:port)");
  return {
    nats: out.nats,
    checkpointDir: out.checkpointDir ?? `${biosHome()}/runs`,
    name: out.name ?? `bios-node-${Deno.pid}`,
    auth,
    shardsPerRun: out.shardsPerRun,
    microBatchTokens: out.microBatchTokens,
    deviceHandoff: out.deviceHandoff,
  };
}

if (import.meta.main) {
  let args: NodeArgs;
  try {
    args = parseNodeArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const transport = await NatsTransport.connect({
    servers: args.nats,
    name: args.name,
    connection: natsAuthOptions(args.auth),
  });
  const system = new ActorSystem({ transport, name: args.name });
  await startNode(system, {
    checkpointRoot: args.checkpointDir,
    shardsPerRun: args.shardsPerRun,
    microBatchTokens: args.microBatchTokens,
    deviceHandoff: args.deviceHandoff,
  });
  let stopping = false;
  const drain = async () => {
    if (stopping) return;
    stopping = true;
    await system.shutdown();
    await transport.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", drain);
  Deno.addSignalListener("SIGTERM", drain);
  console.log(
    JSON.stringify({ ready: true, nats: args.nats, name: args.name }),
  );
}
