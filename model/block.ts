/**
 * One Llama decoder layer, forward and backward, composed from Backend ops.
 *
 * Legend: N = B·T rows, C width, H query heads, G kv heads, D head dim, F MLP width.
 *
 *   xn  = rmsnorm(x) · w_in                      [N,C]
 *   q,k,v = linear(xn, Wq|Wk|Wv (+LoRA))         [N,H·D], [N,G·D]
 *   qr, kr = rope(q), rope(k)
 *   att = causal_gqa_attention(qr, kr, v)        [N,H·D]
 *   x1  = x + linear(att, Wo (+LoRA))
 *   hn  = rmsnorm(x1) · w_post
 *   g,u = linear(hn, Wg|Wu (+LoRA))              [N,F]
 *   x2  = x1 + linear(silu(g)·u, Wd (+LoRA))
 *
 * @module
 */
import type { AttentionDims, Backend, Tensor } from "../kernels/backend.ts";
import {
  freeLinear,
  loraLinear,
  loraLinearBackward,
  type LoraLinearResult,
} from "./lora_linear.ts";
import type { LlamaConfig } from "./config.ts";
import type { LoraSet } from "./lora.ts";
import type { LayerWeights } from "./stage_weights.ts";

/**
 * The norms' weights are frozen (LoRA adapts the linear layers only), so
 * their gradient is never asked for.
 */
export const FROZEN_NORM = { weightGrad: false } as const;

/** Activations a layer keeps for its backward pass. */
export interface BlockActivations {
  x: Tensor;
  xn: Tensor;
  rstd1: Tensor;
  q: LoraLinearResult;
  k: LoraLinearResult;
  v: LoraLinearResult;
  /** Qwen3: q and k after their per-head RMSNorm (what RoPE rotated). */
  qn?: { y: Tensor; rstd: Tensor };
  kn?: { y: Tensor; rstd: Tensor };
  qr: Tensor;
  kr: Tensor;
  att: Tensor;
  lse: Tensor;
  o: LoraLinearResult;
  x1: Tensor;
  hn: Tensor;
  rstd2: Tensor;
  g: LoraLinearResult;
  u: LoraLinearResult;
  a: Tensor;
  d: LoraLinearResult;
}

/** Shape of the rows being processed: B sequences of T tokens each. */
export interface RowShape {
  batch: number;
  seqLen: number;
}

/** A layer's KV cache for generation: k, v [B·capacity, G·D]. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
  capacity: number;
}

/** HF module path prefix of layer l. */
function prefix(l: number): string {
  return `model.layers.${l}.`;
}

/**
 * Forward through layer `l`. With `cache`, the new rows' keys and values are
 * written at `offset` and attention runs over the cache (generation); the
 * returned activations are then not meant for backward.
 */
