/**
 * The WebAssembly functions of simd_kernels.ts, written instruction by
 * instruction with wasm_binary.ts. Pointers are byte addresses in the
 * module's memory; vectors are f32x4, and loops run over whole vectors (the
 * callers pad or mask the last one).
 *
 * e^x, four lanes at a time (Cephes' expf): x clamped to [−87.3, 88.3],
 * k = nearest(x · log2 e), r = x − k·ln2 (in two parts, |r| ≤ ln2/2),
 * e^r = 1 + r + r²·P(r) with P of degree 5, times 2^k built in the exponent
 * bits; inputs below −87.3 give exactly 0 (e^−87.3 ≈ 1e−38). Relative error
 * ~2 f32 ulps.
 *
 * @module
 */

import {
  F32,
  f32x4Const,
  forLoop,
  I32,
  op,
  V128,
  type WasmFunction,
} from "./wasm_binary.ts";

const LOG2E = 1.44269504088896341;
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
const EXP_LO = -87.3;
const EXP_HI = 88.3;
const EXP_POLY = [
  1.9875691500e-4,
  1.3981999507e-3,
  8.3334519073e-3,
  4.1665795894e-2,
  1.6666665459e-1,
  5.0000001201e-1,
];

/** 1.5 · 2^23: adding it rounds an f32 of magnitude < 2^22 to an integer. */
const ROUND_MAGIC = 12582912;
/** The f32 bits of ROUND_MAGIC. */
const ROUND_MAGIC_BITS = 0x4b400000;

/** Locals of a function being written: `next(type)` gives the next index. */
interface Locals {
  next: (type: number) => number;
}

/**
 * The e^x code of one function. Its constants live in v128 locals set once by
 * `init` (a splat inside the loop costs three instructions each time);
 * `exp(x)` leaves e^x of v128 local `x` on the stack. k = nearest(t · log2 e)
 * comes from the rounding of j = t · log2 e + 1.5·2^23, whose low mantissa
 * bits are then k itself.
 */
