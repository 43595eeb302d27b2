/**
 * `Datum`: one training example, a model input plus the per-token tensors
 * its loss reads (`lossFnInputs`).
 *
 * Alignment (tinker-api.md §1.6): every loss input has one value per
 * model-input token; position `i` of the input predicts `targetTokens[i]`.
 * Loss inputs may be `TensorData` or bare arrays; a bare array takes its
 * dtype from its key. The anchor's snake_case keys (`target_tokens`) are
 * accepted and renamed to camelCase.
 *
 * @module
 */

import { z } from "zod";
import {
  firstBad,
  isTokenId,
  type NumericArray,
  ownKeysChecked,
  TOKEN_ID_RULE,
} from "./checks.ts";
import {
  LOSS_INPUT_DTYPES,
  LOSS_INPUT_KEYS,
  type LossInputKey,
  SNAKE_LOSS_INPUT_KEYS,
} from "./loss_fn.ts";
import { type ModelInput, NonEmptyModelInputSchema } from "./model_input.ts";
import {
  NumericArraySchema,
  type TensorData,
  TensorDataSchema,
  tensorToTypedArray,
} from "./tensor_data.ts";
import { parseOrThrow } from "../parse.ts";

/** Schema of one loss input: a `TensorData` or a bare numeric array. */
export const LossInputValueSchema = z.union([
  NumericArraySchema,
  TensorDataSchema,
], {
  error:
    "must be a TensorData or an array of numbers (number[], Float32Array or Int32Array)",
});

/** One loss input: a `TensorData` or a bare numeric array. */
export type LossInputValue = TensorData | NumericArray;

/**
 * Largest magnitude of a per-token weight or advantage. It keeps a sane
 * model's loss and gradients far inside float32's range (a token's
 * dL/dlogit is at most this), while allowing any realistic scaling.
 */
export const MAX_LOSS_WEIGHT = 1e6;

/** Smallest sampler log-probability accepted (e^-1000 is 0 in any float). */
export const MIN_SAMPLING_LOGPROB = -1000;

/** Largest per-token clip threshold of ppo and cispo. */
export const MAX_CLIP_THRESHOLD = 1e6;

/** The value rule each loss input obeys, as a check and its message. */
const VALUE_RULES: ReadonlyMap<
  LossInputKey,
  { ok: (v: number) => boolean; rule: string }
> = new Map<LossInputKey, { ok: (v: number) => boolean; rule: string }>([
  ["targetTokens", { ok: isTokenId, rule: TOKEN_ID_RULE }],
  // Signed, as the anchor's forward_backward_custom sends −dC/dlogprob as
  // cross_entropy weights; a negative weight pushes a token's logprob down.
  ["weights", {
    ok: (v) => Math.abs(v) <= MAX_LOSS_WEIGHT,
    rule: `must be a weight in [-${MAX_LOSS_WEIGHT}, ${MAX_LOSS_WEIGHT}]`,
  }],
  ["advantages", {
    ok: (v) => Math.abs(v) <= MAX_LOSS_WEIGHT,
    rule: `must be a number in [-${MAX_LOSS_WEIGHT}, ${MAX_LOSS_WEIGHT}]`,
  }],
  ["logprobs", {
    ok: (v) => v >= MIN_SAMPLING_LOGPROB && v <= 0,
    rule: `must be a log-probability in [${MIN_SAMPLING_LOGPROB}, 0]`,
  }],
  ["clipLowThreshold", {
    ok: (v) => v >= 0 && v <= MAX_CLIP_THRESHOLD,
    rule: `must be a number in [0, ${MAX_CLIP_THRESHOLD}]`,
  }],
  ["clipHighThreshold", {
    ok: (v) => v >= 0 && v <= MAX_CLIP_THRESHOLD,
    rule: `must be a number in [0, ${MAX_CLIP_THRESHOLD}]`,
  }],
]);

