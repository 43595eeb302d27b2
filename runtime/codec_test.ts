import assert from "node:assert/strict";
import { decode, encode } from "./codec.ts";
import { CodecError } from "./errors.ts";

Deno.test("encode()/decode() round-trip plain values", () => {
  const value = {
    s: "héllo",
    n: 1.5,
    i: -7,
    b: true,
    nil: null,
    arr: [1, "two", [3]],
    nested: { deep: { x: 1 } },
    big: 2n ** 60n,
  };
  assert.deepEqual(decode(encode(value)), value);
});

Deno.test("encode() drops undefined keys instead of sending null", () => {
  assert.deepEqual(decode(encode({ a: 1, b: undefined })), { a: 1 });
});

Deno.test("encode()/decode() round-trip typed arrays as their own class", () => {
  const cases = [
    new Float32Array([1.5, -2.25, Math.PI, Infinity, -0]),
    new Float64Array([Math.E, -1e300]),
    new Int8Array([-128, 127]),
    new Int16Array([-32768, 32767]),
    new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]),
    new Uint8Array([0, 255, 7]),
    new Uint16Array([65535]),
    new Uint32Array([2 ** 32 - 1]),
    new BigInt64Array([-(2n ** 63n), 42n]),
    new BigUint64Array([2n ** 64n - 1n]),
  ];
  for (const ta of cases) {
    const back = decode(encode({ t: ta })) as { t: typeof ta };
    assert.equal(back.t.constructor, ta.constructor, ta.constructor.name);
    assert.deepEqual(back.t, ta);
  }
});

Deno.test("decode() gives NaN back bit-exact in a Float32Array", () => {
  const back = decode(encode(new Float32Array([NaN]))) as Float32Array;
  assert.ok(Number.isNaN(back[0]));
});

Deno.test("encode() sends a typed-array view's bytes only, decode() aligns them", () => {
  const base = new Float32Array([0, 1, 2, 3, 4, 5]);
  const view = base.subarray(2, 5); // byteOffset 8
  // A leading string shifts the payload to an odd offset inside the message.
  const back = decode(encode(["x", view])) as [string, Float32Array];
  assert.deepEqual(back[1], new Float32Array([2, 3, 4]));
  assert.equal(back[1].byteOffset, 0);
  assert.equal(back[1].buffer.byteLength, 12);
});

Deno.test("decode() copies: mutating the result leaves the wire bytes alone", () => {
  const bytes = encode(new Uint8Array([1, 2, 3]));
  const a = decode(bytes) as Uint8Array;
  a[0] = 99;
  assert.deepEqual(decode(bytes), new Uint8Array([1, 2, 3]));
});

Deno.test("encode()/decode() round-trip a large Float32Array (1 Mi elements, 4 MiB)", () => {
  const n = 1024 * 1024;
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.sin(i) * 1e3;
  const bytes = encode({ name: "w", shape: [1024, 1024], data: w });
  assert.ok(bytes.byteLength >= n * 4 && bytes.byteLength < n * 4 + 64);
  const back = decode(bytes) as { shape: number[]; data: Float32Array };
  assert.deepEqual(back.shape, [1024, 1024]);
  assert.ok(back.data instanceof Float32Array);
  assert.equal(back.data.length, n);
  assert.deepEqual(
    new Uint8Array(back.data.buffer),
    new Uint8Array(w.buffer),
  );
});

Deno.test("encode() throws CodecError for a function", () => {
  assert.throws(() => encode({ f: () => 1 }), CodecError);
});

Deno.test("decode() throws CodecError for truncated bytes", () => {
  const bytes = encode({ a: "a long enough string" });
  assert.throws(() => decode(bytes.subarray(0, 5)), CodecError);
});

Deno.test("decode() rejects a typed-array payload of the wrong length", () => {
  // fixext 2 (0xd5), type 0x10 (Float32Array), 2 bytes: not a multiple of 4.
  assert.throws(
    () => decode(new Uint8Array([0xd5, 0x10, 1, 2])),
    /multiple of 4 bytes: got 2/,
  );
});

Deno.test("decode copies typed arrays out of a Node Buffer view (whose slice() is a view)", async () => {
  const { Buffer } = await import("node:buffer");
  const bytes = encode({ ids: new Int32Array([5, 6, 7, 8]) });
  const pool = Buffer.alloc(bytes.length + 64, 0x4d);
  pool.set(bytes, 40);
  const view = pool.subarray(40, 40 + bytes.length);
  const back = decode(view) as { ids: Int32Array };
  assert.deepEqual([...back.ids], [5, 6, 7, 8]);
  pool.fill(0);
  assert.deepEqual([...back.ids], [5, 6, 7, 8], "a copy, not a view");
});