function expCode(l: Locals): {
  init: number[];
  exp: (x: number) => number[];
  expMany: (xs: number[], outs: number[]) => number[];
  one: number;
} {
  const names = [EXP_LO, EXP_HI, LOG2E, ROUND_MAGIC, LN2_HI, LN2_LO, 1];
  const init: number[] = [];
  const c = names.map((v) => {
    const i = l.next(V128);
    init.push(...f32x4Const(v), ...op.localSet(i));
    return i;
  });
  const [lo, hi, log2e, magic, ln2hi, ln2lo, one] = c;
  const poly = EXP_POLY.map((v) => {
    const i = l.next(V128);
    init.push(...f32x4Const(v), ...op.localSet(i));
    return i;
  });
  const bias = l.next(V128);
  init.push(
    ...op.i32Const(127 - ROUND_MAGIC_BITS),
    ...op.i32x4Splat,
    ...op.localSet(bias),
  );
  const t = l.next(V128), j = l.next(V128), k = l.next(V128);
  const get = op.localGet;
  const horner: number[] = [...get(poly[0])];
  for (const pc of poly.slice(1)) {
    horner.push(...get(t), ...op.f32x4Mul, ...get(pc), ...op.f32x4Add);
  }
  const exp = (x: number): number[] => [
    // t = clamp(x)
    ...get(x),
    ...get(lo),
    ...op.f32x4Pmax,
    ...get(hi),
    ...op.f32x4Pmin,
    ...op.localTee(t),
    // j = t · log2 e + magic, k = j − magic = nearest(t · log2 e)
    ...get(log2e),
    ...op.f32x4Mul,
    ...get(magic),
    ...op.f32x4Add,
    ...op.localTee(j),
    ...get(magic),
    ...op.f32x4Sub,
    ...op.localSet(k),
    // t = t − k·ln2_hi − k·ln2_lo
    ...get(t),
    ...get(k),
    ...get(ln2hi),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...get(k),
    ...get(ln2lo),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...op.localSet(t),
    // P(t) · t² + t + 1
    ...horner,
    ...get(t),
    ...op.f32x4Mul,
    ...get(t),
    ...op.f32x4Mul,
    ...get(t),
    ...op.f32x4Add,
    ...get(one),
    ...op.f32x4Add,
    // · 2^k: (bits(j) − bits(magic) + 127) << 23 as f32 bits
    ...get(j),
    ...get(bias),
    ...op.i32x4Add,
    ...op.i32Const(23),
    ...op.i32x4Shl,
    ...op.f32x4Mul,
    // 0 where x < EXP_LO
    ...get(x),
    ...get(lo),
    ...op.f32x4Gt,
    ...op.v128And,
  ];
  /**
   * e^x of several v128 locals into `outs`, the chains' instructions
   * interleaved statement by statement so that the CPU overlaps them (one
   * chain is a long run of dependent operations). Unlike `exp`, inputs below
   * −87.3 give e^−87.3 ≈ 1e−38 rather than 0 (SwiGLU's 1 + e^−g cannot tell).
   */
  const expMany = (xs: number[], outs: number[]): number[] => {
    const chains = xs.map((x, n) => {
      const t = l.next(V128), j = l.next(V128), k = l.next(V128);
      const p = l.next(V128), out = outs[n];
      const steps: number[][] = [
        [
          ...get(x),
          ...get(lo),
          ...op.f32x4Pmax,
          ...get(hi),
          ...op.f32x4Pmin,
          ...op.localSet(t),
        ],
        [
          ...get(t),
          ...get(log2e),
          ...op.f32x4Mul,
          ...get(magic),
          ...op.f32x4Add,
          ...op.localSet(j),
        ],
        [...get(j), ...get(magic), ...op.f32x4Sub, ...op.localSet(k)],
        [
          ...get(t),
          ...get(k),
          ...get(ln2hi),
          ...op.f32x4Mul,
          ...op.f32x4Sub,
          ...op.localSet(t),
        ],
        [
          ...get(t),
          ...get(k),
          ...get(ln2lo),
          ...op.f32x4Mul,
          ...op.f32x4Sub,
          ...op.localSet(t),
        ],
        [
          ...get(poly[0]),
          ...get(t),
          ...op.f32x4Mul,
          ...get(poly[1]),
          ...op.f32x4Add,
          ...op.localSet(p),
        ],
        ...poly.slice(2).map((
          pc,
        ) => [
          ...get(p),
          ...get(t),
          ...op.f32x4Mul,
          ...get(pc),
          ...op.f32x4Add,
          ...op.localSet(p),
        ]),
        [
          ...get(p),
          ...get(t),
          ...op.f32x4Mul,
          ...get(t),
          ...op.f32x4Mul,
          ...get(t),
          ...op.f32x4Add,
          ...get(one),
          ...op.f32x4Add,
          ...op.localSet(p),
        ],
        [
          ...get(j),
          ...get(bias),
          ...op.i32x4Add,
          ...op.i32Const(23),
          ...op.i32x4Shl,
          ...op.localSet(j),
        ],
        [
          ...get(p),
          ...get(j),
          ...op.f32x4Mul,
          ...op.localSet(out),
        ],
      ];
      return steps;
    });
    const code: number[] = [];
    for (let s = 0; s < chains[0].length; s++) {
      for (const c of chains) code.push(...c[s]);
    }
    return code;
  };
  return { init, exp, expMany, one };
}

/** Numbers locals after the parameters: `next(type)` gives the next index. */
function localsAfter(params: number[]): {
  next: (type: number) => number;
  types: number[];
} {
  const types: number[] = [];
  return {
    types,
    next: (type) => {
      types.push(type);
      return params.length + types.length - 1;
    },
  };
}

const get = op.localGet;
const set = op.localSet;

/** Byte address `base + i` (two i32 locals) on the stack. */
function addr(base: number, i: number): number[] {
  return [...get(base), ...get(i), ...op.i32Add];
}

