/**
 * The wire codec: MessagePack with extension types for typed arrays.
 *
 * A typed array travels as its raw little-endian bytes inside a msgpack
 * extension whose type byte names the element type, so tensors cost no more
 * than their bytes. On decode the bytes are copied into a fresh, aligned
 * buffer (the extension payload sits at an arbitrary offset of the message).
 * Keys whose value is `undefined` are dropped, so optional fields stay absent
 * rather than turning into `null`.
 *
 * @module
 */

import { Decoder, Encoder, ExtensionCodec } from "@msgpack/msgpack";
import { CodecError } from "./errors.ts";

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

/** Extension type byte for each typed array (application range 0..127). */
export const TYPED_ARRAY_EXT_TYPES: Readonly<Record<string, number>> = {
  Float32Array: 0x10,
  Float64Array: 0x11,
  Int8Array: 0x12,
  Int16Array: 0x13,
  Int32Array: 0x14,
  Uint8Array: 0x15,
  Uint16Array: 0x16,
  Uint32Array: 0x17,
  BigInt64Array: 0x18,
  BigUint64Array: 0x19,
};

const CTORS: TypedArrayCtor[] = [
  Float32Array,
  Float64Array,
  Int8Array,
  Int16Array,
  Int32Array,
  Uint8Array,
  Uint16Array,
  Uint32Array,
  BigInt64Array,
  BigUint64Array,
];

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] ===
  1;

// Reverses each element's bytes in place (only used on big-endian hosts).
function swapBytes(bytes: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i < bytes.length; i += width) {
    bytes.subarray(i, i + width).reverse();
  }
}

const extensionCodec = new ExtensionCodec();
for (const ctor of CTORS) {
  const type = TYPED_ARRAY_EXT_TYPES[ctor.name];
  const width = ctor.BYTES_PER_ELEMENT;
  extensionCodec.register({
    type,
    encode(value: unknown): Uint8Array | null {
      // Exact class only: a Buffer or other subclass is not claimed here.
      if (
        value === null || typeof value !== "object" ||
        Object.getPrototypeOf(value) !== ctor.prototype
      ) return null;
      const ta = value as InstanceType<TypedArrayCtor>;
      const view = new Uint8Array(ta.buffer, ta.byteOffset, ta.byteLength);
      if (HOST_IS_LITTLE_ENDIAN) return view;
      const copy = view.slice();
      swapBytes(copy, width);
      return copy;
    },
    decode(data: Uint8Array): unknown {
      if (data.byteLength % width !== 0) {
        throw new CodecError(
          `${ctor.name} payload must be a multiple of ${width} bytes: got ${data.byteLength}`,
        );
      }
      // A fresh buffer at offset 0 (aligned). Not `data.slice()`: a Node
      // Buffer (what some transports hand over) slices to a view.
      const copy = new Uint8Array(data);
      if (!HOST_IS_LITTLE_ENDIAN) swapBytes(copy, width);
      return new ctor(copy.buffer, 0, copy.byteLength / width);
    },
  });
}

const encoder = new Encoder({
  extensionCodec,
  useBigInt64: true,
  ignoreUndefined: true,
});
const decoder = new Decoder({ extensionCodec, useBigInt64: true });

/**
 * Encodes a value to msgpack bytes. Plain objects, arrays, strings, numbers,
 * booleans, null, bigints, Dates and typed arrays are supported.
 *
 * @throws {CodecError} for values msgpack cannot carry (functions, symbols)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decode, encode } from "./codec.ts";
 * const back = decode(encode({ w: new Float32Array([1.5, -2]) })) as { w: Float32Array };
 * assert.deepEqual(back.w, new Float32Array([1.5, -2]));
 * ```
 */
export function encode(value: unknown): Uint8Array {
  try {
    return encoder.encode(value);
  } catch (e) {
    throw new CodecError(
      `value could not be encoded: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/**
 * Decodes msgpack bytes produced by {@link encode}.
 *
 * @throws {CodecError} for malformed or truncated bytes
 */
export function decode(bytes: Uint8Array): unknown {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError(
      `bytes could not be decoded: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
