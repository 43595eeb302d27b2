/**
 * Reading and writing the safetensors format (Hugging Face).
 *
 * Layout of a file:
 *
 * ```
 * u64 little-endian N | N bytes of UTF-8 JSON header | data bytes
 * header = { "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] },
 *            "__metadata__"?: { "<key>": "<string value>" } }
 * ```
 *
 * Offsets are relative to the start of the data bytes. Readers accept F32, F16
 * and BF16 (returned as `Float32Array`) and I32, I64 (returned as `Int32Array`,
 * I64 range-checked). The writer emits F32 and I32 with names sorted and the
 * header padded with spaces to an 8-byte boundary, so the same tensors always
 * give the same bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const bytes = writeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
 * assert.deepEqual(readSafetensors(bytes).get("w")?.data, new Float32Array([1, 2]));
 * ```
 *
 * @module
 */
import type { HalfBits } from "../kernels/half.ts";

/** Thrown for a malformed safetensors file or an unwritable tensor. */
export class SafetensorsError extends Error {
  /** @param message what was wrong, naming the tensor or field */
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

/** The on-disk element types this reader understands. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "I64";

/**
 * A tensor read from a safetensors file. Float dtypes decode to
 * `Float32Array`, integer ones to `Int32Array`; read with `keepHalf`, F16
 * and BF16 stay 16-bit ({@linkcode HalfBits}).
 */
export interface SafeTensor<D = Float32Array | Int32Array> {
  /** The dtype as stored in the file. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first (`[]` for a scalar). */
  shape: number[];
  /** Row-major elements. */
  data: D;
}

/** Element storage of a tensor read with `keepHalf`. */
export type KeptData = Float32Array | Int32Array | HalfBits;

/** Options of {@linkcode parseSafetensors} and {@linkcode readSafetensorsFile}. */
export interface ReadOptions {
  /** Keep F16 and BF16 tensors as their 16-bit bits instead of widening them. */
  keepHalf?: boolean;
}

/**
 * A tensor to write: F32 for a `Float32Array`, I32 for an `Int32Array`, BF16
 * or F16 for {@linkcode HalfBits} of that format.
 */
export interface TensorToWrite {
  /** Dimensions, outermost first; their product must equal the element count. */
  shape: readonly number[];
  /** Row-major elements. */
  data: Float32Array | Int32Array | HalfBits;
}

/** The typed array holding a tensor's elements (a 16-bit tensor's bits). */
function storageOf(
  data: TensorToWrite["data"],
): Float32Array | Int32Array | Uint16Array {
  return data instanceof Float32Array || data instanceof Int32Array
    ? data
    : data.bits;
}

/** The file dtype of a tensor's elements. */
function dtypeOf(data: TensorToWrite["data"]): SafetensorsDtype {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Int32Array) return "I32";
  return data.format === "bf16" ? "BF16" : "F16";
}

/** Everything in a safetensors file. */
export interface SafetensorsContents<D = Float32Array | Int32Array> {
  /** Tensors by name, in header order. */
  tensors: Map<string, SafeTensor<D>>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
};

