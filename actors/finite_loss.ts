/**
 * The check every loss passes before its gradient goes backward: the loss
 * and each token's dL/dlogprob must be finite as float32. A loss that is not
 * is refused with the datum and token that made it so, and the trainer
 * accumulates nothing from the request.
 *
 * @module
 */
import { BiosError, InvalidArgumentError } from "../runtime/errors.ts";
import type { LossFnName, LossResult } from "../model/loss.ts";
import type { MicroBatch } from "./micro_batch.ts";

/**
 * Why the loss of micro-batch `mb` cannot be used, or null when it can.
 *
 * - The model's own logprobs not finite: a {@link BiosError} with code
 *   `non_finite` (the run's weights are damaged; no input can fix it).
 * - Otherwise an {@link InvalidArgumentError} naming `data[i].lossFnInputs`,
 *   the token, and the values that overflowed (an importance ratio
 *   exp(logprob − sampling logprob) of e^99, say).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lossProblem } from "./finite_loss.ts";
 * const mb = { datums: [0], batch: 1, seqLen: 1, valid: new Float32Array([1]),
 *   inputs: {}, tokens: new Int32Array([1]), targets: new Int32Array([2]) };
 * const r = { loss: Infinity, dlogprobs: new Float32Array([-Infinity]) };
 * const e = lossProblem("importance_sampling", r, new Float32Array([-1]), mb);
 * assert.equal((e as { field?: string }).field, "data[0].lossFnInputs");
 * ```
 */
export function lossProblem(
  lossFn: LossFnName,
  r: LossResult,
  logprobs: Float32Array,
  mb: MicroBatch,
): BiosError | null {
  let at = -1;
  for (let i = 0; i < r.dlogprobs.length; i++) {
    if (!Number.isFinite(r.dlogprobs[i]) || !Number.isFinite(logprobs[i])) {
      at = i;
      break;
    }
  }
  if (at < 0 && Number.isFinite(r.loss)) return null;
  if (at < 0) at = 0;
  const b = Math.floor(at / mb.seqLen), t = at % mb.seqLen;
  const di = mb.datums[b];
  if (!Number.isFinite(logprobs[at])) {
    return new BiosError(
      "non_finite",
      `data[${di}]: the model's log-probability of token ${t} is ${
        logprobs[at]
      }: the run's weights are not finite; nothing was accumulated`,
    );
  }
  const shown: string[] = [`logprob ${fmt(logprobs[at])}`];
  for (const [key, label] of INPUT_LABELS) {
    const v = mb.inputs[key]?.[at];
    if (v !== undefined) shown.push(`${label} ${fmt(v)}`);
  }
  const q = mb.inputs.logprobs?.[at];
  const ratio = q === undefined
    ? ""
    : `; the ratio exp(logprob − sampling logprob) is ${
      fmt(Math.exp(logprobs[at] - q))
    }`;
  return new InvalidArgumentError(
    `data[${di}].lossFnInputs`,
    `data[${di}].lossFnInputs make the ${lossFn} loss overflow float32 at token ${t} (${
      shown.join(", ")
    }${ratio}); nothing was accumulated`,
  );
}

const INPUT_LABELS: readonly [string, string][] = [
  ["logprobs", "sampling logprob"],
  ["advantages", "advantage"],
  ["weights", "weight"],
];

function fmt(v: number): string {
  return Math.abs(v) >= 1e6 || (v !== 0 && Math.abs(v) < 1e-4)
    ? v.toExponential(2)
    : String(Math.round(v * 1e4) / 1e4);
}
