/**
 * Built-in loss functions: their names, the `lossFnInputs` each one reads,
 * and the `lossFnConfig` keys each one accepts (tinker-api.md §2).
 *
 * @module
 */

import { z } from "zod";
import { finiteNumber, ownKeysChecked } from "./checks.ts";

/** Names of the built-in losses. */
export const LOSS_FN_TYPES = [
  "cross_entropy",
  "importance_sampling",
  "ppo",
  "cispo",
  "dro",
] as const;

/** Schema of a loss function name. */
export const LossFnTypeSchema = z.enum(LOSS_FN_TYPES, {
  error: `must be one of ${LOSS_FN_TYPES.map((n) => `"${n}"`).join(", ")}`,
});

/** A built-in loss function name. */
export type LossFnType = typeof LOSS_FN_TYPES[number];

/** Every key a datum's `lossFnInputs` may hold, camelCase. */
export const LOSS_INPUT_KEYS = [
  "targetTokens",
  "weights",
  "advantages",
  "logprobs",
  "clipLowThreshold",
  "clipHighThreshold",
] as const;

/** A key of a datum's `lossFnInputs`. */
export type LossInputKey = typeof LOSS_INPUT_KEYS[number];

/** The anchor's snake_case spelling of each loss input key. */
export const SNAKE_LOSS_INPUT_KEYS: Readonly<Record<string, LossInputKey>> = {
  "target_tokens": "targetTokens",
  "clip_low_threshold": "clipLowThreshold",
  "clip_high_threshold": "clipHighThreshold",
};

/** The dtype each loss input has (and plain arrays are read as). */
export const LOSS_INPUT_DTYPES: Readonly<
  Record<LossInputKey, "int64" | "float32">
> = {
  targetTokens: "int64",
  weights: "float32",
  advantages: "float32",
  logprobs: "float32",
  clipLowThreshold: "float32",
  clipHighThreshold: "float32",
};

/**
 * The `lossFnInputs` keys each loss requires and may take. `cross_entropy`
 * defaults missing `weights` to 1 on every token (a Bios convenience; the
 * anchor always sends them); the RL losses read sampler `logprobs` and
 * `advantages`; `ppo` and `cispo` also take per-token clip thresholds.
 */
export const LOSS_FN_INPUTS: Readonly<
  Record<
    LossFnType,
    {
      readonly required: readonly LossInputKey[];
      readonly optional: readonly LossInputKey[];
    }
  >
> = {
  "cross_entropy": { required: ["targetTokens"], optional: ["weights"] },
  "importance_sampling": {
    required: ["targetTokens", "logprobs", "advantages"],
    optional: [],
  },
  ppo: {
    required: ["targetTokens", "logprobs", "advantages"],
    optional: ["clipLowThreshold", "clipHighThreshold"],
  },
  cispo: {
    required: ["targetTokens", "logprobs", "advantages"],
    optional: ["clipLowThreshold", "clipHighThreshold"],
  },
  dro: { required: ["targetTokens", "logprobs", "advantages"], optional: [] },
};

/**
 * The `lossFnConfig` keys each loss accepts, with their defaults: PPO clips
 * the ratio to [0.8, 1.2]; CISPO clips one-sidedly to [0, 4] (CB tutorial
 * 202); DRO's `beta` has no documented default, Bios uses the docs' 0.05.
 */
export const LOSS_FN_CONFIG_DEFAULTS: Readonly<
  Record<LossFnType, Readonly<Record<string, number>>>
> = {
  "cross_entropy": {},
  "importance_sampling": {},
  ppo: { clipLowThreshold: 0.8, clipHighThreshold: 1.2 },
  cispo: { clipLowThreshold: 0.0, clipHighThreshold: 4.0 },
  dro: { beta: 0.05 },
};

const SNAKE_CONFIG_KEYS: Readonly<Record<string, string>> = {
  "clip_low_threshold": "clipLowThreshold",
  "clip_high_threshold": "clipHighThreshold",
};

/** Schema of a loss configuration: finite numbers by name (snake_case keys are camelCased). */
export const LossFnConfigSchema = ownKeysChecked(
  z.record(
    z.string(),
    finiteNumber("must be a finite number"),
    { error: "must be an object of numbers" },
  ),
  "is not a setting of any loss",
).transform((cfg) => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(cfg)) {
    // Keys are data: `constructor` must stay "constructor", not find a function.
    out[Object.hasOwn(SNAKE_CONFIG_KEYS, k) ? SNAKE_CONFIG_KEYS[k] : k] = v;
  }
  return out;
});

/** A loss configuration, e.g. `{ clipLowThreshold: 0.8, clipHighThreshold: 1.2 }`. */
export type LossFnConfig = Record<string, number>;

/**
 * Problems with `config` for `lossFn`, as `[key, message]` pairs: unknown
 * keys, and thresholds out of order or negative, or a non-positive `beta`.
 */
export function lossFnConfigProblems(
  lossFn: LossFnType,
  config: Readonly<Record<string, number>>,
): Array<[string, string]> {
  const allowed = Object.keys(LOSS_FN_CONFIG_DEFAULTS[lossFn]);
  const out: Array<[string, string]> = [];
  for (const k of Object.keys(config)) {
    if (!allowed.includes(k)) {
      out.push([
        k,
        allowed.length === 0
          ? `is not a setting of ${lossFn} (it takes none)`
          : `is not a setting of ${lossFn} (it takes ${allowed.join(", ")})`,
      ]);
    }
  }
  if (out.length > 0) return out;
  const full = resolveLossFnConfig(lossFn, config);
  if ("clipLowThreshold" in full) {
    if (full.clipLowThreshold < 0) {
      out.push(["clipLowThreshold", "must be ≥ 0"]);
    } else if (full.clipHighThreshold < full.clipLowThreshold) {
      out.push([
        "clipHighThreshold",
        `must be ≥ clipLowThreshold (${full.clipLowThreshold})`,
      ]);
    }
  }
  if ("beta" in full && !(full.beta > 0)) out.push(["beta", "must be > 0"]);
  return out;
}

/**
 * The full configuration `lossFn` runs with: its defaults, overridden by
 * `config` (assumed valid; see {@link lossFnConfigProblems}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveLossFnConfig } from "./loss_fn.ts";
 * assert.deepEqual(resolveLossFnConfig("ppo", { clipHighThreshold: 1.3 }),
 *   { clipLowThreshold: 0.8, clipHighThreshold: 1.3 });
 * ```
 */
export function resolveLossFnConfig(
  lossFn: LossFnType,
  config: Readonly<Record<string, number>> = {},
): Record<string, number> {
  return { ...LOSS_FN_CONFIG_DEFAULTS[lossFn], ...config };
}
