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
 * It also watches its shard (a `ping` every {@link CHECK_MS}, resent across
 * a NATS reconnect): when the shard's node is gone (neither the shard nor
 * the node's shard host has a subscriber: the process died) or the shard
 * has been missing there for {@link MISSING_CHECKS} checks, this child
 * exits with an error, and its run's `shards` supervisor starts it again.
 * A start whose node does not answer (gone, draining, not a shard host)
 * goes to another live shard node, the least loaded (the trainer's own
 * node among them), at the same address: the trainer's wait for the shard
 * then finds a new instance, restores it from the commit point and replays
 * the operations since, as after an in-process shard crash.
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import {
  ActorStoppedError,
  InvalidArgumentError,
  UnavailableError,
  UnknownActorError,
} from "../runtime/errors.ts";
import type { DataChildSpecMsg } from "../protocol/node_messages.ts";
import { shardHostAddress } from "./node_actor.ts";
import type { ShardLocations } from "./shard_locations.ts";

/** How often the shard is checked. */
export const CHECK_MS = 500;
/** Checks that find the shard missing on a live node before it is started again. */
export const MISSING_CHECKS = 3;
/** Time a check's ping waits (a busy shard answers late: that is no loss). */
const PING_TIMEOUT_MS = 5_000;

/**
 * Another live node for a shard, passing over the node addresses in
 * `avoid`: its address (`node.<id>`), or `undefined` when none is left.
 */
export type PlaceShard = (avoid: ReadonlySet<string>) => string | undefined;

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
  /** The node the shard runs on (`args.node`, or where it went instead). */
  #at = "";
  #timer?: ReturnType<typeof setInterval>;
  #checking = false;
  #missing = 0;

  /**
   * @param args the node and the shard's spec
   * @param place another node when that one does not answer (none: the
   *   start fails)
   * @param locations where it writes the shard's node once started
   */
  constructor(
    readonly args: RemoteShardArgs,
    readonly place?: PlaceShard,
    readonly locations?: ShardLocations,
  ) {}

  /**
   * Starts the shard on its node (a stale one of an earlier start goes
   * first), or on another live shard node when that one does not answer;
   * then watches it.
   */
  async init(ctx: ActorContext): Promise<void> {
    const avoid = new Set<string>();
    for (let at: string | undefined = this.args.node; at;) {
      // the node's shard host, not its node actor (see shardHostAddress)
      this.#at = at;
      this.#node = ctx.system.ref(shardHostAddress(at));
      await this.#stop();
      try {
        await this.#node.ask({
          type: "start_child",
          parent: "shards",
          spec: this.args.spec,
        }, { timeoutMs: START_TIMEOUT_MS });
        this.locations?.set(this.args.spec.address!, at);
        break;
      } catch (e) {
        if (!nodeUnavailable(e) || !this.place) throw e;
        avoid.add(at);
        at = this.place(avoid);
        if (!at) {
          throw new UnavailableError(
            `no live node can host shard ${this.args.spec.address} (tried ${
              [...avoid].join(", ")
            })`,
            { cause: e },
          );
        }
        console.error(JSON.stringify({
          label: "shard_moved",
          shard: this.args.spec.address,
          from: [...avoid],
          to: at,
        }));
      }
    }
    this.#timer = setInterval(() => this.#check(ctx), CHECK_MS);
  }

  /** One check of the shard: exits with an error once it is lost. */
  async #check(ctx: ActorContext): Promise<void> {
    if (this.#checking || this.#timer === undefined) return;
    this.#checking = true;
    try {
      const shard = ctx.system.ref(this.args.spec.address!);
      if (await answers(shard)) {
        this.#missing = 0;
        return;
      }
      const hostUp = await answers(this.#node!);
      if (hostUp && ++this.#missing < MISSING_CHECKS) return;
      if (this.#timer === undefined) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
      ctx.stop({
        kind: "error",
        error: new Error(
          hostUp
            ? `shard ${this.args.spec.address} is missing on ${this.#at}`
            : `the node of shard ${this.args.spec.address} (${this.#at}) is gone`,
        ),
      });
    } finally {
      this.#checking = false;
    }
  }

  /** Nothing is sent here: the trainer addresses the shard itself. */
  receive(): never {
    throw new InvalidArgumentError(
      "type",
      `the shard ${this.args.spec.address} lives on ${this.args.node}: address it there`,
    );
  }

  /** Stops the watch and the shard on its node. */
  async terminate(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.locations?.forget(this.args.spec.address!, this.#at);
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

/** Whether `e` says a node is gone or takes no shards (not a bad spec). */
function nodeUnavailable(e: unknown): boolean {
  return e instanceof UnknownActorError || e instanceof ActorStoppedError ||
    e instanceof UnavailableError;
}

/**
 * Whether anything answers at `ref`'s address: any reply counts, an error
 * of the actor's own included, and so does silence (a busy actor); only
 * "nobody subscribes there" (after a reconnect's grace, since the request
 * is resent) says no.
 */
async function answers(ref: ActorRef): Promise<boolean> {
  try {
    await ref.ask({ type: "ping" }, {
      timeoutMs: PING_TIMEOUT_MS,
      resend: true,
    });
    return true;
  } catch (e) {
    return !(e instanceof UnknownActorError || e instanceof ActorStoppedError);
  }
}
