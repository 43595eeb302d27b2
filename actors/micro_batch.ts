/**
 * Packing datums into padded micro-batches for the pipeline.
 *
 * Datums of one micro-batch are right-padded to the longest one (pad id 0,
 * weight 0). With causal attention, padding at the end changes nothing for the
 * real positions, and the padded positions' gradient is zero because their
 * dL/dlogprob is forced to zero.
 *
 * @module
 */
import type { NormalizedDatum } from "../protocol/types/datum.ts";

/** One padded micro-batch of B datums, T positions each. */
export interface MicroBatch {
  /** Indices of its datums in the batch. */
  datums: number[];
  batch: number;
  seqLen: number;
  /** i32 [B·T] input ids. */
  tokens: Int32Array;
  /** i32 [B·T] target ids. */
  targets: Int32Array;
  /** 1 on real positions, 0 on padding [B·T]. */
  valid: Float32Array;
  /** Every float loss input, padded with 0 [B·T]. */
  inputs: Record<string, Float32Array>;
}

/**
 * Split datums, in order, into micro-batches of at most `maxTokens` padded
 * positions (a datum longer than that gets a micro-batch of its own).
 */
export function packMicroBatches(
  data: readonly NormalizedDatum[],
  maxTokens: number,
): MicroBatch[] {
  const groups: number[][] = [];
  let cur: number[] = [];
  let curMax = 0;
  for (let i = 0; i < data.length; i++) {
    const len = data[i].tokens.length;
    const nextMax = Math.max(curMax, len);
    if (cur.length > 0 && nextMax * (cur.length + 1) > maxTokens) {
      groups.push(cur);
      cur = [];
      curMax = 0;
    }
    cur.push(i);
    curMax = Math.max(curMax, len);
  }
  if (cur.length > 0) groups.push(cur);
  return groups.map((g) => pad(data, g));
}

function pad(data: readonly NormalizedDatum[], idx: number[]): MicroBatch {
  const B = idx.length;
  const T = Math.max(...idx.map((i) => data[i].tokens.length));
  const tokens = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  const valid = new Float32Array(B * T);
  const inputs: Record<string, Float32Array> = {};
  idx.forEach((di, b) => {
    const d = data[di];
    tokens.set(d.tokens, b * T);
    valid.fill(1, b * T, b * T + d.tokens.length);
    const tt = d.inputs.targetTokens;
    if (tt) targets.set(tt, b * T);
    for (const [k, v] of Object.entries(d.inputs)) {
      if (k === "targetTokens") continue;
      inputs[k] ??= new Float32Array(B * T);
      inputs[k].set(v, b * T);
    }
  });
  return { datums: idx, batch: B, seqLen: T, tokens, targets, valid, inputs };
}
