/**
 * `AdamParams`: the AdamW settings of one optimizer step, with the anchor's
 * defaults (tinker-api.md §1.6): decoupled weight decay, and global-norm
 * gradient clipping where `gradClipNorm = 0` means no clipping.
 *
 * @module
 */

import { z } from "zod";
import { finiteNumber } from "./checks.ts";

/** Largest learning rate accepted; anything above is surely a mistake. */
export const MAX_LEARNING_RATE = 10;

/** Schema of Adam settings; omitted fields take the anchor's defaults. */
export const AdamParamsSchema = z.strictObject({
  learningRate: finiteNumber(
    `must be a finite number in (0, ${MAX_LEARNING_RATE}]`,
    (v) => v > 0 && v <= MAX_LEARNING_RATE,
  ).default(1e-4),
  beta1: finiteNumber(
    "must be a finite number in [0, 1)",
    (v) => v >= 0 && v < 1,
  ).default(0.9),
  beta2: finiteNumber(
    "must be a finite number in [0, 1)",
    (v) => v >= 0 && v < 1,
  ).default(0.95),
  eps: finiteNumber("must be a finite number > 0", (v) => v > 0).default(
    1e-12,
  ),
  weightDecay: finiteNumber("must be a finite number ≥ 0", (v) => v >= 0)
    .default(0),
  gradClipNorm: finiteNumber(
    "must be a finite number ≥ 0 (0 turns clipping off)",
    (v) => v >= 0,
  ).default(0),
}, { error: "must be an object of Adam settings" }).superRefine((p, ctx) => {
  // Decoupled decay multiplies each weight by 1 − lr·weightDecay per step:
  // past 1 that flips its sign and grows it, until it is no longer finite.
  if (p.learningRate * p.weightDecay > 1) {
    ctx.addIssue({
      code: "custom",
      message: `must be at most 1 / learningRate (${
        1 / p.learningRate
      }): each step scales the weights by 1 − learningRate·weightDecay`,
      path: ["weightDecay"],
      input: p.weightDecay,
    });
  }
});

/** Adam settings with every field filled in. */
export interface AdamParams {
  /** Step size, in (0, 10]. Default 1e-4. */
  learningRate: number;
  /** Decay of the first-moment average, in [0, 1). Default 0.9. */
  beta1: number;
  /** Decay of the second-moment average, in [0, 1). Default 0.95. */
  beta2: number;
  /** Added to the root of the second moment, > 0. Default 1e-12. */
  eps: number;
  /** Decoupled (AdamW) weight decay, ≥ 0 with learningRate·weightDecay ≤ 1. Default 0. */
  weightDecay: number;
  /** Global gradient-norm clip, ≥ 0; 0 turns clipping off. Default 0. */
  gradClipNorm: number;
}

/** Adam settings as users write them: every field optional. */
export type AdamParamsInput = Partial<AdamParams>;

/** The anchor's defaults: lr 1e-4, betas (0.9, 0.95), eps 1e-12, no decay, no clipping. */
export const DEFAULT_ADAM_PARAMS: Readonly<AdamParams> = Object.freeze(
  AdamParamsSchema.parse({}),
);