/** Lanes per SwiGLU loop step: two f32x4 vectors, their e^x interleaved. */
export const SWIGLU_STEP = 8;

/** Byte address `base + i + offset` on the stack. */
function addrAt(base: number, i: number, offset: number): number[] {
  return [
    ...get(base),
    ...get(i),
    ...op.i32Add,
    ...op.i32Const(offset),
    ...op.i32Add,
  ];
}

/**
 * swigluFwd(g, u, h, bytes): h = g·σ(g)·u, bytes a multiple of
 * 4·SWIGLU_STEP.
 */
function swigluFwd(): WasmFunction {
  const params = [I32, I32, I32, I32];
  const [g, u, h, bytes] = [0, 1, 2, 3];
  const l = localsAfter(params);
  const i = l.next(I32);
  const gv = [l.next(V128), l.next(V128)], xv = [l.next(V128), l.next(V128)];
  const ev = [l.next(V128), l.next(V128)];
  const e = expCode(l);
  const lanes = [0, 1];
  const code = [
    ...e.init,
    ...forLoop(i, op.i32Const(0), bytes, 4 * SWIGLU_STEP, [
      ...lanes.flatMap((n) => [
        ...addrAt(g, i, 16 * n),
        ...op.v128Load(),
        ...op.localTee(gv[n]),
        ...op.f32x4Neg,
        ...set(xv[n]),
      ]),
      ...e.expMany(xv, ev),
      ...lanes.flatMap((n) => [
        ...addrAt(h, i, 16 * n),
        ...get(gv[n]),
        ...get(e.one),
        ...get(ev[n]),
        ...op.f32x4Add,
        ...op.f32x4Div,
        ...addrAt(u, i, 16 * n),
        ...op.v128Load(),
        ...op.f32x4Mul,
        ...op.v128Store(),
      ]),
    ]),
  ];
  return { name: "swigluFwd", params, locals: l.types, code };
}

/**
 * swigluBwd(dh, g, u, dgate, dup, bytes), with s = σ(g):
 * dup = dh·g·s, dgate = dh·u·s·(1 + g·(1 − s)); bytes a multiple of
 * 4·SWIGLU_STEP.
 */
function swigluBwd(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32];
  const [dh, g, u, dgate, dup, bytes] = [0, 1, 2, 3, 4, 5];
  const l = localsAfter(params);
  const i = l.next(I32);
  const gv = [l.next(V128), l.next(V128)], xv = [l.next(V128), l.next(V128)];
  const ev = [l.next(V128), l.next(V128)];
  const s = l.next(V128), dv = l.next(V128);
  const e = expCode(l);
  const lanes = [0, 1];
  const code = [
    ...e.init,
    ...forLoop(i, op.i32Const(0), bytes, 4 * SWIGLU_STEP, [
      ...lanes.flatMap((n) => [
        ...addrAt(g, i, 16 * n),
        ...op.v128Load(),
        ...op.localTee(gv[n]),
        ...op.f32x4Neg,
        ...set(xv[n]),
      ]),
      ...e.expMany(xv, ev),
      ...lanes.flatMap((n) => [
        // s = 1 / (1 + e^−g)
        ...get(e.one),
        ...get(e.one),
        ...get(ev[n]),
        ...op.f32x4Add,
        ...op.f32x4Div,
        ...set(s),
        ...addrAt(dh, i, 16 * n),
        ...op.v128Load(),
        ...set(dv),
        // dup = dh · g · s
        ...addrAt(dup, i, 16 * n),
        ...get(dv),
        ...get(gv[n]),
        ...op.f32x4Mul,
        ...get(s),
        ...op.f32x4Mul,
        ...op.v128Store(),
        // dgate = dh · u · s · (1 + g · (1 − s))
        ...addrAt(dgate, i, 16 * n),
        ...get(dv),
        ...addrAt(u, i, 16 * n),
        ...op.v128Load(),
        ...op.f32x4Mul,
        ...get(s),
        ...op.f32x4Mul,
        ...get(e.one),
        ...get(gv[n]),
        ...get(e.one),
        ...get(s),
        ...op.f32x4Sub,
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.f32x4Mul,
        ...op.v128Store(),
      ]),
    ]),
  ];
  return { name: "swigluBwd", params, locals: l.types, code };
}

