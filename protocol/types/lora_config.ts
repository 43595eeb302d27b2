/**
 * `LoraConfig`: which weights get a LoRA adapter and how it is scaled
 * (tinker-api.md §1.6 and "Where Bios differs on purpose": Bios exposes
 * `alpha`, `dropout` and `targetModules`). The adapter adds
 * `(alpha / rank) · B·A·x` to each adapted linear layer.
 *
 * The `train*` flags pick module groups (attention: q/k/v/o; MLP:
 * gate/up/down; unembedding: lm_head); `targetModules`, when given, narrows
 * that choice to the modules it lists. The rank's upper bound depends on the
 * model's widths, so the trainer checks it.
 *
 * @module
 */

import { z } from "zod";
import { finiteNumber, safeInteger } from "./checks.ts";
import { SeedSchema } from "./sampling_params.ts";

/** Linear layers a LoRA adapter may target, by their Hugging Face names. */
export const LORA_TARGET_MODULES = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
  "lm_head",
] as const;

/** A linear layer a LoRA adapter may target. */
export type LoraTargetModule = typeof LORA_TARGET_MODULES[number];

/** Which modules each `train*` flag turns on. */
export const LORA_MODULE_GROUPS: Readonly<{
  trainAttn: readonly LoraTargetModule[];
  trainMlp: readonly LoraTargetModule[];
  trainUnembed: readonly LoraTargetModule[];
}> = {
  trainAttn: ["q_proj", "k_proj", "v_proj", "o_proj"],
  trainMlp: ["gate_proj", "up_proj", "down_proj"],
  trainUnembed: ["lm_head"],
};

const MODULE_RULE = `must be one of ${
  LORA_TARGET_MODULES.map((m) => `"${m}"`).join(", ")
}`;

/** The fields of a LoRA configuration (shared with the create options). */
const loraShape = {
  rank: safeInteger("must be an integer ≥ 1", (v) => v >= 1).default(32),
  alpha: finiteNumber("must be a finite number > 0", (v) => v > 0).default(32),
  dropout: finiteNumber("must be in [0, 1)", (v) => v >= 0 && v < 1).default(
    0,
  ),
  targetModules: z.array(z.enum(LORA_TARGET_MODULES, { error: MODULE_RULE }), {
    error: "must be an array of module names",
  }).min(1, { error: "must name at least 1 module" }).optional(),
  trainAttn: z.boolean({ error: "must be a boolean" }).default(true),
  trainMlp: z.boolean({ error: "must be a boolean" }).default(true),
  trainUnembed: z.boolean({ error: "must be a boolean" }).default(true),
  seed: SeedSchema.optional(),
};

type LoraFields = {
  targetModules?: LoraTargetModule[];
  trainAttn: boolean;
  trainMlp: boolean;
  trainUnembed: boolean;
};

function loraProblem(c: LoraFields): [PropertyKey[], string, unknown] | null {
  if (!c.trainAttn && !c.trainMlp && !c.trainUnembed) {
    return [
      ["trainAttn"],
      "must be true when trainMlp and trainUnembed are false (at least one module group must train)",
      false,
    ];
  }
  if (c.targetModules !== undefined) {
    const dup = c.targetModules.find((m, i) =>
      c.targetModules!.indexOf(m) !== i
    );
    if (dup !== undefined) {
      return [
        ["targetModules"],
        `must not list "${dup}" twice`,
        c.targetModules,
      ];
    }
    if (resolveTargetModules(c).length === 0) {
      return [
        ["targetModules"],
        "must include a module of a group whose train flag is on",
        c.targetModules,
      ];
    }
  }
  return null;
}

function refineLora(c: LoraFields, ctx: z.RefinementCtx): void {
  const p = loraProblem(c);
  if (p !== null) {
    ctx.addIssue({ code: "custom", path: p[0], message: p[1], input: p[2] });
  }
}

