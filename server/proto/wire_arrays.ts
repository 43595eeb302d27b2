/**
 * Typed arrays to and from the raw little-endian bytes Tinker's protobuf
 * wire carries in `bytes` fields (token ids as int32, tensors as float32,
 * int64 or bfloat16). Reads copy, so the result is aligned and owns its
 * memory; a payload that is not a whole number of elements is refused,
 * naming the field.
 *
 * @module
 */

import { InvalidArgumentError } from "../../runtime/errors.ts";

/** Whether this machine stores numbers little-endian (then bytes are copied as they are). */
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws unless `bytes` holds whole elements of `size` bytes; returns their count. */
function count(bytes: Uint8Array, size: number, field: string, what: string) {
  if (bytes.length % size !== 0) {
    throw new InvalidArgumentError(
      field,
      `${field} must hold ${what} values (${size} bytes each): got ${bytes.length} bytes`,
    );
  }
  return bytes.length / size;
}

/** An aligned copy of `bytes`' buffer range. */
function copy(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

/** int32 values from little-endian bytes. */
export function readInt32s(bytes: Uint8Array, field: string): Int32Array {
  const n = count(bytes, 4, field, "int32");
  if (LITTLE) return new Int32Array(copy(bytes));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getInt32(4 * i, true);
  return out;
}

/** float32 values from little-endian bytes. */
export function readFloat32s(bytes: Uint8Array, field: string): Float32Array {
  const n = count(bytes, 4, field, "float32");
  if (LITTLE) return new Float32Array(copy(bytes));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
  return out;
}

/** int64 values from little-endian bytes. */
export function readInt64s(bytes: Uint8Array, field: string): BigInt64Array {
  const n = count(bytes, 8, field, "int64");
  if (LITTLE) return new BigInt64Array(copy(bytes));
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getBigInt64(8 * i, true);
  return out;
}

/**
 * bfloat16 values (the upper halves of float32s) from little-endian bytes,
 * widened to float32 exactly: each becomes its 16 bits shifted up by 16.
 */
export function readBfloat16s(bytes: Uint8Array, field: string): Float32Array {
  const n = count(bytes, 2, field, "bfloat16");
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    bits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
  }
  return new Float32Array(bits.buffer);
}

/** Little-endian bytes of int32 values (each must be an int32: the caller checks). */
export function int32Bytes(values: ArrayLike<number>): Uint8Array {
  const a = values instanceof Int32Array ? values : Int32Array.from(values);
  return littleEndian(a, 4);
}

/** Little-endian bytes of float32 values (doubles are rounded to float32; NaN stays NaN). */
export function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const a = values instanceof Float32Array ? values : Float32Array.from(values);
  return littleEndian(a, 4);
}

/** Little-endian bytes of int64 values (each must be a safe integer: the caller checks). */
export function int64Bytes(values: ArrayLike<number>): Uint8Array {
  const a = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) a[i] = BigInt(values[i]);
  return littleEndian(a, 8);
}

/** Little-endian bytes of byte offsets (int64). */
export function offsetBytes(offsets: readonly number[]): Uint8Array {
  return int64Bytes(offsets);
}

function littleEndian(
  a: Int32Array | Float32Array | BigInt64Array,
  size: number,
): Uint8Array {
  const out = new Uint8Array(
    a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength),
  );
  if (!LITTLE) {
    for (let i = 0; i < out.length; i += size) {
      out.subarray(i, i + size).reverse();
    }
  }
  return out;
}
