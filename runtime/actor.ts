/**
 * The actor contract: an object with `receive`, plus optional `init` and
 * `terminate`. The runtime hands it one message at a time, in arrival order.
 *
 * Error rule ("let it crash"): a `BiosError` thrown by `receive` is a
 * user error, returned to the asker while the actor keeps running; any other
 * thrown value crashes the actor, the asker gets `ActorCrashedError`, queued
 * messages get `ActorStoppedError`, and whoever watches the actor (its
 * supervisor) sees an abnormal exit.
 *
 * @module
 */

import type { ActorRef } from "./actor_ref.ts";
import type { ActorSystem } from "./system.ts";

/**
 * Why an actor exited, after OTP: `normal` and `shutdown` are normal exits;
 * `killed` (abandoned after its shutdown timeout, or brutal_kill) and `error`
 * (crash) are abnormal.
 */
export type ExitReason =
  | { kind: "normal" }
  | { kind: "shutdown" }
  | { kind: "killed" }
  | { kind: "error"; error: Error };

/**
 * True for exits a `transient` child is restarted after (`killed`, `error`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isAbnormal } from "./actor.ts";
 * assert.equal(isAbnormal({ kind: "shutdown" }), false);
 * assert.equal(isAbnormal({ kind: "error", error: new Error("boom") }), true);
 * ```
 */
export function isAbnormal(reason: ExitReason): boolean {
  return reason.kind === "killed" || reason.kind === "error";
}

/** Describes an exit reason in one short string, e.g. `error: boom`. */
export function describeExit(reason: ExitReason): string {
  return reason.kind === "error"
    ? `error: ${reason.error.message}`
    : reason.kind;
}

/** What an actor may do besides handling its message. */
export interface ActorContext {
  /** This actor's own reference. */
  readonly self: ActorRef;
  /** The system the actor runs in (to spawn or look up other actors). */
  readonly system: ActorSystem;
  /**
   * Asks for this actor to exit (default reason `normal`). Called inside
   * `receive`, it takes effect once the current message is handled.
   */
  stop(reason?: ExitReason): void;
  /**
   * Also answers at the group address `address`, shared with other actors
   * (on a cluster transport: one queue group, each message to one member),
   * until this actor begins to stop. Returns false, joining nothing, on a
   * transport without groups (`Transport.join`).
   */
  join(address: string): boolean;
}

/**
 * An actor. `M` is the message type, `R` the reply type of `ask`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ActorSystem, type Actor } from "./mod.ts";
 * class Counter implements Actor<number, number> {
 *   n = 0;
 *   receive(add: number): number {
 *     return (this.n += add);
 *   }
 * }
 * await using system = new ActorSystem();
 * const ref = await system.spawn<number, number>("counter", () => new Counter());
 * ref.tell(2);
 * assert.equal(await ref.ask(3), 5);
 * ```
 */
export interface Actor<M = unknown, R = unknown> {
  /** Runs before the first message; a throw makes `spawn` reject. */
  init?(ctx: ActorContext): Promise<void> | void;
  /**
   * Handles one message; the result is the `ask` reply. Throw a
   * `BiosError` for a user error, anything else to crash.
   */
  receive(msg: M, ctx: ActorContext): Promise<R> | R;
  /**
   * Runs once on exit (normal stop, shutdown or crash), bounded by the
   * actor's shutdown timeout; not run for `brutal_kill`.
   */
  terminate?(reason: ExitReason): Promise<void> | void;
}

/**
 * How long an actor gets to finish its current message and `terminate`:
 * milliseconds, `"infinity"` (wait for ever; for supervisors), or
 * `"brutal_kill"` (abandon at once, `terminate` not run). An actor that
 * outlasts its time is abandoned and exits `killed`.
 */
export type ShutdownSpec = number | "brutal_kill" | "infinity";
