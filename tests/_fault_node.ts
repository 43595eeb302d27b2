/**
 * An embedded node whose checkpoint store calls a {@link SaveFault} hook, and
 * training clients on it: for tests that crash the store (or the process) at
 * a chosen step of a save.
 *
 * @module
 */
import * as bios from "../mod.ts";
import { ActorSystem } from "../runtime/system.ts";
import { startNode } from "../actors/node.ts";
import { REGISTRY } from "../actors/registry.ts";
import type { SaveFault } from "../actors/checkpoint_files.ts";
import type { Connection } from "../client/connection.ts";
import { TrainingClient } from "../client/training_client.ts";

/** A node with a save hook. */
export interface FaultNode {
  /** The connection to it. */
  conn: Connection;
  /** Start a LoRA training run on it. */
  createRun(
    options: bios.types.CreateLoraTrainingClientOptionsInput,
  ): Promise<TrainingClient>;
  /** Stop the node. */
  close(): Promise<void>;
}

/** Start a node over `checkpointRoot` whose store calls `fault` at each save step. */
export async function startFaultNode(
  checkpointRoot: string,
  fault: SaveFault,
): Promise<FaultNode> {
  const system = new ActorSystem({ name: "fault-node" });
  await startNode(system, { checkpointRoot, saveFault: fault });
  const conn: Connection = {
    system,
    registry: system.ref(REGISTRY),
    close: () => system.shutdown(),
  };
  // The clients' back-reference; never connected (no sampling from here).
  const service = new bios.ServiceClient({ checkpointDir: checkpointRoot });
  return {
    conn,
    async createRun(options) {
      const run = await conn.registry.ask<{ runId: string; baseModel: string }>(
        { type: "create_run", options },
        { timeoutMs: 600_000 },
      );
      return new TrainingClient(service, conn, run.runId, run.baseModel);
    },
    close: () => conn.close(),
  };
}