/**
 * Code setting row `i` pointer `row` (= p + i·ld·4) and storing −∞ at columns
 * vis … ld−1 (vis = first + step·i), so that e^(−∞ − c) = 0 masks them.
 */
function maskRow(
  p: number,
  ld: number,
  first: number,
  step: number,
  i: number,
  row: number,
  j: number,
  end: number,
): number[] {
  return [
    ...get(p),
    ...get(i),
    ...get(ld),
    ...op.i32Mul,
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...set(row),
    ...get(ld),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...set(end),
    ...forLoop(
      j,
      [
        ...get(first),
        ...get(step),
        ...get(i),
        ...op.i32Mul,
        ...op.i32Add,
        ...op.i32Const(2),
        ...op.i32Shl,
      ],
      end,
      4,
      [...addr(row, j), ...op.f32Const(-Infinity), ...op.f32Store()],
    ),
  ];
}

/** Lanes of v128 local `v` reduced by a scalar f32 op, in lane order 0,1,2,3. */
function horizontal(v: number, f32op: readonly number[]): number[] {
  return [
    ...get(v),
    ...op.f32x4ExtractLane(0),
    ...get(v),
    ...op.f32x4ExtractLane(1),
    ...f32op,
    ...get(v),
    ...op.f32x4ExtractLane(2),
    ...f32op,
    ...get(v),
    ...op.f32x4ExtractLane(3),
    ...f32op,
  ];
}

/**
 * softmaxFwd(p, ld, m, first, step, stats): for rows i < m of p (ld floats
 * apart, ld a multiple of 4), columns ≥ first + step·i masked: p = softmax of
 * the visible columns, 0 elsewhere; stats[2i] = row max, stats[2i+1] = Σ e^(s − max).
 */
function softmaxFwd(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32];
  const [p, ld, m, first, step, stats] = [0, 1, 2, 3, 4, 5];
  const l = localsAfter(params);
  const i = l.next(I32), j = l.next(I32), row = l.next(I32);
  const end = l.next(I32), x = l.next(V128), acc = l.next(V128);
  const c = l.next(V128), ev = l.next(V128);
  const e = expCode(l);
  const statAddr = (lane: number) => [
    ...get(stats),
    ...get(i),
    ...op.i32Const(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.i32Const(lane * 4),
    ...op.i32Add,
  ];
  const body = [
    ...maskRow(p, ld, first, step, i, row, j, end),
    // max over the row
    ...f32x4Const(-Infinity),
    ...set(acc),
    ...forLoop(j, op.i32Const(0), end, 16, [
      ...get(acc),
      ...addr(row, j),
      ...op.v128Load(),
      ...op.f32x4Pmax,
      ...set(acc),
    ]),
    ...statAddr(0),
    ...horizontal(acc, op.f32Max),
    ...op.f32x4Splat,
    ...op.localTee(c),
    ...op.f32x4ExtractLane(0),
    ...op.f32Store(),
    // p = e^(s − max), summed
    ...f32x4Const(0),
    ...set(acc),
    ...forLoop(j, op.i32Const(0), end, 16, [
      ...addr(row, j),
      ...op.v128Load(),
      ...get(c),
      ...op.f32x4Sub,
      ...set(x),
      ...addr(row, j),
      ...e.exp(x),
      ...op.localTee(ev),
      ...op.v128Store(),
      ...get(acc),
      ...get(ev),
      ...op.f32x4Add,
      ...set(acc),
    ]),
    ...statAddr(1),
    ...horizontal(acc, op.f32Add),
    ...op.f32x4Splat,
    ...op.localTee(c),
    ...op.f32x4ExtractLane(0),
    ...op.f32Store(),
    // p /= Σ
    ...get(e.one),
    ...get(c),
    ...op.f32x4Div,
    ...set(c),
    ...forLoop(j, op.i32Const(0), end, 16, [
      ...addr(row, j),
      ...addr(row, j),
      ...op.v128Load(),
      ...get(c),
      ...op.f32x4Mul,
      ...op.v128Store(),
    ]),
  ];
  const code = [...e.init, ...forLoop(i, op.i32Const(0), m, 1, body)];
  return { name: "softmaxFwd", params, locals: l.types, code };
}

