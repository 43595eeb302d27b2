/**
 * A pipeline stage: a contiguous range of decoder layers, with the embedding
 * when it is first and the final norm, LM head and target log-probabilities
 * when it is last. Stages chain: the first takes token ids, the rest take the
 * hidden state [N,C] of the stage before; the last returns logprobs [N] of the
 * target tokens. Backward runs in reverse, from dL/dlogprobs to dL/dx.
 *
 * @module
 */
import type { Backend, Tensor } from "../kernels/backend.ts";
import {
  freeLinear,
  loraLinear,
  loraLinearBackward,
  type LoraLinearResult,
} from "./lora_linear.ts";
import {
  type BlockActivations,
  blockBackward,
  blockForward,
  freeActivations,
  freeAll,
  FROZEN_NORM,
  type LayerCache,
  type RowShape,
} from "./block.ts";
import type { LlamaConfig } from "./config.ts";
import type { LoraSet } from "./lora.ts";
import type { StageRange, StageWeights } from "./stage_weights.ts";

/** What a stage keeps from a forward pass for its backward pass. */
export interface StageContext {
  rows: RowShape;
  /** The stage's input hidden state (or the embedded tokens on the first stage). */
  x0: Tensor;
  layers: BlockActivations[];
  /** Head state (last stage only). */
  head?: {
    xl: Tensor;
    hn: Tensor;
    rstd: Tensor;
    logits: LoraLinearResult;
    targets: Tensor;
    lse: Tensor;
  };
  /** Token ids (first stage only). */
  ids?: Tensor;
}

/** Output of {@linkcode Stage.forward}. */
export interface StageOutput {
  /** Hidden state [N,C] for the next stage, or target logprobs [N] on the last. */
  out: Tensor;
  /** Saved activations; pass to `backward`, or to `release` when no backward follows. */
  ctx: StageContext;
}

/** One pipeline stage of a Llama model with optional LoRA adapters. */
export class Stage {
  /** Make a stage from uploaded weights. */
  constructor(
    readonly be: Backend,
    readonly cfg: LlamaConfig,
    readonly range: StageRange,
    readonly weights: StageWeights,
    public lora?: LoraSet,
  ) {}

  /** Embed token ids (i32 [N]) into [N,C] (first stage only). */
  embed(ids: Tensor): Tensor {
    if (!this.weights.embed) throw new Error("this stage has no embedding");
    return this.be.embedding(this.weights.embed, ids);
  }

  /**
   * Forward pass. `input` is token ids (i32 [N]) on the first stage, the hidden
   * state [N,C] otherwise; `targets` (i32 [N]) are required on the last stage.
   * The stage takes ownership of `input`. `dropoutKey` turns on the adapter's
   * dropout (training), drawing masks from that key.
   */
  forward(
    input: Tensor,
    rows: RowShape,
    targets?: Tensor,
    dropoutKey?: number,
  ): StageOutput {
    const be = this.be;
    let x = input;
    const ctx: StageContext = { rows, x0: input, layers: [] };
    if (this.range.embed) {
      ctx.ids = input;
      x = this.embed(input);
      ctx.x0 = x;
    }
    for (let i = 0; i < this.weights.layers.length; i++) {
      const l = this.range.first + i;
      const { y, acts } = blockForward(
        be,
        this.cfg,
        l,
        this.weights.layers[i],
        this.lora,
        x,
        rows,
        undefined,
        dropoutKey,
      );
      ctx.layers.push(acts);
      x = y;
    }
    if (!this.range.head) return { out: x, ctx };
    if (!targets) throw new Error("the last stage needs target tokens");
    const { y: hn, rstd } = be.rmsNorm(
      x,
      this.weights.finalNorm!,
      this.cfg.rmsNormEps,
    );
    const logits = loraLinear(
      be,
      hn,
      this.weights.lmHead!,
      this.lora,
      "lm_head",
      dropoutKey,
    );
    const { logprobs, lse } = be.logSoftmaxGather(logits.y, targets);
    ctx.head = { xl: x, hn, rstd, logits, targets, lse };
    return { out: logprobs, ctx };
  }

