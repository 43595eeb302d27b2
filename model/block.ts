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
import type {
  AttentionDims,
  Backend,
  LinearResult,
  Tensor,
} from "../kernels/backend.ts";
import type { LlamaConfig } from "./config.ts";
import type { LoraSet } from "./lora.ts";
import type { LayerWeights } from "./stage_weights.ts";

/** Activations a layer keeps for its backward pass. */
export interface BlockActivations {
  x: Tensor;
  xn: Tensor;
  rstd1: Tensor;
  q: LinearResult;
  k: LinearResult;
  v: LinearResult;
  qr: Tensor;
  kr: Tensor;
  att: Tensor;
  lse: Tensor;
  o: LinearResult;
  x1: Tensor;
  hn: Tensor;
  rstd2: Tensor;
  g: LinearResult;
  u: LinearResult;
  a: Tensor;
  d: LinearResult;
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
): { y: Tensor; acts: BlockActivations } {
  const p = prefix(l);
  const H = cfg.numHeads, G = cfg.numKvHeads, D = cfg.headDim;
  const offset = cache?.offset ?? 0;
  const { y: xn, rstd: rstd1 } = be.rmsNorm(x, w.inputNorm, cfg.rmsNormEps);
  const q = be.linear(xn, w.q, lora?.weights(p + "self_attn.q_proj"));
  const k = be.linear(xn, w.k, lora?.weights(p + "self_attn.k_proj"));
  const v = be.linear(xn, w.v, lora?.weights(p + "self_attn.v_proj"));
  const ropeDims = {
    seqLen: rows.seqLen,
    headDim: D,
    offset,
    theta: cfg.ropeTheta,
  };
  const qr = be.rope(q.y, { ...ropeDims, heads: H });
  const kr = be.rope(k.y, { ...ropeDims, heads: G });
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
  const o = be.linear(attn.out, w.o, lora?.weights(p + "self_attn.o_proj"));
  const x1 = be.add(x, o.y);
  const { y: hn, rstd: rstd2 } = be.rmsNorm(x1, w.postNorm, cfg.rmsNormEps);
  const g = be.linear(hn, w.gate, lora?.weights(p + "mlp.gate_proj"));
  const u = be.linear(hn, w.up, lora?.weights(p + "mlp.up_proj"));
  const a = be.swiglu(g.y, u.y);
  const d = be.linear(a, w.down, lora?.weights(p + "mlp.down_proj"));
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
  const gd = be.linearBackward(
    dy,
    acts.a,
    w.down,
    lora?.weights(down),
    acts.d.xa,
  );
  lora?.accumulate(down, gd.da, gd.db);
  const { dgate, dup } = be.swigluBackward(gd.dx, acts.g.y, acts.u.y);
  const gate = p + "mlp.gate_proj", up = p + "mlp.up_proj";
  const gg = be.linearBackward(
    dgate,
    acts.hn,
    w.gate,
    lora?.weights(gate),
    acts.g.xa,
  );
  lora?.accumulate(gate, gg.da, gg.db);
  const gu = be.linearBackward(
    dup,
    acts.hn,
    w.up,
    lora?.weights(up),
    acts.u.xa,
  );
  lora?.accumulate(up, gu.da, gu.db);
  const dhn = be.add(gg.dx, gu.dx);
  const n2 = be.rmsNormBackward(dhn, acts.x1, w.postNorm, acts.rstd2);
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
    n2.dw,
  ]);

  // Attention branch: x1 = x + o_proj(att), so dx = dx1 + rmsnorm'(d xn).
  const oName = p + "self_attn.o_proj";
  const go = be.linearBackward(
    dx1,
    acts.att,
    w.o,
    lora?.weights(oName),
    acts.o.xa,
  );
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
  };
  const dq = be.rope(ga.dq, { ...ropeDims, heads: H }, true);
  const dk = be.rope(ga.dk, { ...ropeDims, heads: G }, true);
  const qName = p + "self_attn.q_proj",
    kName = p + "self_attn.k_proj",
    vName = p + "self_attn.v_proj";
  const gq = be.linearBackward(
    dq,
    acts.xn,
    w.q,
    lora?.weights(qName),
    acts.q.xa,
  );
  lora?.accumulate(qName, gq.da, gq.db);
  const gk = be.linearBackward(
    dk,
    acts.xn,
    w.k,
    lora?.weights(kName),
    acts.k.xa,
  );
  lora?.accumulate(kName, gk.da, gk.db);
  const gv = be.linearBackward(
    ga.dv,
    acts.xn,
    w.v,
    lora?.weights(vName),
    acts.v.xa,
  );
  lora?.accumulate(vName, gv.da, gv.db);
  const dqk = be.add(gq.dx, gk.dx);
  const dxn = be.add(dqk, gv.dx);
  const n1 = be.rmsNormBackward(dxn, acts.x, w.inputNorm, acts.rstd1);
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
    gq.dx,
    gq.da,
    gq.db,
    gk.dx,
    gk.da,
    gk.db,
  ]);
  freeAll(be, [gv.dx, gv.da, gv.db, dqk, dxn, n1.dx, n1.dw]);
  freeActivations(be, acts);
  return dx;
}

/** Free a layer's saved activations (all but its input x, which the caller owns). */
export function freeActivations(be: Backend, a: BlockActivations): void {
  freeAll(be, [
    a.xn,
    a.rstd1,
    a.q.y,
    a.q.xa,
    a.k.y,
    a.k.xa,
    a.v.y,
    a.v.xa,
    a.qr,
    a.kr,
    a.att,
    a.lse,
  ]);
  freeAll(be, [
    a.o.y,
    a.o.xa,
    a.x1,
    a.hn,
    a.rstd2,
    a.g.y,
    a.g.xa,
    a.u.y,
    a.u.xa,
    a.a,
    a.d.y,
    a.d.xa,
  ]);
}

/** Free every defined tensor in the list. */
export function freeAll(be: Backend, ts: (Tensor | undefined)[]): void {
  for (const t of ts) if (t) be.free(t);
}
