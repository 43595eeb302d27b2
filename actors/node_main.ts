/**
 * A Bios node process on a NATS cluster: the node's supervision tree (the
 * checkpoint store, the runs and samplers supervisors, the node's own actor,
 * the registry) on the NATS transport, so that clients anywhere reach it by
 * subject.
 *
 * ```sh
 * deno task node --nats nats://127.0.0.1:4222 [--name NAME]
 *   [--checkpoints auto|jetstream|files] [--checkpoint-bucket NAME] [--checkpoint-dir DIR]
 *   [--user U --pass P | --token T | --nkey SEEDFILE | --creds FILE]
 *   [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
 *   [--shards-per-run N] [--micro-batch-tokens N] [--device-handoff true|false]
 *   [--roles trainer,shard,sampler] [--heartbeat-ms 1000] [--missed-beats 3]
 * ```
 *
 * Membership: the node announces itself (its name as its id, `--roles`,
 * its address and capacity) and beats every `--heartbeat-ms` on the
 * `bios_membership` subject; a member silent for `--missed-beats` beats is
 * dropped and its work placed elsewhere (see `node_actor.ts`). New runs go
 * to nodes with the roles `trainer` and `shard`, samplers to `sampler`
 * nodes, the least loaded first. `--name` must be unique in the cluster.
 *
 * Checkpoints (`--checkpoints`): `jetstream` keeps them in the JetStream
 * Object Store bucket `--checkpoint-bucket` (default `bios-checkpoints`) of
 * the NATS server, which every node sees, so any node loads what another
 * saved; `files` keeps them under `--checkpoint-dir` (default
 * `$BIOS_HOME/runs`), which must then be one folder shared by every node;
 * `auto` (the default) is `jetstream` when the server has JetStream on
 * (`nats-server -js`) and `files` otherwise, said in one line. The ready
 * line says which.
 *
 * Run journals: when the server has JetStream, each run's trainer keeps its
 * journal in the Object Store bucket `bios-journals` (`durable_journal.ts`),
 * so a run whose node dies is started again on another node; without it,
 * the journal lives in the node's memory and such a run is lost.
 *
 * It prints one JSON line, `{"ready": true, ...}`, once its actors are
 * reachable. SIGINT or SIGTERM drains it: it takes no new work, every
 * trainer and sampler finishes the operation in hand (a step is recorded in
 * its run's journal) and stops, the node says it leaves (the others drop it
 * at once), the connection closes, and the process exits 0.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { ActorSystem } from "../runtime/system.ts";
import { NatsTransport } from "../runtime/nats_transport.ts";
import { biosHome } from "../runtime/home.ts";
import { startBiosNode } from "./node.ts";
import { natsMembershipBus } from "./membership.ts";
import { DEFAULT_JOURNAL_BUCKET, JournalBucket } from "./durable_journal.ts";
import { NODE_ROLES, type NodeRole } from "../protocol/node_messages.ts";
import {
  DEFAULT_CHECKPOINT_BUCKET,
  ObjectCheckpointStorage,
} from "./checkpoint_object_store.ts";
import { FileCheckpointStorage } from "./checkpoint_file_storage.ts";
import type { CheckpointStorage } from "./checkpoint_storage.ts";
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
  /** Folder for checkpoints (`--checkpoints files`). */
  checkpointDir: string;
  /** Where checkpoints live (`--checkpoints`): see the module. */
  checkpoints: "auto" | "jetstream" | "files";
  /** The JetStream Object Store bucket (`--checkpoint-bucket`). */
  checkpointBucket: string;
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
  /** What the node hosts (`--roles`, comma-separated). */
  roles: NodeRole[];
  /** Heartbeat interval in ms (`--heartbeat-ms`). */
  heartbeatMs: number;
  /** Beats missed before a member is dropped (`--missed-beats`). */
  missedBeats: number;
}

/** Reads `--roles a,b`: each one of {@link NODE_ROLES}, at least one. */
function parseRoles(value: string): NodeRole[] {
  const roles = value.split(",").map((r) => r.trim()).filter((r) => r);
  const bad = roles.find((r) => !(NODE_ROLES as readonly string[]).includes(r));
  if (bad !== undefined || roles.length === 0) {
    throw new Error(
      `--roles must be a comma-separated list of ${
        NODE_ROLES.join(", ")
      }: got ${value}`,
    );
  }
  return [...new Set(roles)] as NodeRole[];
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`${flag} must be an integer ≥ 1: got ${value}`);
  }
  return n;
}

