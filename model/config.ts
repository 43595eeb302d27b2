/**
 * The Llama-family model configuration, read from and written to a Hugging Face
 * `config.json`, plus the list of tensors (names and shapes) such a model has.
 *
 * Shape legend: V vocabulary, C hidden size, F intermediate (MLP) size, H query
 * heads, G key/value heads, D head dimension, L layers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLlamaConfig } from "./config.ts";
 * const cfg = parseLlamaConfig({
 *   model_type: "llama", hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
 *   num_attention_heads: 4, vocab_size: 259,
 * });
 * assert.equal(cfg.headDim, 16);
 * assert.equal(cfg.numKvHeads, 4);
 * ```
 *
 * @module
 */
import type { RopeScaling } from "../kernels/rope_freq.ts";

/** Thrown for a `config.json` Bios cannot run, naming the field and the limit. */
export class ConfigError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A Llama-layout decoder-only transformer (RMSNorm, RoPE, GQA attention, SwiGLU MLP, no biases). */
export interface LlamaConfig {
  /** Model width C. */
  hiddenSize: number;
  /** MLP width F. */
  intermediateSize: number;
  /** Number of decoder layers L. */
  numLayers: number;
  /** Query heads H. */
  numHeads: number;
  /** Key/value heads G; H is a multiple of G. */
  numKvHeads: number;
  /** Per-head dimension D (even, for RoPE). */
  headDim: number;
  /** Vocabulary size V. */
  vocabSize: number;
  /** RMSNorm epsilon. */
  rmsNormEps: number;
  /** RoPE base θ. */
  ropeTheta: number;
  /** Llama 3's RoPE frequency scaling, when the model has it. */
  ropeScaling?: RopeScaling;
  /**
   * Qwen3's per-head RMSNorm of queries and keys before RoPE
   * (`self_attn.q_norm`, `self_attn.k_norm`, each [D]); absent for Llama.
   */
  qkNorm?: true;
  /**
   * Qwen2's biases on the q, k and v projections (`self_attn.{q,k,v}_proj.bias`);
   * absent for Llama.
   */
  qkvBias?: true;
  /** Whether `lm_head` shares `model.embed_tokens.weight`. */
  tieWordEmbeddings: boolean;
  /** Longest sequence the model supports. */
  maxPositionEmbeddings: number;
  /** Beginning-of-sequence token id, if the model has one. */
  bosTokenId?: number;
  /** End-of-sequence token ids (possibly empty). */
  eosTokenIds: number[];
}

/**
 * The Hugging Face `model_type`s Bios runs: plain Llama layouts, Qwen2
 * (Llama's layout plus biases on q, k and v; Qwen2.5 is the same type) and
 * Qwen3 (Llama's layout plus a per-head RMSNorm of q and k).
 */
const ACCEPTED_MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3"];

function obj(json: unknown): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError("config.json must be a JSON object");
  }
  return json as Record<string, unknown>;
}

