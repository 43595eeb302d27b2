/**
 * RemoteShard: the place of a run's parameter shard that lives on another
 * node, in the run's supervision tree. Starting it starts the shard there
 * (a `start_child` of kind `param_shard` under that node's `shards`
 * supervisor, which restarts the shard if it crashes); stopping it stops
 * that shard. The trainer speaks to the shard itself, by its address, with
 * tensors and commit points by value.
 *
 * A restart of this child (its run's shards restarted) starts a fresh
 * shard: the trainer finds a new instance and restores it from its commit.
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";
import type { DataChildSpecMsg } from "../protocol/node_messages.ts";
import { shardHostAddress } from "./node_actor.ts";

/** Time the other node gets to start the shard (loading its weights). */
const START_TIMEOUT_MS = 600_000;
/** Time the other node gets to stop it. */
const STOP_TIMEOUT_MS = 10_000;

/** How to place one shard on another node. */
export interface RemoteShardArgs {
  /** The other node's actor (`node.<id>`). */
  node: string;
  /** The shard's child spec there (kind `param_shard`, its address). */
  spec: DataChildSpecMsg;
}

/** The RemoteShard actor (see the module). */
export class RemoteShard implements Actor<unknown, unknown> {
  #node?: ActorRef;

  /** @param args the node and the shard's spec */
  constructor(readonly args: RemoteShardArgs) {}

  /** Starts the shard on its node (a stale one of an earlier start goes first). */
  async init(ctx: ActorContext): Promise<void> {
    // the node's shard host, not its node actor (see shardHostAddress)
    const node = ctx.system.ref(shardHostAddress(this.args.node));
    this.#node = node;
    await this.#stop();
    await node.ask({
      type: "start_child",
      parent: "shards",
      spec: this.args.spec,
    }, { timeoutMs: START_TIMEOUT_MS });
  }

  /** Nothing is sent here: the trainer addresses the shard itself. */
  receive(): never {
    throw new InvalidArgumentError(
      "type",
      `the shard ${this.args.spec.address} lives on ${this.args.node}: address it there`,
    );
  }

  /** Stops the shard on its node. */
  async terminate(): Promise<void> {
    await this.#stop();
  }

  async #stop(): Promise<void> {
    await this.#node?.ask({
      type: "stop_child",
      parent: "shards",
      id: this.args.spec.id,
    }, { timeoutMs: STOP_TIMEOUT_MS }).catch(() => {});
  }
}
