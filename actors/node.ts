/**
 * A Bios node: the root supervisor of one process and the actors it keeps
 * running — the checkpoint store, the supervisors that runs and samplers are
 * started under, and the registry.
 *
 * @module
 */
import type { ActorSystem } from "../runtime/system.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { CHECKPOINT_STORE, CheckpointStore } from "./checkpoint_store.ts";
import { REGISTRY, Registry, type RegistryOptions } from "./registry.ts";
import type { SaveFault } from "./checkpoint_files.ts";
import { FileCheckpointStorage } from "./checkpoint_file_storage.ts";
import type { CheckpointStorage } from "./checkpoint_storage.ts";

/** Settings of a node. */
export interface NodeOptions extends Omit<RegistryOptions, "supervisors"> {
  /** Folder for checkpoints: `<root>/<runId>/<kind>/<name>/`. */
  checkpointRoot: string;
  /**
   * Where checkpoints live instead of `checkpointRoot` (a cluster's JetStream
   * object store); the store's restarts share it.
   */
  checkpointStorage?: CheckpointStorage;
  /** Test hook: simulate a crash during a checkpoint save (in `checkpointRoot`). */
  saveFault?: SaveFault;
}

/**
 * Start a node's supervision tree in `system` at address `bios`.
 *
 * Children, in start order: `checkpoints` (the store), `runs` and `samplers`
 * (one_for_one supervisors new runs and samplers are added to), `registry`.
 */
export async function startNode(
  system: ActorSystem,
  opts: NodeOptions,
): Promise<Supervisor> {
  const supervisors: RegistryOptions["supervisors"] = {};
  // one_for_one: the children find each other by address (the registry and
  // the trainers ask "checkpoints" by name) or through `supervisors`, which
  // each restart of `runs` or `samplers` updates, so none holds on to
  // another's old instance. A crashed store restarts alone (its init recovers
  // interrupted saves); it must not take the registry, and with it every run
  // and sampler, down.
  return await Supervisor.start(system, "bios", {
    strategy: "one_for_one",
    intensity: 3,
    period: 5000,
    children: [
      {
        id: "checkpoints",
        address: CHECKPOINT_STORE,
        start: () =>
          new CheckpointStore(
            opts.checkpointStorage ??
              new FileCheckpointStorage(opts.checkpointRoot, opts.saveFault),
          ),
      },
      {
        id: "runs",
        address: "runs",
        type: "supervisor",
        start: () => (supervisors.runs = new Supervisor({
          strategy: "one_for_one",
          intensity: 10,
          period: 5000,
        })),
      },
      {
        id: "samplers",
        address: "samplers",
        type: "supervisor",
        start: () => (supervisors.samplers = new Supervisor({
          strategy: "one_for_one",
          intensity: 10,
          period: 5000,
        })),
      },
      {
        id: "registry",
        address: REGISTRY,
        start: () =>
          new Registry({
            shardsPerRun: opts.shardsPerRun,
            microBatchTokens: opts.microBatchTokens,
            deviceHandoff: opts.deviceHandoff,
            supervisors,
          }),
      },
    ],
  });
}