export function blockForward(
  be: Backend,
  cfg: LlamaConfig,
  l: number,
  w: LayerWeights,
  lora: LoraSet | undefined,
  x: Tensor,
  rows: RowShape,
  cache?: { layer: LayerCache; offset: number },
  dropoutKey?: number,
): { y: Tensor; acts: BlockActivations } {
  const p = prefix(l);
  const H = cfg.numHeads, G = cfg.numKvHeads, D = cfg.headDim;
  const offset = cache?.offset ?? 0;
  const { y: xn, rstd: rstd1 } = be.rmsNorm(x, w.inputNorm, cfg.rmsNormEps);
  const q = loraLinear(be, xn, w.q, lora, p + "self_attn.q_proj", dropoutKey);
  const k = loraLinear(be, xn, w.k, lora, p + "self_attn.k_proj", dropoutKey);
  const v = loraLinear(be, xn, w.v, lora, p + "self_attn.v_proj", dropoutKey);
  // Qwen2's q/k/v biases (frozen: the backward does not see them).
  if (w.qBias && w.kBias && w.vBias) {
    const ones = be.fromArray(
      new Float32Array(rows.batch * rows.seqLen).fill(1),
      [
        rows.batch * rows.seqLen,
        1,
      ],
    );
    for (const [r, b] of [[q, w.qBias], [k, w.kBias], [v, w.vBias]] as const) {
      be.gemm(ones, b, { beta: 1, out: r.y }); // y += 1·b on every row
    }
    be.free(ones);
  }
  const ropeDims = {
    seqLen: rows.seqLen,
    headDim: D,
    offset,
    theta: cfg.ropeTheta,
    scaling: cfg.ropeScaling,
  };
  // Qwen3 normalizes each head of q and k before rotating it.
  const qn = w.qNorm ? be.rmsNorm(q.y, w.qNorm, cfg.rmsNormEps) : undefined;
  const kn = w.kNorm ? be.rmsNorm(k.y, w.kNorm, cfg.rmsNormEps) : undefined;
  const qr = be.rope(qn?.y ?? q.y, { ...ropeDims, heads: H });
  const kr = be.rope(kn?.y ?? k.y, { ...ropeDims, heads: G });
  let attn: { out: Tensor; lse: Tensor };
  if (cache) {
    const wr = { batch: rows.batch, rows: cache.layer.capacity, start: offset };
    be.writeRows(cache.layer.k, kr, wr);
    be.writeRows(cache.layer.v, v.y, wr);
    attn = be.attention(qr, cache.layer.k, cache.layer.v, {
      batch: rows.batch,
      tq: rows.seqLen,
      tk: offset + rows.seqLen,
      kvRows: cache.layer.capacity,
      heads: H,
      kvHeads: G,
      headDim: D,
    });
  } else {
    attn = be.attention(qr, kr, v.y, attentionDims(cfg, rows));
  }
  const o = loraLinear(
    be,
    attn.out,
    w.o,
    lora,
    p + "self_attn.o_proj",
    dropoutKey,
  );
  const x1 = be.add(x, o.y);
  const { y: hn, rstd: rstd2 } = be.rmsNorm(x1, w.postNorm, cfg.rmsNormEps);
  const g = loraLinear(be, hn, w.gate, lora, p + "mlp.gate_proj", dropoutKey);
  const u = loraLinear(be, hn, w.up, lora, p + "mlp.up_proj", dropoutKey);
  const a = be.swiglu(g.y, u.y);
  const d = loraLinear(be, a, w.down, lora, p + "mlp.down_proj", dropoutKey);
  const y = be.add(x1, d.y);
  return {
    y,
    acts: {
      x,
      xn,
      rstd1,
      q,
      k,
      v,
      qn,
      kn,
      qr,
      kr,
      att: attn.out,
      lse: attn.lse,
      o,
      x1,
      hn,
      rstd2,
      g,
      u,
      a,
      d,
    },
  };
}

/** Attention dims for full (non-cached) sequences. */
export function attentionDims(cfg: LlamaConfig, rows: RowShape): AttentionDims {
  return {
    batch: rows.batch,
    tq: rows.seqLen,
    tk: rows.seqLen,
    heads: cfg.numHeads,
    kvHeads: cfg.numKvHeads,
    headDim: cfg.headDim,
  };
}

/**
 * Backward through layer `l`: given dL/dy, accumulate LoRA gradients into
 * `lora` and return dL/dx. Frees the layer's activations except `acts.x`.
 */