/** Largest header we accept (the Rust reference uses the same 100 MB bound). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

/** True on little-endian hosts (all common ones): file bytes can then be copied as they are. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(BYTES_PER_ELEMENT, x);
}

/** IEEE half → float: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals and inf/NaN included. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A 16-bit tensor's little-endian bytes as host-order bits (copied). */
function halfBits(bytes: Uint8Array, count: number): Uint16Array {
  if (LITTLE_ENDIAN_HOST) return new Uint16Array(bytes.slice().buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}

function decodeTensor(
  name: string,
  dtype: SafetensorsDtype,
  bytes: Uint8Array,
  count: number,
): Float32Array | Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32": {
      if (LITTLE_ENDIAN_HOST) return new Float32Array(bytes.slice().buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case "F16": {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        out[i] = halfToFloat(view.getUint16(2 * i, true));
      }
      return out;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32: shift it back into place.
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        bits[i] = view.getUint16(2 * i, true) << 16;
      }
      return new Float32Array(bits.buffer);
    }
    case "I32": {
      if (LITTLE_ENDIAN_HOST) return new Int32Array(bytes.slice().buffer);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case "I64": {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v < -2147483648n || v > 2147483647n) {
          throw new SafetensorsError(
            `tensor ${name}: I64 element ${i} is ${v}, outside the int32 range Bios reads`,
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

function parseHeader(
  bytes: Uint8Array,
): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.byteLength < 8) {
    throw new SafetensorsError(
      `file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(bytes.byteLength - 8)) {
    throw new SafetensorsError(
      `header length ${headerLen} runs past the end of the file (${
        bytes.byteLength - 8
      } bytes after the length)`,
    );
  }
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(
      `header length ${headerLen} exceeds the limit of ${MAX_HEADER_BYTES} bytes`,
    );
  }
  const n = Number(headerLen);
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(8, 8 + n),
      ),
    );
  } catch (e) {
    throw new SafetensorsError(
      `header is not valid UTF-8 JSON: ${(e as Error).message}`,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new SafetensorsError("header must be a JSON object");
  }
  return { header: header as Record<string, unknown>, dataStart: 8 + n };
}

function parseMetadata(raw: unknown): Record<string, string> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new SafetensorsError("__metadata__ must be an object of strings");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        `__metadata__.${k} must be a string: got ${JSON.stringify(v)}`,
      );
    }
    out[k] = v;
  }
  return out;
}

/**
 * Parses a whole safetensors file held in memory.
 *
 * @param bytes the file's bytes
 * @returns the tensors (copied out of `bytes`) and the metadata
 * @throws {SafetensorsError} for a header past the end of the file, bad JSON, an
 *   unknown dtype, a shape that disagrees with its byte count, or offsets out of
 *   range or overlapping
 */
export function parseSafetensors(bytes: Uint8Array): SafetensorsContents;
/** With `keepHalf`, F16 and BF16 tensors stay 16-bit. */
export function parseSafetensors(
  bytes: Uint8Array,
  opts: ReadOptions,
): SafetensorsContents<KeptData>;
export function parseSafetensors(
  bytes: Uint8Array,
  opts: ReadOptions = {},
): SafetensorsContents<KeptData> {
  const { header, dataStart } = parseHeader(bytes);
  const dataLen = bytes.byteLength - dataStart;
  let metadata: Record<string, string> = {};
  const entries: {
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = parseMetadata(raw);
      continue;
    }
    if (typeof raw !== "object" || raw === null) {
      throw new SafetensorsError(
        `tensor ${name}: header entry must be an object`,
      );
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<
      string,
      unknown
    >;
    if (!isDtype(dtype)) {
      throw new SafetensorsError(
        `tensor ${name}: unsupported dtype ${
          JSON.stringify(dtype)
        } (supported: ${Object.keys(BYTES_PER_ELEMENT).join(", ")})`,
      );
    }
    if (
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) {
      throw new SafetensorsError(
        `tensor ${name}: shape must be an array of non-negative integers: got ${
          JSON.stringify(shape)
        }`,
      );
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new SafetensorsError(
        `tensor ${name}: data_offsets must be [begin, end] with 0 <= begin <= end: got ${
          JSON.stringify(offsets)
        }`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) {
      throw new SafetensorsError(
        `tensor ${name}: data_offsets end ${end} is past the data section (${dataLen} bytes)`,
      );
    }
    const count = shape.reduce((a: number, d: number) => a * d, 1);
    const expected = count * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        `tensor ${name}: shape ${
          JSON.stringify(shape)
        } of ${dtype} needs ${expected} bytes but data_offsets span ${
          end - begin
        }`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  const byOffset = [...entries].sort((a, b) =>
    a.begin - b.begin || a.end - b.end
  );
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1], cur = byOffset[i];
    if (cur.begin < prev.end) {
      throw new SafetensorsError(
        `tensors ${prev.name} [${prev.begin}, ${prev.end}) and ${cur.name} [${cur.begin}, ${cur.end}) overlap`,
      );
    }
  }
  const tensors = new Map<string, SafeTensor<KeptData>>();
  for (const e of entries) {
    const slice = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    const count = e.shape.reduce((a, d) => a * d, 1);
    const half = e.dtype === "BF16" ? "bf16" : e.dtype === "F16" ? "f16" : null;
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      data: opts.keepHalf && half
        ? { bits: halfBits(slice, count), format: half }
        : decodeTensor(e.name, e.dtype, slice, count),
    });
  }
  return { tensors, metadata };
}

/**
 * Reads the tensors of a safetensors file held in memory.
 *
 * @param bytes the file's bytes
 * @returns tensors by name
 * @throws {SafetensorsError} for a malformed file (see `parseSafetensors`)
 */
export function readSafetensors(bytes: Uint8Array): Map<string, SafeTensor> {
  return parseSafetensors(bytes).tensors;
}

/**
 * Reads a safetensors file from disk.
 *
 * @param path the file
 * @returns tensors and metadata
 * @throws {SafetensorsError} for a malformed file, with the path in the message
 */
export async function readSafetensorsFile(
  path: string,
): Promise<SafetensorsContents>;
/** With `keepHalf`, F16 and BF16 tensors stay 16-bit. */
export async function readSafetensorsFile(
  path: string,
  opts: ReadOptions,
): Promise<SafetensorsContents<KeptData>>;
export async function readSafetensorsFile(
  path: string,
  opts: ReadOptions = {},
): Promise<SafetensorsContents<KeptData>> {
  const bytes = await Deno.readFile(path);
  try {
    return parseSafetensors(bytes, opts);
  } catch (e) {
    if (e instanceof SafetensorsError) {
      throw new SafetensorsError(`${path}: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Serialises tensors to safetensors bytes: names (and metadata keys) sorted, `__metadata__` first,
 * header padded with spaces to a multiple of 8 bytes, data packed in name order.
 *
 * @param tensors tensors by name (a `Map` or a plain object)
 * @param metadata optional string metadata (e.g. `{ format: "pt" }`)
 * @returns the file's bytes
 * @throws {SafetensorsError} if a shape disagrees with its data length or a name is empty or reserved
 */
export function writeSafetensors(
  tensors: ReadonlyMap<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const map: ReadonlyMap<string, TensorToWrite> = tensors instanceof Map
    ? tensors as ReadonlyMap<string, TensorToWrite>
    : new Map(Object.entries(tensors as Record<string, TensorToWrite>));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const checked = parseMetadata(metadata);
    header[METADATA_KEY] = Object.fromEntries(
      Object.keys(checked).sort().map((k) => [k, checked[k]]),
    );
  }
  let offset = 0;
  for (const name of names) {
    if (name === "" || name === METADATA_KEY) {
      throw new SafetensorsError(
        `tensor name must be non-empty and not ${METADATA_KEY}: got ${
          JSON.stringify(name)
        }`,
      );
    }
    const t = map.get(name)!;
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(
        `tensor ${name}: shape must be non-negative integers: got ${
          JSON.stringify(t.shape)
        }`,
      );
    }
    const count = t.shape.reduce((a, d) => a * d, 1);
    const data = storageOf(t.data);
    if (count !== data.length) {
      throw new SafetensorsError(
        `tensor ${name}: shape ${
          JSON.stringify(t.shape)
        } has ${count} elements but data has ${data.length}`,
      );
    }
    header[name] = {
      dtype: dtypeOf(t.data),
      shape: [...t.shape],
      data_offsets: [offset, offset + data.byteLength],
    };
    offset += data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  let pos = 8 + padded;
  for (const name of names) {
    const data = storageOf(map.get(name)!.data);
    if (LITTLE_ENDIAN_HOST) {
      out.set(
        new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        pos,
      );
    } else if (data instanceof Float32Array) {
      // Element by element so the bytes are little-endian on a big-endian host.
      for (let i = 0; i < data.length; i++) {
        view.setFloat32(pos + 4 * i, data[i], true);
      }
    } else if (data instanceof Uint16Array) {
      for (let i = 0; i < data.length; i++) {
        view.setUint16(pos + 2 * i, data[i], true);
      }
    } else {
      for (let i = 0; i < data.length; i++) {
        view.setInt32(pos + 4 * i, data[i], true);
      }
    }
    pos += data.byteLength;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically: into a temporary file beside
 * `path`, then renamed over it, so a reader never sees half a file.
 *
 * @param path the destination file
 * @param tensors tensors by name
 * @param metadata optional string metadata
 * @throws {SafetensorsError} as `writeSafetensors`
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: ReadonlyMap<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = writeSafetensors(tensors, metadata);
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
