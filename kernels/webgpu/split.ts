/**
 * Work on tensors split over several buffers (see `layout.ts`): copying a
 * rectangle of a split tensor into one buffer and back, and the matrix
 * product over split operands as a sum of products of tiles.
 *
 * @module
 */

import type { Binding, GpuContext } from "./context.ts";
import { boundaries } from "./layout.ts";
import { grid } from "./shaders/grid.ts";
import { COPY_2D } from "./shaders/split.ts";
import type { GpuTensor } from "./tensor.ts";

/** A rectangle of a tensor's matrix view, bindable as one buffer. */
export interface Tile {
  /** The binding (a whole block, or a temporary copy). */
  binding: Binding;
  /** The temporary buffer when the rectangle was copied (release it after use). */
  temp?: GPUBuffer;
}

/** Rows [r0, r1) × columns [c0, c1) of a tensor's matrix view. */
export interface Rect {
  /** First row. */
  r0: number;
  /** One past the last row. */
  r1: number;
  /** First column. */
  c0: number;
  /** One past the last column. */
  c1: number;
}

/**
 * The rectangle `r` of `t` as one binding: a whole block when `r` is exactly
 * one (or the whole unsplit tensor), else a temporary row-major copy.
 */
export function tileOf(ctx: GpuContext, t: GpuTensor, r: Rect): Tile {
  const blocks = t.blocks();
  if (!t.split) {
    if (
      r.r0 === 0 && r.c0 === 0 && r.r1 === t.layout.rows &&
      r.c1 === t.layout.cols
    ) {
      return { binding: t };
    }
  } else {
    const b = blocks.find((b) =>
      b.r0 === r.r0 && b.r1 === r.r1 && b.c0 === r.c0 && b.c1 === r.c1
    );
    if (b) return { binding: { buffer: b.buffer, bytes: b.bytes } };
  }
  const w = r.c1 - r.c0;
  const bytes = Math.max(4, (r.r1 - r.r0) * w * 4);
  const temp = ctx.acquire(bytes);
  copyRect(ctx, t, r, { buffer: temp, bytes }, "gather");
  return { binding: { buffer: temp, bytes }, temp };
}

/** Copies `buf` (row-major, the shape of `r`) into rectangle `r` of `t`. */
export function scatterRect(
  ctx: GpuContext,
  buf: Binding,
  t: GpuTensor,
  r: Rect,
): void {
  copyRect(ctx, t, r, buf, "scatter");
}

/** Copies between rectangle `r` of `t` and the row-major buffer `buf`, block by block. */
function copyRect(
  ctx: GpuContext,
  t: GpuTensor,
  r: Rect,
  buf: Binding,
  dir: "gather" | "scatter",
): void {
  const w = r.c1 - r.c0;
  for (const b of t.blocks()) {
    const r0 = Math.max(r.r0, b.r0), r1 = Math.min(r.r1, b.r1);
    const c0 = Math.max(r.c0, b.c0), c1 = Math.min(r.c1, b.c1);
    if (r0 >= r1 || c0 >= c1) continue;
    const bw = b.c1 - b.c0;
    const blockOff = (r0 - b.r0) * bw + (c0 - b.c0);
    const bufOff = (r0 - r.r0) * w + (c0 - r.c0);
    const block = { buffer: b.buffer, bytes: b.bytes };
    const [src, dst, u] = dir === "gather"
      ? [block, buf, [r1 - r0, c1 - c0, bw, blockOff, w, bufOff]]
      : [buf, block, [r1 - r0, c1 - c0, w, bufOff, bw, blockOff]];
    ctx.run(COPY_2D, [src, dst], u, grid((r1 - r0) * (c1 - c0)));
  }
}

/** The fused LoRA term of a tiled product: `+ scale · xa op(lb)`. */
export interface TiledLora {
  /** [M, R] */
  xa: GpuTensor;
  /** [N, R] for layout "t", [R, N] for layout "n". */
  lb: GpuTensor;
  /** Rank R. */
  r: number;
  /** Scale of the term. */
  scale: number;
  /** "t": lb is [N,R]; "n": lb is [R,N]. */
  layout: "t" | "n";
}

/** Options of {@linkcode tiledProduct}. */
export interface TiledOptions {
  /** a is stored [K,M]. */
  transA: boolean;
  /** b is stored [N,K]. */
  transB: boolean;
  /** Scale of the product. */
  alpha: number;
  /** Scale of the existing c. */
  beta: number;
  /** The fused LoRA term. */
  lora?: TiledLora;
}