/** Schema of a LoRA configuration; omitted fields take their defaults. */
export const LoraConfigSchema = z.strictObject(loraShape, {
  error: "must be an object of LoRA settings",
}).superRefine(refineLora);

/** A LoRA configuration with defaults filled in. */
export interface LoraConfig {
  /** Adapter rank, an integer ≥ 1 (at most the adapted layers' width). Default 32. */
  rank: number;
  /** Scale numerator: the update is `(alpha / rank) · B·A·x`. Default 32. */
  alpha: number;
  /** Dropout on the adapter's input while training, in [0, 1). Default 0. */
  dropout: number;
  /** When given, only these modules (of the groups switched on) are adapted. */
  targetModules?: LoraTargetModule[];
  /** Adapt attention projections (q/k/v/o). Default true. */
  trainAttn: boolean;
  /** Adapt MLP projections (gate/up/down). Default true. */
  trainMlp: boolean;
  /** Adapt the unembedding (lm_head). Default true. */
  trainUnembed: boolean;
  /** Seed of the adapter's initialisation; random when omitted. */
  seed?: number;
}

/** A LoRA configuration as users write it: every field optional. */
export type LoraConfigInput = Partial<LoraConfig>;

/** Most pipeline replicas a run may ask for (`dataParallel`). */
export const MAX_DATA_PARALLEL = 64;

/**
 * Schema of `createLoraTrainingClient`'s options: a base model, LoRA
 * settings and the run's data parallelism.
 */
export const CreateLoraTrainingClientOptionsSchema = z.strictObject({
  baseModel: z.string({ error: "must be a model name" }).min(1, {
    error: "must be a non-empty model name",
  }),
  ...loraShape,
  dataParallel: safeInteger(
    `must be an integer in [1, ${MAX_DATA_PARALLEL}]`,
    (v) => v >= 1 && v <= MAX_DATA_PARALLEL,
  ).default(1),
}, { error: "must be an object with at least baseModel" }).superRefine(
  refineLora,
);

/** `createLoraTrainingClient`'s options with defaults filled in. */
export interface CreateLoraTrainingClientOptions extends LoraConfig {
  /** The model to adapt, e.g. `"ultrasafe/usf-finance"`. */
  baseModel: string;
  /**
   * Pipeline replicas (data parallelism): each forwardBackward's datums are
   * split into this many contiguous parts, one per replica, and the LoRA
   * gradients are summed over the replicas in replica order before each
   * optimizer step. Default 1.
   */
  dataParallel: number;
}

/** `createLoraTrainingClient`'s options as users write them. */
export interface CreateLoraTrainingClientOptionsInput extends LoraConfigInput {
  /** The model to adapt, e.g. `"ultrasafe/usf-finance"`. */
  baseModel: string;
  /** Pipeline replicas (data parallelism), in [1, 64]. Default 1. */
  dataParallel?: number;
}

/**
 * The modules that get an adapter: those of the groups whose flag is on,
 * narrowed to `targetModules` when given, in {@link LORA_TARGET_MODULES} order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTargetModules } from "./lora_config.ts";
 * assert.deepEqual(
 *   resolveTargetModules({ trainAttn: true, trainMlp: false, trainUnembed: false }),
 *   ["q_proj", "k_proj", "v_proj", "o_proj"],
 * );
 * ```
 */
export function resolveTargetModules(c: LoraFields): LoraTargetModule[] {
  const on = new Set<LoraTargetModule>([
    ...(c.trainAttn ? LORA_MODULE_GROUPS.trainAttn : []),
    ...(c.trainMlp ? LORA_MODULE_GROUPS.trainMlp : []),
    ...(c.trainUnembed ? LORA_MODULE_GROUPS.trainUnembed : []),
  ]);
  return LORA_TARGET_MODULES.filter((m) =>
    on.has(m) && (c.targetModules === undefined || c.targetModules.includes(m))
  );
}