function isTensorData(v: LossInputValue): v is TensorData {
  return !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** The camelCase key for a loss input key as given, or undefined if unknown. */
export function lossInputKey(key: string): LossInputKey | undefined {
  if ((LOSS_INPUT_KEYS as readonly string[]).includes(key)) {
    return key as LossInputKey;
  }
  // Keys are data: `constructor` or `__proto__` must not find Object.prototype's.
  return Object.hasOwn(SNAKE_LOSS_INPUT_KEYS, key)
    ? SNAKE_LOSS_INPUT_KEYS[key]
    : undefined;
}

function tokenCount(mi: ModelInput): number {
  let n = 0;
  for (const c of mi.chunks) n += c.tokens.length;
  return n;
}

const UNKNOWN_INPUT_RULE = `is not a known loss input (expected one of ${
  LOSS_INPUT_KEYS.join(", ")
})`;

/** Schema of a datum; the output has camelCase loss-input keys. */
export const DatumSchema = z.strictObject({
  modelInput: NonEmptyModelInputSchema,
  lossFnInputs: ownKeysChecked(
    z.record(z.string(), LossInputValueSchema, {
      error: "must be an object of loss inputs",
    }),
    UNKNOWN_INPUT_RULE,
  ),
}).superRefine((d, ctx) => {
  const n = tokenCount(d.modelInput);
  const seen = new Map<LossInputKey, string>();
  // In name order, so that the first fault named does not depend on the
  // order the keys arrived in (a protobuf map has none).
  const entries = Object.entries(d.lossFnInputs).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
  for (const [given, value] of entries) {
    const path = ["lossFnInputs", given];
    const key = lossInputKey(given);
    if (key === undefined) {
      ctx.addIssue({
        code: "custom",
        continue: false,
        message: UNKNOWN_INPUT_RULE,
        path,
        input: value,
      });
      continue;
    }
    const other = seen.get(key);
    if (other !== undefined) {
      ctx.addIssue({
        code: "custom",
        continue: false,
        message: `is given twice (as ${other} and ${given})`,
        path,
        input: value,
      });
      continue;
    }
    seen.set(key, given);
    let values: NumericArray;
    let valuePath: PropertyKey[] = path;
    if (isTensorData(value)) {
      const dtype = LOSS_INPUT_DTYPES[key];
      if (value.dtype !== dtype) {
        ctx.addIssue({
          code: "custom",
          continue: false,
          message: `must be "${dtype}" for ${key}`,
          path: [...path, "dtype"],
          input: value.dtype,
        });
        continue;
      }
      if (value.shape !== undefined && value.shape.length !== 1) {
        ctx.addIssue({
          code: "custom",
          continue: false,
          message: `must be one-dimensional, [${n}]`,
          path: [...path, "shape"],
          input: value.shape,
        });
        continue;
      }
      values = value.data;
      valuePath = [...path, "data"];
    } else {
      values = value;
    }
    if (values.length !== n) {
      ctx.addIssue({
        code: "custom",
        continue: false,
        message: `must have one value per model-input token (${n})`,
        path,
        input: values,
      });
      continue;
    }
    const { ok, rule } = VALUE_RULES.get(key)!;
    const i = firstBad(values, ok);
    if (i >= 0) {
      ctx.addIssue({
        code: "custom",
        continue: false,
        message: rule,
        path: [...valuePath, i],
        input: values[i],
      });
    }
  }
  if (!seen.has("targetTokens")) {
    ctx.addIssue({
      code: "custom",
      continue: false,
      message: "is required by every loss",
      path: ["lossFnInputs", "targetTokens"],
      input: undefined,
    });
  }
}).transform((d) => {
  const lossFnInputs: Partial<Record<LossInputKey, LossInputValue>> = {};
  for (const [given, value] of Object.entries(d.lossFnInputs)) {
    lossFnInputs[lossInputKey(given) as LossInputKey] = value;
  }
  return { modelInput: d.modelInput, lossFnInputs };
});

/** A datum as users may write it (bare arrays, snake_case keys allowed). */
export interface DatumInput {
  /** The tokens the model reads. */
  modelInput: ModelInput;
  /** Per-token loss inputs by key (`targetTokens`, `weights`, …). */
  lossFnInputs: Record<string, LossInputValue>;
}

/** A validated datum, loss-input keys in camelCase. */
export interface Datum {
  /** The tokens the model reads (at least one). */
  modelInput: ModelInput;
  /** Per-token loss inputs, one value per input token. */
  lossFnInputs: Partial<Record<LossInputKey, LossInputValue>>;
}

/** Schema of a batch: a non-empty array of datums. */
export const DatumBatchSchema = z.array(DatumSchema, {
  error: "must be an array of datums",
}).min(1, { error: "must have at least 1 datum" });

/**
 * A datum flattened for compute: the input tokens as one `Int32Array`, each
 * loss input as the typed array its dtype implies (`targetTokens` as
 * `Int32Array`, the rest as `Float32Array`), all of the same length.
 */
export interface NormalizedDatum {
  /** Model-input token ids, all chunks concatenated. */
  tokens: Int32Array;
  /** Loss inputs by camelCase key. */
  inputs: Record<string, Float32Array | Int32Array>;
}

/** Flattens an already validated datum (no checks; see {@link normalizeDatum}). */
export function flattenDatum(d: Datum): NormalizedDatum {
  const tokens = new Int32Array(tokenCount(d.modelInput));
  let at = 0;
  for (const c of d.modelInput.chunks) {
    tokens.set(c.tokens, at);
    at += c.tokens.length;
  }
  const inputs: Record<string, Float32Array | Int32Array> = {};
  for (const [key, value] of Object.entries(d.lossFnInputs)) {
    if (value === undefined) continue;
    const dtype = LOSS_INPUT_DTYPES[key as LossInputKey];
    inputs[key] = isTensorData(value)
      ? tensorToTypedArray(value)
      : tensorToTypedArray({ data: value, dtype });
  }
  return { tokens, inputs };
}

/**
 * Validates a datum and flattens it for compute. Lengths must agree: every
 * loss input has one value per input token. Errors name the field as
 * `data[index]…` (or `datum…` when no index is given).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalizeDatum } from "./datum.ts";
 * const d = normalizeDatum({
 *   modelInput: { chunks: [{ type: "encoded_text", tokens: [5, 6] }] },
 *   lossFnInputs: { targetTokens: [6, 7], weights: [0, 1] },
 * });
 * assert.deepEqual(d.inputs.targetTokens, new Int32Array([6, 7]));
 * ```
 */
export function normalizeDatum(d: unknown, index?: number): NormalizedDatum {
  const what = index === undefined ? "datum" : `data[${index}]`;
  return flattenDatum(parseOrThrow(DatumSchema, d, what));
}

/** Validates a non-empty batch of datums and flattens each one. */
export function normalizeBatch(data: unknown): NormalizedDatum[] {
  return parseOrThrow(DatumBatchSchema, data, "data").map(flattenDatum);
}