/** The matrix product on plain bindings (the backend's unsplit path). */
export type MatmulFn = (
  a: Binding,
  b: Binding,
  c: Binding,
  m: number,
  n: number,
  k: number,
  o: {
    transA: boolean;
    transB: boolean;
    alpha: number;
    beta: number;
    lora?: {
      xa: Binding;
      lb: Binding;
      r: number;
      scale: number;
      layout: "t" | "n";
    };
  },
) => void;

/** Sorted union of boundary lists. */
function union(...lists: number[][]): number[] {
  return [...new Set(lists.flat())].sort((x, y) => x - y);
}

function spans(bounds: number[], end: number): [number, number][] {
  if (end === 0) return [[0, 0]];
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    out.push([bounds[i], bounds[i + 1]]);
  }
  return out;
}

/**
 * c = alpha · op(a) op(b) + beta · c (+ the LoRA term) when any operand is
 * split. M, N and K are cut at every block boundary of every operand, so each
 * tile lies inside one block of each tensor (and fits the binding limit).
 * Each output tile is computed over the K tiles in order, the first with
 * `beta` (and the LoRA term), the rest adding to it; with K unsplit every
 * element is the same sum as in the unsplit product.
 */
export function tiledProduct(
  ctx: GpuContext,
  matmul: MatmulFn,
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
  m: number,
  n: number,
  k: number,
  o: TiledOptions,
): void {
  if (m === 0 || n === 0) return;
  const la = a.layout, lb = b.layout, lc = c.layout;
  const aM = boundaries(la, o.transA ? "c" : "r");
  const aK = boundaries(la, o.transA ? "r" : "c");
  const bK = boundaries(lb, o.transB ? "c" : "r");
  const bN = boundaries(lb, o.transB ? "r" : "c");
  const lists = { m: [aM, boundaries(lc, "r")], n: [bN, boundaries(lc, "c")] };
  if (o.lora) {
    lists.m.push(boundaries(o.lora.xa.layout, "r"));
    lists.n.push(
      boundaries(o.lora.lb.layout, o.lora.layout === "t" ? "r" : "c"),
    );
  }
  const ms = spans(union(...lists.m), m);
  const ns = spans(union(...lists.n), n);
  const ks = spans(union(aK, bK), k);
  const temps: GPUBuffer[] = [];
  const tile = (t: GpuTensor, r: Rect): Binding => {
    const x = tileOf(ctx, t, r);
    if (x.temp) temps.push(x.temp);
    return x.binding;
  };
  for (const [m0, m1] of ms) {
    for (const [n0, n1] of ns) {
      const cr = { r0: m0, r1: m1, c0: n0, c1: n1 };
      // the output tile: a whole block of c, or a copy scattered back after
      let cb: Binding;
      let cTemp: GPUBuffer | undefined;
      if (o.beta !== 0) {
        const t = tileOf(ctx, c, cr);
        cb = t.binding;
        cTemp = t.temp;
      } else {
        const whole = c.blocks().find((x) =>
          x.r0 === m0 && x.r1 === m1 && x.c0 === n0 && x.c1 === n1
        );
        if (whole) {
          cb = c.split ? { buffer: whole.buffer, bytes: whole.bytes } : c;
        } else {
          const bytes = Math.max(4, (m1 - m0) * (n1 - n0) * 4);
          cTemp = ctx.acquire(bytes);
          cb = { buffer: cTemp, bytes };
        }
      }
      ks.forEach(([k0, k1], ki) => {
        const at = tile(
          a,
          o.transA
            ? { r0: k0, r1: k1, c0: m0, c1: m1 }
            : { r0: m0, r1: m1, c0: k0, c1: k1 },
        );
        const bt = tile(
          b,
          o.transB
            ? { r0: n0, r1: n1, c0: k0, c1: k1 }
            : { r0: k0, r1: k1, c0: n0, c1: n1 },
        );
        const l = o.lora && ki === 0
          ? {
            xa: tile(o.lora.xa, { r0: m0, r1: m1, c0: 0, c1: o.lora.r }),
            lb: tile(
              o.lora.lb,
              o.lora.layout === "t"
                ? { r0: n0, r1: n1, c0: 0, c1: o.lora.r }
                : { r0: 0, r1: o.lora.r, c0: n0, c1: n1 },
            ),
            r: o.lora.r,
            scale: o.lora.scale,
            layout: o.lora.layout,
          }
          : undefined;
        matmul(at, bt, cb, m1 - m0, n1 - n0, k1 - k0, {
          transA: o.transA,
          transB: o.transB,
          alpha: o.alpha,
          beta: ki === 0 ? o.beta : 1,
          lora: l,
        });
        // temporaries go back to the pool at once: later users are recorded after this work
        for (const t of temps.splice(0)) ctx.release(t);
      });
      if (cTemp) {
        scatterRect(ctx, cb, c, cr);
        ctx.release(cTemp);
      }
    }
  }
}
