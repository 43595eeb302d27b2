/**
 * Data parallelism's fixed rules: how a batch is split over a run's pipeline
 * replicas, and where each replica's shards are in the trainer's flat list.
 *
 * A forwardBackward's datums are cut into `replicas` contiguous parts, in
 * order, whose sizes differ by at most one (the larger parts first):
 * replica r takes datums [first, end) of {@linkcode splitDatums}. Each
 * replica packs its part into micro-batches as a single pipeline would and
 * accumulates its own LoRA gradients; before an optimizer step the trainer
 * adds replica 1's, then 2's, … to replica 0's (g₀ + g₁ + … in replica
 * order, one f32 addition at a time, on every backend), replica 0 alone
 * applies AdamW, and its new parameters and moments are copied to the
 * others. Losses and metrics are summed over the micro-batches in replica
 * order, then micro-batch order: the same order a single pipeline sums them
 * in when its micro-batches are the replicas' in sequence.
 *
 * @module
 */

/** One replica's part of a batch: datums [first, end). */
export interface DatumRange {
  first: number;
  end: number;
}

/**
 * The contiguous parts of `count` datums for `replicas` replicas: sizes
 * differ by at most one, larger first; a replica past the datums gets an
 * empty part.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitDatums } from "./data_parallel.ts";
 * assert.deepEqual(splitDatums(5, 2), [{ first: 0, end: 3 }, { first: 3, end: 5 }]);
 * assert.deepEqual(splitDatums(1, 2), [{ first: 0, end: 1 }, { first: 1, end: 1 }]);
 * ```
 */
export function splitDatums(count: number, replicas: number): DatumRange[] {
  const base = Math.floor(count / replicas);
  const extra = count % replicas;
  const out: DatumRange[] = [];
  let first = 0;
  for (let r = 0; r < replicas; r++) {
    const end = first + base + (r < extra ? 1 : 0);
    out.push({ first, end });
    first = end;
  }
  return out;
}

/** A shard's place in a run: its pipeline replica and its stage. */
export interface ShardSlot {
  replica: number;
  stage: number;
}

/** The flat index of (replica, stage) among `stages` stages per replica. */
export function slotIndex(slot: ShardSlot, stages: number): number {
  return slot.replica * stages + slot.stage;
}
