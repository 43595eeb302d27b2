/**
 * Requests a trainer sends to its parameter shards: one discriminated union
 * on `type`, parsed where it arrives. Tensors go by value (typed arrays) or,
 * between actors of one process on one backend, as a handle to tensors
 * parked on the device. Every request may carry `inc` (the shard instance
 * the trainer expects) and `epoch` (the trainer's; a shard refuses older
 * ones).
 *
 * @module
 */

import { z } from "zod";
import { WireTensorsSchema } from "./types/wire_tensors.ts";

const int = (what: string, ok: (v: number) => boolean = () => true) =>
  z.number({ error: `must be ${what}` }).refine(
    (v) => Number.isSafeInteger(v) && ok(v),
    { error: `must be ${what}`, abort: true },
  );
const finite = z.number().refine(Number.isFinite, {
  error: "must be a finite number",
});
const bool = z.boolean({ error: "must be a boolean" });
const f32 = z.custom<Float32Array>((v) => v instanceof Float32Array, {
  error: "must be a Float32Array",
});
const i32 = z.custom<Int32Array>((v) => v instanceof Int32Array, {
  error: "must be an Int32Array",
});

/** Schema of a handle to tensors parked on this process's device. */
export const DeviceRefSchema = z.strictObject({
  handle: z.string({ error: "must be a handle" }),
});

/** A handle to tensors parked on this process's device. */
export type DeviceRefMsg = z.output<typeof DeviceRefSchema>;

/** Schema of one AdamW step as the shards apply it (see `kernels/backend.ts`). */
export const AdamStepSchema = z.strictObject({
  lr: finite,
  beta1: finite,
  beta2: finite,
  eps: finite,
  weightDecay: finite,
  step: int("an integer ≥ 1", (v) => v >= 1),
  gradScale: finite,
});

/** Schema of a shard's LoRA and optimizer state by value. */
export const ShardStateSchema = z.strictObject({
  params: WireTensorsSchema,
  m: WireTensorsSchema.optional(),
  v: WireTensorsSchema.optional(),
  step: int("an integer ≥ 0", (v) => v >= 0),
});

/** A shard's LoRA and optimizer state, as it crosses the wire. */
export type ShardState = z.output<typeof ShardStateSchema>;

/** Schema of a shard's state kept on the device: the id of parked copies. */
export const ShardSnapshotSchema = z.strictObject({
  snapshot: z.string({ error: "must be a snapshot id" }),
  step: int("an integer ≥ 0", (v) => v >= 0),
});

/** A shard's LoRA and optimizer state parked on the device. */
export type ShardSnapshot = z.output<typeof ShardSnapshotSchema>;

const head = {
  inc: z.string().optional(),
  epoch: int("an integer ≥ 0", (v) => v >= 0).optional(),
};
const mb = int("a micro-batch id ≥ 1", (v) => v >= 1);

/** Schema of any request a shard handles. */
export const ShardRequestSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("forward"),
    ...head,
    mb,
    /** Token ids (first stage) or hidden state [N,C], by value or parked. */
    input: z.union([i32, f32, DeviceRefSchema]),
    rows: z.strictObject({
      batch: int("an integer ≥ 1", (v) => v >= 1),
      seqLen: int("an integer ≥ 1", (v) => v >= 1),
    }),
    /** Target ids (last stage). */
    targets: i32.optional(),
    /** Keep activations for a later `backward`. */
    keep: bool,
    /** Set when training: the adapter's dropout draws its masks from it. */
    dropoutKey: int("an integer").optional(),
    /** Reply with the output parked rather than by value (not the logprobs). */
    handoff: bool.optional(),
    /** Last stage, with hand-off: park the logprobs too. */
    parkLogprobs: bool.optional(),
  }),
  z.strictObject({
    type: z.literal("backward"),
    ...head,
    mb,
    /** dL/d(output), by value or parked. */
    dout: z.union([f32, DeviceRefSchema]),
    /** Reply with dL/d(input) parked rather than by value. */
    handoff: bool.optional(),
  }),
  z.strictObject({ type: z.literal("release"), ...head, mb }),
  z.strictObject({ type: z.literal("ping"), ...head }),
  /** Σ g² of the accumulated gradients; with `park`, as a parked [1] tensor. */
  z.strictObject({
    type: z.literal("grad_norm_sq"),
    ...head,
    park: bool.optional(),
  }),
  z.strictObject({
    type: z.literal("optim_step"),
    ...head,
    step: AdamStepSchema,
  }),
  z.strictObject({ type: z.literal("zero_grads"), ...head }),
  /**
   * The accumulated LoRA gradients (data parallelism: a replica's part of
   * the sum), by value; with `park`, as parked device copies in key order.
   */
  z.strictObject({
    type: z.literal("get_grads"),
    ...head,
    park: bool.optional(),
  }),
  /**
   * Add another replica's gradients (by value or parked, as `get_grads`
   * gives them) to this shard's: g ← g + other, in key order.
   */
  z.strictObject({
    type: z.literal("add_grads"),
    ...head,
    grads: z.union([WireTensorsSchema, DeviceRefSchema]),
  }),
  z.strictObject({
    type: z.literal("get_state"),
    ...head,
    optimizer: bool,
  }),
  /** Park device copies of the state; replies a ShardSnapshot. */
  z.strictObject({ type: z.literal("commit"), ...head }),
  z.strictObject({
    type: z.literal("set_state"),
    ...head,
    state: z.union([ShardStateSchema, ShardSnapshotSchema]),
    optimizer: bool,
  }),
], {
  error:
    'must be one of "forward", "backward", "release", "ping", "grad_norm_sq", "optim_step", "zero_grads", "get_grads", "add_grads", "get_state", "commit", "set_state"',
});

/** Any request a shard handles, as a sender writes it. */
export type ShardRequest = z.input<typeof ShardRequestSchema>;