/**
 * softmaxBwd(p, ds, ld, m, first, step, stats), stats[2i] = lse_i and
 * stats[2i+1] = Σ_c dO·O of row i: p = e^(s − lse) on visible columns (0
 * elsewhere), then ds = p · (ds − rowdot).
 */
function softmaxBwd(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32, I32];
  const [p, ds, ld, m, first, step, stats] = [0, 1, 2, 3, 4, 5, 6];
  const l = localsAfter(params);
  const i = l.next(I32), j = l.next(I32), row = l.next(I32);
  const end = l.next(I32), x = l.next(V128), lse = l.next(V128);
  const dot = l.next(V128), ev = l.next(V128), drow = l.next(I32);
  const e = expCode(l);
  const stat = (lane: number) => [
    ...get(stats),
    ...get(i),
    ...op.i32Const(3),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f32Load(lane * 4),
    ...op.f32x4Splat,
  ];
  const body = [
    ...maskRow(p, ld, first, step, i, row, j, end),
    ...get(row),
    ...get(p),
    ...op.i32Sub,
    ...get(ds),
    ...op.i32Add,
    ...set(drow),
    ...stat(0),
    ...set(lse),
    ...stat(1),
    ...set(dot),
    ...forLoop(j, op.i32Const(0), end, 16, [
      ...addr(row, j),
      ...op.v128Load(),
      ...get(lse),
      ...op.f32x4Sub,
      ...set(x),
      ...addr(row, j),
      ...e.exp(x),
      ...op.localTee(ev),
      ...op.v128Store(),
      ...addr(drow, j),
      ...get(ev),
      ...addr(drow, j),
      ...op.v128Load(),
      ...get(dot),
      ...op.f32x4Sub,
      ...op.f32x4Mul,
      ...op.v128Store(),
    ]),
  ];
  const code = [...e.init, ...forLoop(i, op.i32Const(0), m, 1, body)];
  return { name: "softmaxBwd", params, locals: l.types, code };
}

/**
 * rope(x, out, rows, width, half, cos, sin, seqLen, row0), sizes in bytes
 * except rows and seqLen: rows of `width` bytes, heads of 2·half bytes; row r
 * sits at position (row0 + r) mod seqLen, whose cos/sin rows (half bytes) are
 * in the tables. out_i = x_i c − x_{i+half} s, out_{i+half} = x_{i+half} c + x_i s.
 */
