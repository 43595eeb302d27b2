/**
 * A minimal WebAssembly binary writer, enough for the native backend's SIMD
 * kernels (simd_kernels.ts): one exported memory, functions of i32/f32
 * parameters with no results, and the handful of instructions they use.
 *
 * Layout of a module (the binary format, §5 of the core spec):
 *   magic "\0asm", version 1, then sections id · size · content:
 *   1 types, 3 functions, 5 memory, 7 exports, 10 code.
 * Integers are LEB128; each function body is its locals then its code,
 * ending with `end` (0x0b).
 *
 * @module
 */

/** Value types. */
export const I32 = 0x7f;
/** f32 */
export const F32 = 0x7d;
/** v128 */
export const V128 = 0x7b;

/** Unsigned LEB128 of a non-negative integer. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) ||
      (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** A byte vector with its length prefix. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/** One function of a module: parameter types, extra locals, and code. */
export interface WasmFunction {
  /** Exported under this name. */
  name: string;
  /** Parameter types (locals 0 … params.length − 1). */
  params: number[];
  /** Types of the further locals, numbered after the parameters. */
  locals: number[];
  /** The body's instructions (without the final `end`). */
  code: number[];
}

/**
 * The bytes of a module exporting `functions` and a memory named "memory" of
 * `pages` 64 KiB pages (growable).
 */
export function wasmModule(
  functions: readonly WasmFunction[],
  pages: number,
): Uint8Array<ArrayBuffer> {
  const types = section(
    1,
    vec(functions.map((f) => [0x60, ...vec(f.params.map((t) => [t])), 0])),
  );
  const funcs = section(3, vec(functions.map((_, i) => uleb(i))));
  const memory = section(5, vec([[0x00, ...uleb(pages)]]));
  const exports = section(
    7,
    vec([
      [...name("memory"), 0x02, 0],
      ...functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]),
    ]),
  );
  const code = section(
    10,
    vec(functions.map((f) => {
      const locals = vec(f.locals.map((t) => [1, t]));
      const body = [...locals, ...f.code, 0x0b];
      return [...uleb(body.length), ...body];
    })),
  );
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...types,
    ...funcs,
    ...memory,
    ...exports,
    ...code,
  ]);
}

// ---- instructions ------------------------------------------------------------------

/** Instruction builders: each returns its bytes. */
export const op = {
  localGet: (i: number): number[] => [0x20, ...uleb(i)],
  localSet: (i: number): number[] => [0x21, ...uleb(i)],
  localTee: (i: number): number[] => [0x22, ...uleb(i)],
  i32Const: (n: number): number[] => [0x41, ...sleb(n)],
  f32Const: (x: number): number[] => {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    return [0x43, ...b];
  },
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32Mul: [0x6c],
  i32Shl: [0x74],
  i32RemU: [0x70],
  i32LtU: [0x49],
  i32GeU: [0x4f],
  f32Load: (offset = 0): number[] => [0x2a, 2, ...uleb(offset)],
  f32Store: (offset = 0): number[] => [0x38, 2, ...uleb(offset)],
  f32Add: [0x92],
  f32Sub: [0x93],
  f32Mul: [0x94],
  f32Div: [0x95],
  f32Sqrt: [0x91],
  f32Max: [0x97],
  /** `block` with no result. */
  block: [0x02, 0x40],
  /** `loop` with no result. */
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number): number[] => [0x0c, ...uleb(depth)],
  brIf: (depth: number): number[] => [0x0d, ...uleb(depth)],
  // SIMD (prefix 0xfd, then the opcode as LEB128)
  v128Load: (offset = 0): number[] => [0xfd, ...uleb(0x00), 4, ...uleb(offset)],
  v128Store: (offset = 0): number[] => [
    0xfd,
    ...uleb(0x0b),
    4,
    ...uleb(offset),
  ],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f32x4ExtractLane: (lane: number): number[] => [0xfd, ...uleb(0x1f), lane],
  i32x4Splat: [0xfd, ...uleb(0x11)],
  f32x4Gt: [0xfd, ...uleb(0x44)],
  v128And: [0xfd, ...uleb(0x4e)],
  f32x4Nearest: [0xfd, ...uleb(0x6a)],
  i32x4Shl: [0xfd, ...uleb(0xab)],
  i32x4Add: [0xfd, ...uleb(0xae)],
  f32x4Neg: [0xfd, ...uleb(0xe1)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Sub: [0xfd, ...uleb(0xe5)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Div: [0xfd, ...uleb(0xe7)],
  f32x4Min: [0xfd, ...uleb(0xe8)],
  f32x4Max: [0xfd, ...uleb(0xe9)],
  /** b < a ? b : a (one minps, unlike f32x4.min's NaN and ±0 rules) */
  f32x4Pmin: [0xfd, ...uleb(0xea)],
  /** a < b ? b : a (one maxps) */
  f32x4Pmax: [0xfd, ...uleb(0xeb)],
  i32x4Sub: [0xfd, ...uleb(0xb1)],
  i32x4ExtendLowI16x8U: [0xfd, ...uleb(0xa9)],
  i32x4ExtendHighI16x8U: [0xfd, ...uleb(0xaa)],
  i32x4TruncSatF32x4S: [0xfd, ...uleb(0xf8)],
} as const;

/** f32x4.splat of a constant. */
export function f32x4Const(x: number): number[] {
  return [...op.f32Const(x), ...op.f32x4Splat];
}

/**
 * `for (i = start; i < end; i += step) body` over an i32 local `i`, with
 * `end` a local and `step` a constant or the code of one (e.g. a local.get).
 */
export function forLoop(
  i: number,
  start: number[],
  end: number,
  step: number | number[],
  body: number[],
): number[] {
  return [
    ...start,
    ...op.localSet(i),
    ...op.block,
    ...op.loop,
    ...op.localGet(i),
    ...op.localGet(end),
    ...op.i32GeU,
    ...op.brIf(1),
    ...body,
    ...op.localGet(i),
    ...(typeof step === "number" ? op.i32Const(step) : step),
    ...op.i32Add,
    ...op.localSet(i),
    ...op.br(0),
    ...op.end,
    ...op.end,
  ];
}
