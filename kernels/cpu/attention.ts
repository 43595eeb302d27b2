/**
 * Causal scaled-dot-product attention with grouped-query heads (GQA).
 *
 * Shapes: q, out [B·Tq, H·D]; k, v [B·S, G·D] where S = kvRows ≥ Tk (rows of a
 * sequence beyond Tk are ignored); lse [B·H·Tq], indexed ((b·H + h)·Tq + i).
 * Query head h reads key/value head g = floor(h / (H/G)).
 * Query i of a sequence sits at position Tk − Tq + i and sees keys 0 … that.
 *
 * Forward, per (b, h, i), with s_j = scale · q·k_j, scale = 1/sqrt(D):
 *   lse = log Σ_j exp(s_j);  p_j = exp(s_j − lse);  out = Σ_j p_j v_j
 * Sums run over j = 0, 1, … in float64.
 *
 * @module
 */

import type { AttentionDims } from "../backend.ts";
import { fmtShape, ShapeError } from "./shape_error.ts";

/** Attention dimensions (see the module doc). */
export interface AttnDims {
  /** B */
  batch: number;
  /** Tq */
  tq: number;
  /** Tk */
  tk: number;
  /** S: stored rows per sequence in k and v. */
  kvRows: number;
  /** H */
  heads: number;
  /** G */
  kvHeads: number;
  /** D */
  headDim: number;
}

/** Fills out and lse. */
export function attentionForward(
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dims: AttnDims,
): void {
  const { batch, tq, tk, kvRows, heads, kvHeads, headDim: d } = dims;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(d);
  const qw = heads * d; // row width of q and out
  const kw = kvHeads * d; // row width of k and v
  const s = new Float64Array(tk); // scores of one query row
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < tq; i++) {
        const qo = (b * tq + i) * qw + h * d;
        const last = tk - tq + i; // last visible key
        // pass 1: scores and their max
        let max = -Infinity;
        for (let j = 0; j <= last; j++) {
          const ko = (b * kvRows + j) * kw + g * d;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
          s[j] = dot * scale;
          if (s[j] > max) max = s[j];
        }
        // pass 2: normalizer
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += Math.exp(s[j] - max);
        const l = max + Math.log(sum);
        lse[(b * heads + h) * tq + i] = l;
        // pass 3: weighted sum of values
        acc.fill(0);
        for (let j = 0; j <= last; j++) {
          const p = Math.exp(s[j] - l);
          const vo = (b * kvRows + j) * kw + g * d;
          for (let c = 0; c < d; c++) acc[c] += p * v[vo + c];
        }
        for (let c = 0; c < d; c++) out[qo + c] = acc[c];
      }
    }
  }
}

/**
 * Fills dq, dk, dv (dk, dv shaped as k, v; rows ≥ Tk stay zero). Accumulation
 * into dk and dv runs in the order b, h, i, j.
 *
 * forward: p_j = exp(s_j − lse), out = Σ_j p_j v_j, s_j = scale · q·k_j
 *   dv_j += p_j · dout
 *   dp_j  = dout · v_j
 *   ds_j  = p_j (dp_j − Σ_l p_l dp_l) = p_j (dp_j − dout·out)
 *   dq   += scale · ds_j k_j;   dk_j += scale · ds_j q
 */
export function attentionBackward(
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  dims: AttnDims,
): void {
  const { batch, tq, tk, kvRows, heads, kvHeads, headDim: d } = dims;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(d);
  const qw = heads * d;
  const kw = kvHeads * d;
  const dkAcc = new Float64Array(dk.length);
  const dvAcc = new Float64Array(dv.length);
  const dqAcc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      for (let i = 0; i < tq; i++) {
        const qo = (b * tq + i) * qw + h * d;
        const last = tk - tq + i;
        const l = lse[(b * heads + h) * tq + i];
        // D = dout · out = Σ_j p_j dp_j
        let dsum = 0;
        for (let c = 0; c < d; c++) dsum += dout[qo + c] * out[qo + c];
        dqAcc.fill(0);
        for (let j = 0; j <= last; j++) {
          const ko = (b * kvRows + j) * kw + g * d;
          let dot = 0;
          let dp = 0;
          for (let c = 0; c < d; c++) {
            dot += q[qo + c] * k[ko + c];
            dp += dout[qo + c] * v[ko + c];
          }
          const p = Math.exp(dot * scale - l);
          const ds = p * (dp - dsum) * scale;
          for (let c = 0; c < d; c++) {
            dvAcc[ko + c] += p * dout[qo + c];
            dkAcc[ko + c] += ds * q[qo + c];
            dqAcc[c] += ds * k[ko + c];
          }
        }
        for (let c = 0; c < d; c++) dq[qo + c] = dqAcc[c];
      }
    }
  }
  for (let x = 0; x < dk.length; x++) dk[x] = dkAcc[x];
  for (let x = 0; x < dv.length; x++) dv[x] = dvAcc[x];
}

/**
 * Checks attention dimensions against the shapes of q, k, v and fills in
 * kvRows (default Tk); throws {@linkcode ShapeError} naming `op` and the field.
 * Backends that replace the math (the native backend) share these checks.
 */
export function attnDimsOf(
  op: string,
  qShape: readonly number[],
  kShape: readonly number[],
  vShape: readonly number[],
  dims: AttentionDims,
): AttnDims {
  const kvRows = dims.kvRows ?? dims.tk;
  const positive = (name: string, x: number): void => {
    if (!Number.isInteger(x) || x < 1) {
      throw new ShapeError(op, `${name} must be a positive integer: got ${x}`);
    }
  };
  for (
    const f of ["batch", "tq", "tk", "heads", "kvHeads", "headDim"] as const
  ) {
    positive(f, dims[f]);
  }
  positive("kvRows", kvRows);
  const { batch, tq, tk, heads, kvHeads, headDim } = dims;
  if (heads % kvHeads !== 0) {
    throw new ShapeError(
      op,
      `heads (${heads}) must be a multiple of kvHeads (${kvHeads})`,
    );
  }
  if (tk < tq || kvRows < tk) {
    throw new ShapeError(
      op,
      `need tq ≤ tk ≤ kvRows: got tq ${tq}, tk ${tk}, kvRows ${kvRows}`,
    );
  }
  const want: [string, readonly number[], number[]][] = [
    ["q", qShape, [batch * tq, heads * headDim]],
    ["k", kShape, [batch * kvRows, kvHeads * headDim]],
    ["v", vShape, [batch * kvRows, kvHeads * headDim]],
  ];
  for (const [name, got, shape] of want) {
    if (got.length !== 2 || got[0] !== shape[0] || got[1] !== shape[1]) {
      throw new ShapeError(
        op,
        `${name} must be ${fmtShape(shape)}: got ${fmtShape(got)}`,
      );
    }
  }
  return { batch, tq, tk, kvRows, heads, kvHeads, headDim };
}