function rope(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32, I32, I32, I32];
  const [x, out, rows, width, half, cos, sin, seqLen, row0] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
  ];
  const l = localsAfter(params);
  const r = l.next(I32), h = l.next(I32), i = l.next(I32), t = l.next(I32);
  const base = l.next(I32), c = l.next(V128), s = l.next(V128);
  const x1 = l.next(V128), x2 = l.next(V128), head = l.next(I32);
  const half2 = l.next(I32);
  const inner = forLoop(i, op.i32Const(0), half, 16, [
    ...get(cos),
    ...get(t),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...op.v128Load(),
    ...set(c),
    ...get(sin),
    ...get(t),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...op.v128Load(),
    ...set(s),
    ...get(x),
    ...get(base),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...op.v128Load(),
    ...set(x1),
    ...get(x),
    ...get(base),
    ...op.i32Add,
    ...get(half),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...op.v128Load(),
    ...set(x2),
    // out_i = x1 c − x2 s
    ...get(out),
    ...get(base),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...get(x1),
    ...get(c),
    ...op.f32x4Mul,
    ...get(x2),
    ...get(s),
    ...op.f32x4Mul,
    ...op.f32x4Sub,
    ...op.v128Store(),
    // out_{i+half} = x2 c + x1 s
    ...get(out),
    ...get(base),
    ...op.i32Add,
    ...get(half),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...get(x2),
    ...get(c),
    ...op.f32x4Mul,
    ...get(x1),
    ...get(s),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.v128Store(),
  ]);
  const code = [
    ...get(half),
    ...op.i32Const(1),
    ...op.i32Shl,
    ...set(half2),
    ...forLoop(r, op.i32Const(0), rows, 1, [
      // t = ((row0 + r) mod seqLen) · half
      ...get(row0),
      ...get(r),
      ...op.i32Add,
      ...get(seqLen),
      ...op.i32RemU,
      ...get(half),
      ...op.i32Mul,
      ...set(t),
      ...get(r),
      ...get(width),
      ...op.i32Mul,
      ...set(head),
      ...forLoop(h, op.i32Const(0), width, get(half2), [
        ...get(head),
        ...get(h),
        ...op.i32Add,
        ...set(base),
        ...inner,
      ]),
    ]),
  ];
  return { name: "rope", params, locals: l.types, code };
}

/**
 * rmsFwd(x, y, w, rstd, rows, width, c, eps), width in bytes, c = floats a
 * row (f32): r = 1 / sqrt(Σ x² / c + eps) (Σ in f32x4 lanes, then lanes
 * 0…3), rstd[row] = r, y = x · r · w.
 */
function rmsFwd(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32, F32, F32];
  const [x, y, w, rstd, rows, width, c, eps] = [0, 1, 2, 3, 4, 5, 6, 7];
  const l = localsAfter(params);
  const r = l.next(I32), j = l.next(I32), row = l.next(I32);
  const acc = l.next(V128), rv = l.next(V128), xv = l.next(V128);
  const code = forLoop(r, op.i32Const(0), rows, 1, [
    ...get(r),
    ...get(width),
    ...op.i32Mul,
    ...set(row),
    ...f32x4Const(0),
    ...set(acc),
    ...forLoop(j, op.i32Const(0), width, 16, [
      ...get(acc),
      ...get(x),
      ...get(row),
      ...op.i32Add,
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...op.localTee(xv),
      ...get(xv),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...set(acc),
    ]),
    // rstd[r] = 1 / sqrt(ss / c + eps)
    ...get(rstd),
    ...get(r),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f32Const(1),
    ...horizontal(acc, op.f32Add),
    ...get(c),
    ...op.f32Div,
    ...get(eps),
    ...op.f32Add,
    ...op.f32Sqrt,
    ...op.f32Div,
    ...op.f32x4Splat,
    ...op.localTee(rv),
    ...op.f32x4ExtractLane(0),
    ...op.f32Store(),
    ...forLoop(j, op.i32Const(0), width, 16, [
      ...get(y),
      ...get(row),
      ...op.i32Add,
      ...get(j),
      ...op.i32Add,
      ...get(x),
      ...get(row),
      ...op.i32Add,
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...get(rv),
      ...op.f32x4Mul,
      ...get(w),
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...op.v128Store(),
    ]),
  ]);
  return { name: "rmsFwd", params, locals: l.types, code };
}

/**
 * rmsBwd(dy, x, w, rstd, dx, dw, rows, width, c), width in bytes, c floats a
 * row (f32): per row, dot = Σ dy·w·x, dw += dy·x·r (accumulated across
 * calls), k = r³·dot / c, dx = r·dy·w − k·x.
 */