/**
 * Reads `--nats URL [--checkpoints auto|jetstream|files]
 * [--checkpoint-bucket NAME] [--checkpoint-dir DIR] [--name NAME]` and the
 * rest of the module's flags.
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
    else if (flag === "--checkpoints") {
      if (value !== "auto" && value !== "jetstream" && value !== "files") {
        throw new Error(
          `--checkpoints must be auto, jetstream or files: got ${value}`,
        );
      }
      out.checkpoints = value;
    } else if (flag === "--checkpoint-bucket") {
      if (!/^[A-Za-z0-9_-]+$/.test(value)) {
        throw new Error(
          `--checkpoint-bucket must be a bucket name (A–Z, a–z, 0–9, "_", "-"): got ${value}`,
        );
      }
      out.checkpointBucket = value;
    } else if (flag === "--name") {
      if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
        throw new Error(
          `--name must be 1 to 64 characters of A–Z, a–z, 0–9, "_", "-": got ${value}`,
        );
      }
      out.name = value;
    } else if (flag === "--roles") out.roles = parseRoles(value);
    else if (flag === "--heartbeat-ms") {
      out.heartbeatMs = positiveInt(flag, value);
    } else if (flag === "--missed-beats") {
      out.missedBeats = positiveInt(flag, value);
    } else if (flag === "--shards-per-run") {
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
        `unknown flag ${flag}: usage --nats URL [--checkpoints auto|jetstream|files] [--checkpoint-bucket NAME] [--checkpoint-dir DIR] [--name NAME] [--shards-per-run N] [--micro-batch-tokens N] [--device-handoff true|false] [--roles trainer,shard,sampler] [--heartbeat-ms N] [--missed-beats N] [${
          NATS_AUTH_FLAGS.join(" | ")
        } VALUE]`,
      );
    }
  }
  if (!out.nats) throw new Error("--nats URL is required (nats://host:port)");
  return {
    nats: out.nats,
    checkpointDir: out.checkpointDir ?? `${biosHome()}/runs`,
    checkpoints: out.checkpoints ?? "auto",
    checkpointBucket: out.checkpointBucket ?? DEFAULT_CHECKPOINT_BUCKET,
    name: out.name ?? `bios-node-${Deno.pid}`,
    auth,
    shardsPerRun: out.shardsPerRun,
    microBatchTokens: out.microBatchTokens,
    deviceHandoff: out.deviceHandoff,
    roles: out.roles ?? [...NODE_ROLES],
    heartbeatMs: out.heartbeatMs ?? 1000,
    missedBeats: out.missedBeats ?? 3,
  };
}

/**
 * The storage `args` asks for on `nc` (see the module): `auto` is JetStream
 * when the server has it on.
 *
 * @throws when JetStream is asked for and the bucket cannot be opened
 */
export async function openCheckpointStorage(
  args: Pick<NodeArgs, "checkpoints" | "checkpointBucket" | "checkpointDir">,
  nc: NatsConnection,
): Promise<CheckpointStorage> {
  const jetstream = args.checkpoints === "jetstream" ||
    (args.checkpoints === "auto" && nc.info?.jetstream === true);
  if (jetstream) {
    return await ObjectCheckpointStorage.open(nc, args.checkpointBucket);
  }
  if (args.checkpoints === "auto") {
    console.error(
      `checkpoints: the NATS server has no JetStream: keeping them in files under ${args.checkpointDir} (every node must share that folder)`,
    );
  }
  return new FileCheckpointStorage(args.checkpointDir);
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
  let checkpointStorage: CheckpointStorage;
  try {
    checkpointStorage = await openCheckpointStorage(
      args,
      transport.connection,
    );
  } catch (e) {
    console.error(
      `checkpoints: JetStream object store bucket ${args.checkpointBucket}: ${
        (e as Error).message
      } (start nats-server with -js, or pass --checkpoints files)`,
    );
    await transport.close();
    Deno.exit(2);
  }
  let journals: JournalBucket | undefined;
  if (transport.connection.info?.jetstream === true) {
    journals = await JournalBucket.open(transport.connection).catch((e) => {
      console.error(
        `run journals: JetStream object store bucket ${DEFAULT_JOURNAL_BUCKET}: ${
          (e as Error).message
        }; keeping them in memory (a run is lost with its node)`,
      );
      return undefined;
    });
  }
  const system = new ActorSystem({ transport, name: args.name });
  const node = await startBiosNode(system, {
    checkpointRoot: args.checkpointDir,
    checkpointStorage,
    shardsPerRun: args.shardsPerRun,
    microBatchTokens: args.microBatchTokens,
    deviceHandoff: args.deviceHandoff,
    roles: args.roles,
    membershipBus: natsMembershipBus(transport.connection),
    heartbeatMs: args.heartbeatMs,
    missedBeats: args.missedBeats,
    journals,
  });
  let stopping = false;
  const drain = async () => {
    if (stopping) return;
    stopping = true;
    await node.drain();
    await transport.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", drain);
  Deno.addSignalListener("SIGTERM", drain);
  console.log(
    JSON.stringify({
      ready: true,
      nats: args.nats,
      name: args.name,
      roles: args.roles,
      checkpoints: checkpointStorage.description,
      journals: journals ? DEFAULT_JOURNAL_BUCKET : "memory",
    }),
  );
}
