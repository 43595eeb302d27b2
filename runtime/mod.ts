/**
 * The Bios actor runtime: actors with one-message-at-a-time mailboxes,
 * refs by address, OTP-style supervisors, a msgpack codec, and a transport
 * seam (in-process now; NATS later, without changing actors).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ActorSystem, InvalidArgumentError, Supervisor } from "./mod.ts";
 * await using system = new ActorSystem();
 * await Supervisor.start(system, "root", {
 *   children: [{
 *     id: "half",
 *     start: () => ({
 *       receive(n: unknown): number {
 *         if (typeof n !== "number") throw new InvalidArgumentError("n", "n must be a number");
 *         return n / 2;
 *       },
 *     }),
 *   }],
 * });
 * assert.equal(await system.ref("root.half").ask(8), 4);
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export { decode, encode, TYPED_ARRAY_EXT_TYPES } from "./codec.ts";
export type {
  GroupSeat,
  RequestOptions,
  Transport,
  TransportHandler,
} from "./transport.ts";
export { LocalTransport } from "./local_transport.ts";
export {
  type Actor,
  type ActorContext,
  describeExit,
  type ExitReason,
  isAbnormal,
  type ShutdownSpec,
} from "./actor.ts";
export {
  ActorRef,
  type AskOptions,
  DEFAULT_ASK_TIMEOUT_MS,
  type RefHost,
} from "./actor_ref.ts";
export {
  ActorSystem,
  type ActorSystemOptions,
  DEFAULT_SHUTDOWN_MS,
  type SpawnOptions,
  type StopOptions,
  validateAddress,
} from "./system.ts";
export {
  type ChildSpec,
  type ChildSpecInput,
  parseChildSpec,
  parseSupervisorFlags,
  type RestartType,
  type Strategy,
  type SupervisorFlags,
  type SupervisorFlagsInput,
} from "./child_spec.ts";
export {
  type ChildCounts,
  type ChildInfo,
  Supervisor,
  type SupervisorOptions,
  type SupervisorReport,
  type SupervisorRequest,
} from "./supervisor.ts";
export type { NatsAuth } from "./nats_auth.ts";
