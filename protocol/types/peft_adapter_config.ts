/**
 * PEFT's `adapter_config.json`, as Bios reads a LoRA adapter that PEFT (or
 * another tool writing its layout) saved. Bios computes plain LoRA,
 * `W x + (lora_alpha / r) · B A x` on whole linear layers, so every PEFT
 * option that changes that computation is refused by name when it is on:
 * DoRA, rsLoRA, bias training, `modules_to_save`, `fan_in_fan_out`,
 * per-layer selections and patterns, and the LoRA variants PEFT adds
 * (aLoRA, KaSA, MonteCLoRA, BD-LoRA, QALoRA, Arrow, trainable tokens, layer
 * replication, parameter targets). Unknown fields pass: PEFT adds fields
 * with every release, and those it adds are off by default.
 * `lora_dropout` only matters in training and is kept;
 * `base_model_name_or_path` is informational.
 *
 * @module
 */

import { z } from "zod";
import { LORA_TARGET_MODULES } from "./lora_config.ts";

/** An option that must be off: its accepted values, and what it would be. */
interface OffOption {
  /** The values that mean "off". */
  off: (v: unknown) => boolean;
  /** What the option does, for the refusal. */
  what: string;
}

const isNullish = (v: unknown) => v === null || v === undefined;
const isFalse = (v: unknown) => isNullish(v) || v === false;
const isEmpty = (v: unknown) =>
  isNullish(v) || (Array.isArray(v) && v.length === 0) ||
  (typeof v === "object" && v !== null && Object.keys(v).length === 0);

/** PEFT options Bios does not implement, each with what "off" looks like. */
export const UNSUPPORTED_PEFT_OPTIONS: Readonly<Record<string, OffOption>> = {
  "use_dora": { off: isFalse, what: "DoRA (weight-decomposed LoRA)" },
  "use_rslora": { off: isFalse, what: "rsLoRA (scale lora_alpha / √r)" },
  bias: {
    off: (v) => isNullish(v) || v === "none",
    what: 'trained biases (only "none" is supported)',
  },
  "lora_bias": { off: isFalse, what: "a bias on lora_B" },
  "modules_to_save": {
    off: isEmpty,
    what: "fully trained modules saved beside the adapter",
  },
  "fan_in_fan_out": {
    off: isFalse,
    what: "transposed (Conv1D-style) weights",
  },
  "layers_to_transform": {
    off: isEmpty,
    what: "adapting some layers only (Bios adapts every layer)",
  },
  "layers_pattern": {
    off: isEmpty,
    what: "a layer pattern for layers_to_transform",
  },
  "rank_pattern": { off: isEmpty, what: "a rank per module" },
  "alpha_pattern": { off: isEmpty, what: "an alpha per module" },
  "layer_replication": { off: isEmpty, what: "replicated layers" },
  "trainable_token_indices": { off: isEmpty, what: "trainable token rows" },
  "target_parameters": { off: isEmpty, what: "adapters on bare parameters" },
  "alora_invocation_tokens": {
    off: isEmpty,
    what:
      "Activated LoRA (aLoRA, the adapter applies after its invocation tokens)",
  },
  "use_qalora": { off: isFalse, what: "QALoRA (pooled adapter inputs)" },
  "use_bdlora": { off: isEmpty, what: "BD-LoRA (block-diagonal factors)" },
  "kasa_config": {
    off: isEmpty,
    what: "KaSA (a learnt diagonal between A and B)",
  },
  "monteclora_config": { off: isEmpty, what: "MonteCLoRA (sampled adapters)" },
  "arrow_config": { off: isEmpty, what: "Arrow routing between adapters" },
};

const TARGET_RULE = `must be a module Bios can adapt: ${
  LORA_TARGET_MODULES.join(", ")
}`;

/** The last dotted segment of a PEFT target (`model.layers.0.mlp.up_proj` → `up_proj`). */
function leaf(target: string): string {
  return target.slice(target.lastIndexOf(".") + 1);
}

/**
 * Schema of a PEFT LoRA `adapter_config.json`. The output keeps what Bios
 * uses: rank, alpha, dropout, the listed target modules (a regex or
 * `"all-linear"` as a string; the adapter's tensors then say what it
 * adapts) and the informational base model name.
 */
export const PeftAdapterConfigSchema = z.looseObject({
  "peft_type": z.literal("LORA", {
    error: 'must be "LORA" (Bios reads LoRA adapters only)',
  }),
  "task_type": z.union([z.literal("CAUSAL_LM"), z.null()], {
    error: 'must be "CAUSAL_LM" or null (Bios serves causal language models)',
  }).optional(),
  r: z.number({ error: "must be an integer ≥ 1" }).refine(
    (v) => Number.isSafeInteger(v) && v >= 1,
    { error: "must be an integer ≥ 1", abort: true },
  ),
  "lora_alpha": z.number({ error: "must be a finite number > 0" }).refine(
    (v) => Number.isFinite(v) && v > 0,
    { error: "must be a finite number > 0", abort: true },
  ),
  "lora_dropout": z.number({ error: "must be in [0, 1)" }).refine(
    (v) => v >= 0 && v < 1,
    { error: "must be in [0, 1)", abort: true },
  ).optional(),
  "target_modules": z.union([z.string(), z.array(z.string()), z.null()], {
    error: "must be a list of module names, a regex, or null",
  }).optional(),
  "base_model_name_or_path": z.union([z.string(), z.null()]).optional(),
}, { error: "must be a JSON object" }).superRefine((c, ctx) => {
  const targets = Array.isArray(c.target_modules) ? c.target_modules : [];
  const bad = targets.findIndex((m) =>
    !(LORA_TARGET_MODULES as readonly string[]).includes(leaf(m))
  );
  if (bad >= 0) {
    ctx.addIssue({
      code: "custom",
      path: ["target_modules", bad],
      message: TARGET_RULE,
      input: targets[bad],
    });
  }
  for (const [key, opt] of Object.entries(UNSUPPORTED_PEFT_OPTIONS)) {
    const v = (c as Record<string, unknown>)[key];
    if (!opt.off(v)) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `must be off: Bios does not implement ${opt.what}`,
        input: v,
      });
    }
  }
});

/** A parsed PEFT `adapter_config.json`. */
export type PeftAdapterConfig = z.output<typeof PeftAdapterConfigSchema>;
