/**
 * A Bios node: the root supervisor of one process and the actors it keeps
 * running — the checkpoint store, the supervisors that runs and samplers
 * are started under (and one for stand-ins of lost work), the node's own
 * actor (`node.<id>`: starts children from data specs on request, answers
 * with the membership view) and the registry. Every child, the node's own
 * included, is a data spec resolved through the node's factory table
 * (`node_factories.ts`).
 *
 * @module
 */
import type { ActorSystem } from "../runtime/system.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { CHECKPOINT_STORE, REGISTRY } from "../protocol/addresses.ts";
import { NODE_ROLES, type NodeRole } from "../protocol/node_messages.ts";
import { Registry, type RegistryOptions } from "./registry.ts";
import type { SaveFault } from "./checkpoint_files.ts";
import { FileCheckpointStorage } from "./checkpoint_file_storage.ts";
import type { CheckpointStorage } from "./checkpoint_storage.ts";
import { nodeFactories } from "./node_factories.ts";
import {
  NodeActor,
  nodeAddress,
  type NodeSupervisors,
  shardHostAddress,
} from "./node_actor.ts";
import { Membership, type MembershipBus } from "./membership.ts";
import type { JournalBucket } from "./durable_journal.ts";

/** Settings of a node. */
export interface NodeOptions extends Omit<RegistryOptions, "membership"> {
  /** Folder for checkpoints: `<root>/<runId>/<kind>/<name>/`. */
  checkpointRoot: string;
  /**
   * Where checkpoints live instead of `checkpointRoot` (a cluster's JetStream
   * object store); the store's restarts share it.
   */
  checkpointStorage?: CheckpointStorage;
  /** Test hook: simulate a crash during a checkpoint save (in `checkpointRoot`). */
  saveFault?: SaveFault;
  /** What this node hosts. @default {every role} */
  roles?: readonly NodeRole[];
  /**
   * Where membership heartbeats go (a cluster's NATS); none keeps a view of
   * this node alone (the embedded node).
   */
  membershipBus?: MembershipBus;
  /** Heartbeat interval, in ms. @default {1000} */
  heartbeatMs?: number;
  /** Beats a member may miss before it is dropped. @default {3} */
  missedBeats?: number;
  /**
   * Where runs keep their journals durable (a cluster with JetStream): a
   * run whose node dies is started again on another node from it. None:
   * in this node's memory (such a run is lost with its node).
   */
  journals?: JournalBucket;
}

/** A started node: its root, its own actor, its membership, and a drain. */
export interface BiosNode {
  /** The root supervisor (at `bios`). */
  root: Supervisor;
  /** The node's own actor. */
  node: NodeActor;
  /** Its membership. */
  membership: Membership;
  /**
   * Drains the node: says it takes no new work (a beat marked `draining`),
   * stops the registry, lets every trainer and sampler finish the operation
   * in hand (a trainer's step records its result in the run's journal, its
   * commit) and stop, then says it leaves (others drop it and take over its
   * work at once) and stops the rest. The caller closes the transport.
   */
  drain(): Promise<void>;
}

/**
 * Start a node's supervision tree in `system` at address `bios`.
 *
 * Children, in start order: `checkpoints` (the store), `runs`, `samplers`,
 * `shards` (of runs placed here by another node) and `lost` (one_for_one
 * supervisors), `node` (at `node.<system name>`),
 * `registry`.
 */
export async function startNode(
  system: ActorSystem,
  opts: NodeOptions,
): Promise<Supervisor> {
  return (await startBiosNode(system, opts)).root;
}

/** {@link startNode}, returning the node's handle (for a drain). */
export async function startBiosNode(
  system: ActorSystem,
  opts: NodeOptions,
): Promise<BiosNode> {
  const id = system.name;
  const supervisors: NodeSupervisors = {};
  const storage = opts.checkpointStorage ??
    new FileCheckpointStorage(opts.checkpointRoot, opts.saveFault);
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  // deno-lint-ignore prefer-const
  let membership: Membership;
  const table = nodeFactories({
    storage: () => storage,
    registry: () =>
      new Registry({
        shardsPerRun: opts.shardsPerRun,
        microBatchTokens: opts.microBatchTokens,
        deviceHandoff: opts.deviceHandoff,
        membership,
      }),
    journals: opts.journals,
    // A remote shard whose node is gone moves to the least loaded live
    // shard node (this one among them).
    placeShard: (avoid) => {
      const skip = new Set(
        membership.members().filter((m) => avoid.has(m.address)).map((m) =>
          m.id
        ),
      );
      const to = membership.place(["shard"], skip);
      if (!to) return undefined;
      membership.placed(to.id);
      return to.address;
    },
  });
  const node = new NodeActor({
    id,
    roles: opts.roles ?? NODE_ROLES,
    table,
    supervisors,
    journals: opts.journals,
  });
  membership = new Membership({
    self: () => node.describe(heartbeatMs),
    bus: opts.membershipBus,
    beatMs: heartbeatMs,
    missedBeats: opts.missedBeats,
    onDown: (m, reason, lastSeen) => node.memberDown(m, reason, lastSeen),
    onUp: (m) => node.memberUp(m),
  });
  node.membership = membership;
  const sup = (key: keyof NodeSupervisors) => {
    const spec = table.childSpec({
      id: key,
      kind: "supervisor",
      address: key,
      args: { strategy: "one_for_one", intensity: 10, period: 5000 },
    });
    return {
      ...spec,
      start: () => (supervisors[key] = spec.start() as Supervisor),
    };
  };
  // one_for_one: the children find each other by address (the registry and
  // the trainers ask "checkpoints" by name) or through `supervisors`, which
  // each restart of `runs` or `samplers` updates, so none holds on to
  // another's old instance. A crashed store restarts alone (its init recovers
  // interrupted saves); it must not take the registry, and with it every run
  // and sampler, down.
  const root = await Supervisor.start(system, "bios", {
    strategy: "one_for_one",
    intensity: 3,
    period: 5000,
    children: [
      table.childSpec({
        id: "checkpoints",
        kind: "checkpoint_store",
        address: CHECKPOINT_STORE,
        args: {},
      }),
      sup("runs"),
      sup("samplers"),
      sup("shards"),
      sup("lost"),
      { id: "node", address: nodeAddress(id), start: () => node },
      {
        id: "shard-host",
        address: shardHostAddress(nodeAddress(id)),
        start: () => node.shardHost(),
      },
      table.childSpec({
        id: "registry",
        kind: "registry",
        address: REGISTRY,
        args: {},
      }),
    ],
  });
  let drained: Promise<void> | undefined;
  const drain = async () => {
    node.draining = true;
    membership.beat();
    await root.terminateChild("registry").catch(() => {});
    const last = node.describe(heartbeatMs);
    await root.terminateChild("samplers").catch(() => {});
    await root.terminateChild("runs").catch(() => {});
    membership.leave(last);
    await system.transport.flush?.();
    await system.shutdown();
  };
  return {
    root,
    node,
    membership,
    drain: () => (drained ??= drain()),
  };
}