export function blockBackward(
  be: Backend,
  cfg: LlamaConfig,
  l: number,
  w: LayerWeights,
  lora: LoraSet | undefined,
  acts: BlockActivations,
  dy: Tensor,
  rows: RowShape,
): Tensor {
  const p = prefix(l);
  const H = cfg.numHeads, G = cfg.numKvHeads, D = cfg.headDim;
  // MLP branch: y = x1 + down(silu(g)·u), so dx1 = dy + rmsnorm'(d hn).
  const down = p + "mlp.down_proj";
  const gd = loraLinearBackward(be, dy, acts.a, w.down, lora, down, acts.d);
  lora?.accumulate(down, gd.da, gd.db);
  const { dgate, dup } = be.swigluBackward(gd.dx, acts.g.y, acts.u.y);
  const gate = p + "mlp.gate_proj", up = p + "mlp.up_proj";
  const gg = loraLinearBackward(be, dgate, acts.hn, w.gate, lora, gate, acts.g);
  lora?.accumulate(gate, gg.da, gg.db);
  const gu = loraLinearBackward(be, dup, acts.hn, w.up, lora, up, acts.u);
  lora?.accumulate(up, gu.da, gu.db);
  const dhn = be.add(gg.dx, gu.dx);
  const n2 = be.rmsNormBackward(
    dhn,
    acts.x1,
    w.postNorm,
    acts.rstd2,
    FROZEN_NORM,
  );
  const dx1 = be.add(dy, n2.dx);
  freeAll(be, [
    gd.dx,
    gd.da,
    gd.db,
    dgate,
    dup,
    gg.dx,
    gg.da,
    gg.db,
    gu.dx,
    gu.da,
    gu.db,
    dhn,
    n2.dx,
  ]);

  // Attention branch: x1 = x + o_proj(att), so dx = dx1 + rmsnorm'(d xn).
  const oName = p + "self_attn.o_proj";
  const go = loraLinearBackward(be, dx1, acts.att, w.o, lora, oName, acts.o);
  lora?.accumulate(oName, go.da, go.db);
  const ga = be.attentionBackward(
    go.dx,
    acts.qr,
    acts.kr,
    acts.v.y,
    acts.att,
    acts.lse,
    attentionDims(cfg, rows),
  );
  const ropeDims = {
    seqLen: rows.seqLen,
    headDim: D,
    offset: 0,
    theta: cfg.ropeTheta,
    scaling: cfg.ropeScaling,
  };
  const dqn = be.rope(ga.dq, { ...ropeDims, heads: H }, true);
  const dkn = be.rope(ga.dk, { ...ropeDims, heads: G }, true);
  // Through Qwen3's frozen per-head norms, back to the projections' outputs.
  const dq = acts.qn
    ? be.rmsNormBackward(dqn, acts.q.y, w.qNorm!, acts.qn.rstd, FROZEN_NORM)
      .dx
    : dqn;
  const dk = acts.kn
    ? be.rmsNormBackward(dkn, acts.k.y, w.kNorm!, acts.kn.rstd, FROZEN_NORM)
      .dx
    : dkn;
  const qName = p + "self_attn.q_proj",
    kName = p + "self_attn.k_proj",
    vName = p + "self_attn.v_proj";
  const gq = loraLinearBackward(be, dq, acts.xn, w.q, lora, qName, acts.q);
  lora?.accumulate(qName, gq.da, gq.db);
  const gk = loraLinearBackward(be, dk, acts.xn, w.k, lora, kName, acts.k);
  lora?.accumulate(kName, gk.da, gk.db);
  const gv = loraLinearBackward(be, ga.dv, acts.xn, w.v, lora, vName, acts.v);
  lora?.accumulate(vName, gv.da, gv.db);
  const dqk = be.add(gq.dx, gk.dx);
  const dxn = be.add(dqk, gv.dx);
  const n1 = be.rmsNormBackward(
    dxn,
    acts.x,
    w.inputNorm,
    acts.rstd1,
    FROZEN_NORM,
  );
  const dx = be.add(dx1, n1.dx);
  freeAll(be, [
    dx1,
    go.dx,
    go.da,
    go.db,
    ga.dq,
    ga.dk,
    ga.dv,
    dq,
    dk,
    dq === dqn ? undefined : dqn,
    dk === dkn ? undefined : dkn,
    gq.dx,
    gq.da,
    gq.db,
    gk.dx,
    gk.da,
    gk.db,
  ]);
  freeAll(be, [gv.dx, gv.da, gv.db, dqk, dxn, n1.dx]);
  freeActivations(be, acts);
  return dx;
}

/** Free a layer's saved activations (all but its input x, which the caller owns). */
export function freeActivations(be: Backend, a: BlockActivations): void {
  for (const r of [a.q, a.k, a.v, a.o, a.g, a.u, a.d]) freeLinear(be, r);
  freeAll(be, [
    a.qn?.y,
    a.qn?.rstd,
    a.kn?.y,
    a.kn?.rstd,
    a.xn,
    a.rstd1,
    a.qr,
    a.kr,
    a.att,
    a.lse,
    a.x1,
    a.hn,
    a.rstd2,
    a.a,
  ]);
}

/** Free every defined tensor in the list. */
export function freeAll(be: Backend, ts: (Tensor | undefined)[]): void {
  for (const t of ts) if (t) be.free(t);
}
