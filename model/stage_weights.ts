/**
 * The frozen base weights of one pipeline stage: a contiguous range of decoder
 * layers, plus the embedding on the first stage and the final norm and LM head
 * on the last.
 *
 * @module
 */
import type { Backend, Tensor } from "../kernels/backend.ts";
import { type HalfBits, halfToF32 } from "../kernels/half.ts";
import type { LlamaConfig } from "./config.ts";

/** Which part of the model a stage holds: layers [first, last). */
export interface StageRange {
  /** First decoder layer (inclusive). */
  first: number;
  /** Last decoder layer (exclusive). */
  last: number;
  /** Whether the stage starts with the token embedding. */
  embed: boolean;
  /** Whether the stage ends with the final norm and LM head. */
  head: boolean;
}

/** Base weights of one decoder layer (HF names without the `model.layers.i.` prefix). */
export interface LayerWeights {
  /** input_layernorm [C] */
  inputNorm: Tensor;
  /** self_attn.q_proj [H·D, C] */
  q: Tensor;
  /** self_attn.k_proj [G·D, C] */
  k: Tensor;
  /** self_attn.v_proj [G·D, C] */
  v: Tensor;
  /** self_attn.o_proj [C, H·D] */
  o: Tensor;
  /** self_attn.q_norm [D] (Qwen3) */
  qNorm?: Tensor;
  /** self_attn.k_norm [D] (Qwen3) */
  kNorm?: Tensor;
  /** self_attn.q_proj.bias as [1, H·D] (Qwen2) */
  qBias?: Tensor;
  /** self_attn.k_proj.bias as [1, G·D] (Qwen2) */
  kBias?: Tensor;
  /** self_attn.v_proj.bias as [1, G·D] (Qwen2) */
  vBias?: Tensor;
  /** post_attention_layernorm [C] */
  postNorm: Tensor;
  /** mlp.gate_proj [F, C] */
  gate: Tensor;
  /** mlp.up_proj [F, C] */
  up: Tensor;
  /** mlp.down_proj [C, F] */
  down: Tensor;
}

/** Base weights of one stage. */
export interface StageWeights {
  /** model.embed_tokens [V, C] (first stage). */
  embed?: Tensor;
  /** Layers first..last−1, in order. */
  layers: LayerWeights[];
  /** model.norm [C] (last stage). */
  finalNorm?: Tensor;
  /** lm_head [V, C], or embed_tokens when tied (last stage). */
  lmHead?: Tensor;
}

/**
 * Host tensors by Hugging Face name: float32, or 16-bit bits (an F16 or BF16
 * checkpoint's weights, kept as they are).
 */
export type NamedTensors = Map<
  string,
  { shape: number[]; data: Float32Array | HalfBits }
>;

/** Split `numLayers` into `shards` contiguous ranges, as even as possible. */
export function splitLayers(numLayers: number, shards: number): StageRange[] {
  const n = Math.max(1, Math.min(shards, numLayers));
  const out: StageRange[] = [];
  let first = 0;
  for (let s = 0; s < n; s++) {
    const count = Math.floor(numLayers / n) + (s < numLayers % n ? 1 : 0);
    out.push({ first, last: first + count, embed: s === 0, head: s === n - 1 });
    first += count;
  }
  return out;
}

/** Upload the tensors a stage needs from a model's named host tensors. */
export function uploadStage(
  be: Backend,
  cfg: LlamaConfig,
  tensors: NamedTensors,
  range: StageRange,
): StageWeights {
  const host = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`model tensor ${name} is missing`);
    return t;
  };
  // A weight matrix stays in 16 bits when it came so (linear and embedding
  // compute from it); norm gains and biases are small and go up as f32.
  const get = (name: string): Tensor => {
    const t = host(name);
    return t.data instanceof Float32Array
      ? be.fromArray(t.data, t.shape)
      : be.fromHalf(t.data, t.shape);
  };
  const f32 = (name: string, shape?: number[]): Tensor => {
    const t = host(name);
    const data = t.data instanceof Float32Array ? t.data : halfToF32(t.data);
    return be.fromArray(data, shape ?? t.shape);
  };
  // A bias is kept as one row, so that adding it to every row is a product
  // with a column of ones.
  const row = (name: string): Tensor => {
    const t = host(name);
    return f32(name, [1, t.shape.reduce((a, b) => a * b, 1)]);
  };
  const layers: LayerWeights[] = [];
  for (let l = range.first; l < range.last; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      inputNorm: f32(p + "input_layernorm.weight"),
      q: get(p + "self_attn.q_proj.weight"),
      k: get(p + "self_attn.k_proj.weight"),
      v: get(p + "self_attn.v_proj.weight"),
      o: get(p + "self_attn.o_proj.weight"),
      ...(cfg.qkNorm
        ? {
          qNorm: f32(p + "self_attn.q_norm.weight"),
          kNorm: f32(p + "self_attn.k_norm.weight"),
        }
        : {}),
      ...(cfg.qkvBias
        ? {
          qBias: row(p + "self_attn.q_proj.bias"),
          kBias: row(p + "self_attn.k_proj.bias"),
          vBias: row(p + "self_attn.v_proj.bias"),
        }
        : {}),
      postNorm: f32(p + "post_attention_layernorm.weight"),
      gate: get(p + "mlp.gate_proj.weight"),
      up: get(p + "mlp.up_proj.weight"),
      down: get(p + "mlp.down_proj.weight"),
    });
  }
  const w: StageWeights = { layers };
  if (range.embed) w.embed = get("model.embed_tokens.weight");
  if (range.head) {
    w.finalNorm = f32("model.norm.weight");
    w.lmHead = cfg.tieWordEmbeddings
      ? get("model.embed_tokens.weight")
      : get("lm_head.weight");
  }
  return w;
}

/** Release a stage's tensors. */
export function freeStage(be: Backend, w: StageWeights): void {
  for (const l of w.layers) {
    for (const t of Object.values(l)) if (t) be.free(t);
  }
  for (const t of [w.embed, w.finalNorm, w.lmHead]) if (t) be.free(t);
}