function positiveInt(
  raw: Record<string, unknown>,
  field: string,
  fallback?: number,
): number {
  const v = raw[field] ?? fallback;
  if (v === undefined) throw new ConfigError(`${field} is required`);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new ConfigError(
      `${field} must be a positive integer: got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function positiveNumber(
  raw: Record<string, unknown>,
  field: string,
  fallback: number,
): number {
  const v = raw[field] ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ConfigError(
      `${field} must be a positive finite number: got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function tokenId(v: unknown, field: string, vocabSize: number): number {
  if (
    typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= vocabSize
  ) {
    throw new ConfigError(
      `${field} must be an integer in [0, ${vocabSize - 1}]: got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
}

/**
 * RoPE's base and scaling. transformers 5 keeps both in `rope_parameters`
 * (`rope_theta`, `rope_type`, the type's fields); transformers 4 has a
 * top-level `rope_theta` and a `rope_scaling` object. Types "default" and
 * "llama3" are computed; any other (yarn, linear, dynamic, …) is refused by
 * name rather than silently computed as the default.
 */
function readRope(
  raw: Record<string, unknown>,
): { theta: number; scaling?: RopeScaling } {
  const params = raw.rope_parameters;
  let theta: number;
  let spec: Record<string, unknown> | undefined;
  let where: string;
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) {
      throw new ConfigError(
        `rope_parameters must be an object: got ${JSON.stringify(params)}`,
      );
    }
    spec = params as Record<string, unknown>;
    where = "rope_parameters";
    theta = positiveNumber(
      { "rope_parameters.rope_theta": spec.rope_theta },
      "rope_parameters.rope_theta",
      10000,
    );
    if (raw.rope_theta !== undefined && raw.rope_theta !== theta) {
      throw new ConfigError(
        `rope_theta (${raw.rope_theta}) and rope_parameters.rope_theta (${theta}) disagree`,
      );
    }
  } else {
    theta = positiveNumber(raw, "rope_theta", 10000);
    const s = raw.rope_scaling;
    if (
      s !== undefined && s !== null &&
      (typeof s !== "object" || Array.isArray(s))
    ) {
      throw new ConfigError(
        `rope_scaling must be an object: got ${JSON.stringify(s)}`,
      );
    }
    spec = (s ?? undefined) as Record<string, unknown> | undefined;
    where = "rope_scaling";
  }
  const type = spec?.rope_type ?? spec?.type ?? "default";
  if (type === "default") return { theta };
  if (type !== "llama3") {
    throw new ConfigError(
      `${where}.rope_type ${
        JSON.stringify(type)
      } is not supported yet: Bios computes "default" and "llama3" RoPE`,
    );
  }
  const num = (key: string) => {
    const v = spec![key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError(
        `${where}.${key} must be a positive finite number for llama3: got ${
          JSON.stringify(v)
        }`,
      );
    }
    return v;
  };
  const scaling: RopeScaling = {
    type: "llama3",
    factor: num("factor"),
    lowFreqFactor: num("low_freq_factor"),
    highFreqFactor: num("high_freq_factor"),
    originalMaxPositionEmbeddings: num("original_max_position_embeddings"),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    throw new ConfigError(
      `${where}.high_freq_factor (${scaling.highFreqFactor}) must exceed low_freq_factor (${scaling.lowFreqFactor})`,
    );
  }
  return { theta, scaling };
}

/**
 * Parses a Hugging Face `config.json` of a Llama-layout model.
 *
 * Defaults as in `transformers`' `LlamaConfig`: `num_key_value_heads` = heads,
 * `head_dim` = hidden / heads, `rms_norm_eps` 1e-6, `rope_theta` 10000,
 * `tie_word_embeddings` false, `max_position_embeddings` 2048. `model_type`
 * "llama" and "mistral" are accepted. A Mistral `sliding_window` caps
 * `maxPositionEmbeddings`, since within the window sliding and full causal
 * attention agree. Biases, RoPE scaling and activations other than SiLU are
 * rejected, as is "qwen2" (its q/k/v projections always carry biases).
 *
 * @param json the parsed `config.json`
 * @returns the validated config
 * @throws {ConfigError} naming the field and the limit
 */
export function parseLlamaConfig(json: unknown): LlamaConfig {
  const raw = obj(json);
  const modelType = raw.model_type ?? "llama";
  if (
    typeof modelType !== "string" || !ACCEPTED_MODEL_TYPES.includes(modelType)
  ) {
    throw new ConfigError(
      `model_type must be one of ${ACCEPTED_MODEL_TYPES.join(", ")}: got ${
        JSON.stringify(modelType)
      }`,
    );
  }
  for (const field of ["attention_bias", "mlp_bias"]) {
    if (raw[field] !== undefined && raw[field] !== false) {
      throw new ConfigError(
        `${field} must be false (Bios's Llama layout has no bias terms): got ${
          JSON.stringify(raw[field])
        }`,
      );
    }
  }
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") {
    throw new ConfigError(
      `hidden_act must be "silu": got ${JSON.stringify(act)}`,
    );
  }
  const { theta: ropeTheta, scaling: ropeScaling } = readRope(raw);

  const hiddenSize = positiveInt(raw, "hidden_size");
  const numHeads = positiveInt(raw, "num_attention_heads");
  const numKvHeads = positiveInt(raw, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`,
    );
  }
  if (raw.head_dim === undefined || raw.head_dim === null) {
    if (hiddenSize % numHeads !== 0) {
      throw new ConfigError(
        `hidden_size (${hiddenSize}) must be a multiple of num_attention_heads (${numHeads}) when head_dim is absent`,
      );
    }
  }
  const headDim = positiveInt(
    { head_dim: raw.head_dim ?? undefined },
    "head_dim",
    hiddenSize / numHeads,
  );
  if (headDim % 2 !== 0) {
    throw new ConfigError(
      `head_dim must be even (RoPE rotates pairs): got ${headDim}`,
    );
  }
  const vocabSize = positiveInt(raw, "vocab_size");
  let maxPositionEmbeddings = positiveInt(raw, "max_position_embeddings", 2048);
  const window = raw.sliding_window;
  // Qwen3 names a window it does not use unless use_sliding_window is set.
  if (
    window !== undefined && window !== null && raw.use_sliding_window !== false
  ) {
    const w = positiveInt(raw, "sliding_window");
    maxPositionEmbeddings = Math.min(maxPositionEmbeddings, w);
  }
  const tie = raw.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") {
    throw new ConfigError(
      `tie_word_embeddings must be a boolean: got ${JSON.stringify(tie)}`,
    );
  }
  const bos = raw.bos_token_id;
  const eos = raw.eos_token_id;
  const eosList = eos === undefined || eos === null
    ? []
    : Array.isArray(eos)
    ? eos
    : [eos];
  return {
    hiddenSize,
    intermediateSize: positiveInt(raw, "intermediate_size"),
    numLayers: positiveInt(raw, "num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: positiveNumber(raw, "rms_norm_eps", 1e-6),
    ropeTheta,
    ...(ropeScaling ? { ropeScaling } : {}),
    ...(modelType === "qwen3" ? { qkNorm: true as const } : {}),
    ...(modelType === "qwen2" ? { qkvBias: true as const } : {}),
    tieWordEmbeddings: tie,
    maxPositionEmbeddings,
    ...(bos === undefined || bos === null
      ? {}
      : { bosTokenId: tokenId(bos, "bos_token_id", vocabSize) }),
    eosTokenIds: eosList.map((id, i) =>
      tokenId(id, `eos_token_id[${i}]`, vocabSize)
    ),
  };
}

/**
 * Writes a config back as a Hugging Face `config.json` object
 * (`LlamaForCausalLM`, float32), which `parseLlamaConfig` reads back unchanged.
 *
 * @param cfg the config
 * @returns a JSON-ready object with a fixed key order
 */
export function toHfConfig(cfg: LlamaConfig): Record<string, unknown> {
  return {
    architectures: [
      cfg.qkNorm
        ? "Qwen3ForCausalLM"
        : cfg.qkvBias
        ? "Qwen2ForCausalLM"
        : "LlamaForCausalLM",
    ],
    model_type: cfg.qkNorm ? "qwen3" : cfg.qkvBias ? "qwen2" : "llama",
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numLayers,
    num_attention_heads: cfg.numHeads,
    num_key_value_heads: cfg.numKvHeads,
    head_dim: cfg.headDim,
    vocab_size: cfg.vocabSize,
    hidden_act: "silu",
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: cfg.ropeScaling
      ? {
        rope_type: "llama3",
        factor: cfg.ropeScaling.factor,
        low_freq_factor: cfg.ropeScaling.lowFreqFactor,
        high_freq_factor: cfg.ropeScaling.highFreqFactor,
        original_max_position_embeddings:
          cfg.ropeScaling.originalMaxPositionEmbeddings,
      }
      : null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    initializer_range: 0.02,
    bos_token_id: cfg.bosTokenId ?? null,
    eos_token_id: cfg.eosTokenIds.length === 1
      ? cfg.eosTokenIds[0]
      : cfg.eosTokenIds,
    torch_dtype: "float32",
    use_cache: true,
  };
}

/**
 * Every tensor of a Hugging Face Llama checkpoint with its shape, in a fixed
 * order: embeddings, then each layer, then the final norm and (when untied)
 * `lm_head.weight`. Linear weights are [out, in], as PyTorch stores them.
 *
 * @param cfg the config
 * @returns `[name, shape]` pairs
 */
export function llamaTensorShapes(cfg: LlamaConfig): [string, number[]][] {
  const {
    vocabSize: V,
    hiddenSize: C,
    intermediateSize: F,
    numHeads: H,
    numKvHeads: G,
    headDim: D,
  } = cfg;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [V, C]]];
  for (let i = 0; i < cfg.numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.input_layernorm.weight`, [C]],
      [`${p}.self_attn.q_proj.weight`, [H * D, C]],
      [`${p}.self_attn.k_proj.weight`, [G * D, C]],
      [`${p}.self_attn.v_proj.weight`, [G * D, C]],
      [`${p}.self_attn.o_proj.weight`, [C, H * D]],
      ...(cfg.qkNorm
        ? [
          [`${p}.self_attn.q_norm.weight`, [D]] as [string, number[]],
          [`${p}.self_attn.k_norm.weight`, [D]] as [string, number[]],
        ]
        : []),
      ...(cfg.qkvBias
        ? [
          [`${p}.self_attn.q_proj.bias`, [H * D]] as [string, number[]],
          [`${p}.self_attn.k_proj.bias`, [G * D]] as [string, number[]],
          [`${p}.self_attn.v_proj.bias`, [G * D]] as [string, number[]],
        ]
        : []),
      [`${p}.post_attention_layernorm.weight`, [C]],
      [`${p}.mlp.gate_proj.weight`, [F, C]],
      [`${p}.mlp.up_proj.weight`, [F, C]],
      [`${p}.mlp.down_proj.weight`, [C, F]],
    );
  }
  out.push(["model.norm.weight", [C]]);
  if (!cfg.tieWordEmbeddings) out.push(["lm_head.weight", [V, C]]);
  return out;
}