function rmsBwd(): WasmFunction {
  const params = [I32, I32, I32, I32, I32, I32, I32, I32, F32];
  const [dy, x, w, rstd, dx, dw, rows, width, c] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const l = localsAfter(params);
  const r = l.next(I32), j = l.next(I32), row = l.next(I32);
  const acc = l.next(V128), rv = l.next(V128), kv = l.next(V128);
  const dyv = l.next(V128), xv = l.next(V128), rs = l.next(F32);
  const at = (base: number) => [
    ...get(base),
    ...get(row),
    ...op.i32Add,
    ...get(j),
    ...op.i32Add,
  ];
  const code = forLoop(r, op.i32Const(0), rows, 1, [
    ...get(r),
    ...get(width),
    ...op.i32Mul,
    ...set(row),
    ...get(rstd),
    ...get(r),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.i32Add,
    ...op.f32Load(),
    ...op.localTee(rs),
    ...op.f32x4Splat,
    ...set(rv),
    ...f32x4Const(0),
    ...set(acc),
    ...forLoop(j, op.i32Const(0), width, 16, [
      ...at(dy),
      ...op.v128Load(),
      ...set(dyv),
      ...at(x),
      ...op.v128Load(),
      ...set(xv),
      // acc += dy · w · x
      ...get(acc),
      ...get(dyv),
      ...get(w),
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...get(xv),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...set(acc),
      // dw += dy · x · r
      ...get(dw),
      ...get(j),
      ...op.i32Add,
      ...get(dw),
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...get(dyv),
      ...get(xv),
      ...op.f32x4Mul,
      ...get(rv),
      ...op.f32x4Mul,
      ...op.f32x4Add,
      ...op.v128Store(),
    ]),
    // k = r³ · dot / c
    ...get(rs),
    ...get(rs),
    ...op.f32Mul,
    ...get(rs),
    ...op.f32Mul,
    ...horizontal(acc, op.f32Add),
    ...op.f32Mul,
    ...get(c),
    ...op.f32Div,
    ...op.f32x4Splat,
    ...set(kv),
    // dx = r · dy · w − k · x
    ...forLoop(j, op.i32Const(0), width, 16, [
      ...at(dx),
      ...get(rv),
      ...at(dy),
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...get(w),
      ...get(j),
      ...op.i32Add,
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...get(kv),
      ...at(x),
      ...op.v128Load(),
      ...op.f32x4Mul,
      ...op.f32x4Sub,
      ...op.v128Store(),
    ]),
  ]);
  return { name: "rmsBwd", params, locals: l.types, code };
}

/** Every function of the module, in export order. */
/**
 * widenBf16(src, dst, bytes): the bf16 elements at src (bytes a multiple of
 * 16: eight a vector) as float32 at dst: each zero-extended to 32 bits and
 * shifted into the top half, exactly.
 */
function widenBf16(): WasmFunction {
  const params = [I32, I32, I32];
  const [src, dst, bytes] = [0, 1, 2];
  const l = localsAfter(params);
  const i = l.next(I32), v = l.next(V128), out = l.next(I32);
  const half = (extend: readonly number[], offset: number) => [
    ...get(out),
    ...get(v),
    ...extend,
    ...op.i32Const(16),
    ...op.i32x4Shl,
    ...op.v128Store(offset),
  ];
  const code = forLoop(i, op.i32Const(0), bytes, 16, [
    ...get(src),
    ...get(i),
    ...op.i32Add,
    ...op.v128Load(),
    ...set(v),
    ...get(dst),
    ...get(i),
    ...op.i32Add,
    ...get(i),
    ...op.i32Add,
    ...set(out),
    ...half(op.i32x4ExtendLowI16x8U, 0),
    ...half(op.i32x4ExtendHighI16x8U, 16),
  ]);
  return { name: "widenBf16", params, locals: l.types, code };
}

export function simdFunctions(): WasmFunction[] {
  return [
    widenBf16(),
    swigluFwd(),
    swigluBwd(),
    softmaxFwd(),
    softmaxBwd(),
    rope(),
    rmsFwd(),
    rmsBwd(),
  ];
}
