/**
 * How a client reaches a Bios cluster: an actor system and the registry's
 * address. The embedded connection starts a whole node in this process.
 *
 * @module
 */
import { ActorSystem } from "../runtime/system.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import { REGISTRY } from "../protocol/addresses.ts";
import { UnavailableError } from "../runtime/errors.ts";
import type { NatsAuth } from "../runtime/nats_auth.ts";

/** An open connection to a cluster. */
export interface Connection {
  /** The actor system requests go through. */
  system: ActorSystem;
  /** The registry. */
  registry: ActorRef;
  /** Close the connection (and stop an embedded node). */
  close(): Promise<void>;
}

/** Settings of an embedded node. */
export interface EmbeddedOptions {
  /** Where checkpoints go. @default {`$BIOS_HOME/runs`, BIOS_HOME defaulting to ~/.cache/bios} */
  checkpointDir?: string;
  /** Pipeline stages per run. @default {2} */
  shardsPerRun?: number;
  /** Largest padded micro-batch in tokens. @default {4096} */
  microBatchTokens?: number;
  /**
   * Pass activations and commit points between a run's actors as device
   * handles (they share this process's backend); false copies them through
   * host memory, as between nodes. @default {true}
   */
  deviceHandoff?: boolean;
}

export { biosHome } from "../runtime/home.ts";
import { biosHome } from "../runtime/home.ts";

/** Start a node in this process and connect to it. */
export async function connectEmbedded(
  opts: EmbeddedOptions = {},
): Promise<Connection> {
  // The node (actors, models, kernels) loads only when one is started here.
  const { startNode } = await import("../actors/node.ts");
  const system = new ActorSystem({ name: "embedded" });
  await startNode(system, {
    checkpointRoot: opts.checkpointDir ?? `${biosHome()}/runs`,
    shardsPerRun: opts.shardsPerRun,
    microBatchTokens: opts.microBatchTokens,
    deviceHandoff: opts.deviceHandoff,
  });
  return {
    system,
    registry: system.ref(REGISTRY),
    close: () => system.shutdown(),
  };
}

/** Settings of a connection to a NATS cluster. */
export interface NatsOptions {
  /** Server URL(s) of the cluster's NATS, e.g. `nats://10.0.0.5:4222`. */
  servers: string | string[];
  /** Credentials and TLS. */
  auth?: NatsAuth;
}

/**
 * Connect to a cluster over NATS (the transport's code loads only now): an
 * actor system with no actors of its own, whose refs reach the nodes'
 * actors by subject.
 */
export async function connectNats(opts: NatsOptions): Promise<Connection> {
  const { NatsTransport } = await import("../runtime/nats_transport.ts");
  const { natsAuthOptions } = await import("../runtime/nats_auth.ts");
  let transport;
  try {
    transport = await NatsTransport.connect({
      servers: opts.servers,
      name: `bios-client-${Deno.pid}`,
      connection: {
        ...natsAuthOptions(opts.auth),
        // A refused login is final: say so rather than retry for ever.
        waitOnFirstConnect: false,
      },
    });
  } catch (e) {
    throw new UnavailableError(
      `cannot connect to the cluster at ${[opts.servers].flat().join(", ")}: ${
        (e as Error).message
      }${
        /auth/i.test((e as Error).message)
          ? " (give credentials with natsAuth: user/pass, token, nkeyFile or credsFile)"
          : ""
      }`,
      { cause: e },
    );
  }
  const system = new ActorSystem({ name: "client", transport });
  return {
    system,
    registry: system.ref(REGISTRY),
    async close() {
      await system.shutdown();
      await transport.close();
    },
  };
}