  /**
   * Backward pass from dL/d(output): dlogprobs [N] on the last stage, dL/dx [N,C]
   * otherwise. Accumulates LoRA gradients, frees the context, and returns dL/d
   * input [N,C] (undefined on the first stage, whose input is token ids).
   */
  backward(ctx: StageContext, dout: Tensor): Tensor | undefined {
    const be = this.be;
    let dx = dout;
    if (ctx.head) {
      const h = ctx.head;
      const dlogits = be.logSoftmaxGatherBackward(
        dout,
        h.logits.y,
        h.targets,
        h.lse,
      );
      const g = loraLinearBackward(
        be,
        dlogits,
        h.hn,
        this.weights.lmHead!,
        this.lora,
        "lm_head",
        h.logits,
      );
      this.lora?.accumulate("lm_head", g.da, g.db);
      const n = be.rmsNormBackward(
        g.dx,
        h.xl,
        this.weights.finalNorm!,
        h.rstd,
        FROZEN_NORM,
      );
      dx = n.dx;
      freeAll(be, [
        dlogits,
        g.dx,
        g.da,
        g.db,
        h.hn,
        h.rstd,
        h.lse,
        h.targets,
      ]);
      freeLinear(be, h.logits);
    }
    for (let i = ctx.layers.length - 1; i >= 0; i--) {
      const l = this.range.first + i;
      const acts = ctx.layers[i];
      const dprev = blockBackward(
        be,
        this.cfg,
        l,
        this.weights.layers[i],
        this.lora,
        acts,
        dx,
        ctx.rows,
      );
      if (dx !== dout) be.free(dx);
      // The layer's input is the previous layer's output (or x0): free it once used.
      if (acts.x !== ctx.x0) be.free(acts.x);
      dx = dprev;
    }
    if (ctx.head && ctx.head.xl !== ctx.x0) be.free(ctx.head.xl);
    be.free(ctx.x0);
    if (ctx.ids) {
      be.free(ctx.ids);
      if (dx !== dout) be.free(dx);
      return undefined;
    }
    return dx;
  }

  /** Free a context without running backward (forward-only passes). */
  release(ctx: StageContext): void {
    const be = this.be;
    for (const acts of ctx.layers) {
      freeActivations(be, acts);
      if (acts.x !== ctx.x0) be.free(acts.x);
    }
    if (ctx.head) {
      const h = ctx.head;
      freeAll(be, [h.hn, h.rstd, h.lse, h.targets]);
      freeLinear(be, h.logits);
      if (h.xl !== ctx.x0) be.free(h.xl);
    }
    be.free(ctx.x0);
    if (ctx.ids) be.free(ctx.ids);
  }

  /**
   * Generation step over this stage's layers with a KV cache: `input` is token
   * ids (first stage) or hidden state; returns hidden state, or logits [B,V] of
   * each sequence's last row on the last stage. Frees a hidden-state `input`;
   * token ids stay the caller's.
   */
  decode(
    input: Tensor,
    rows: RowShape,
    caches: LayerCache[],
    offset: number,
  ): Tensor {
    const be = this.be;
    let x = this.range.embed ? this.embed(input) : input;
    for (let i = 0; i < this.weights.layers.length; i++) {
      const l = this.range.first + i;
      const cache = { layer: caches[i], offset };
      const { y, acts } = blockForward(
        be,
        this.cfg,
        l,
        this.weights.layers[i],
        this.lora,
        x,
        rows,
        cache,
      );
      freeActivations(be, acts);
      be.free(x);
      x = y;
    }
    if (!this.range.head) return x;
    const last = rows.seqLen === 1 ? x : lastRows(be, x, rows);
    if (last !== x) be.free(x);
    const { y: hn, rstd } = be.rmsNorm(
      last,
      this.weights.finalNorm!,
      this.cfg.rmsNormEps,
    );
    const logits = be.linear(
      hn,
      this.weights.lmHead!,
      this.lora?.weights("lm_head"),
    );
    freeAll(be, [last, hn, rstd, logits.xa]);
    return logits.y;
  }

  /** Allocate empty KV caches for this stage's layers: B sequences × capacity rows. */
  newCaches(batch: number, capacity: number): LayerCache[] {
    const width = this.cfg.numKvHeads * this.cfg.headDim;
    return this.weights.layers.map(() => ({
      k: this.be.zeros([batch * capacity, width]),
      v: this.be.zeros([batch * capacity, width]),
      capacity,
    }));
  }
}

/** The last row of each sequence of x [B·T, C], as [B, C]. */
function lastRows(be: Backend, x: Tensor, rows: RowShape): Tensor {
  // Gather rows (b·T + T−1) with the embedding op: x plays the table.
  const idx = new Int32Array(rows.batch);
  for (let b = 0; b < rows.batch; b++) {
    idx[b] = b * rows.seqLen + rows.seqLen - 1;
  }
  const ids = be.fromInts(idx, [rows.batch]);
  const out = be.embedding(x, ids);
  be.free(ids);
  return out;
}
