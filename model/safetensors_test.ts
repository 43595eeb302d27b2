import assert from "node:assert/strict";
import {
  parseSafetensors,
  readSafetensors,
  readSafetensorsFile,
  SafetensorsError,
  writeSafetensors,
  writeSafetensorsFile,
} from "./safetensors.ts";

/** A safetensors file from a header object and raw data bytes, built by hand. */
function build(
  header: unknown,
  data: number[] | Uint8Array,
  headerLen?: bigint,
): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(
    0,
    headerLen ?? BigInt(json.length),
    true,
  );
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function le32f(...xs: number[]): number[] {
  const b = new Uint8Array(4 * xs.length);
  xs.forEach((x, i) => new DataView(b.buffer).setFloat32(4 * i, x, true));
  return [...b];
}

Deno.test("readSafetensors() decodes F32, F16, BF16, I32 and I64 from hand-built bytes", () => {
  const data = [
    ...le32f(1.5, -2), // F32 [2] at 0..8
    0x00,
    0x3c,
    0x00,
    0xc0,
    0x01,
    0x00,
    0x00,
    0x7c, // F16 1, -2, smallest subnormal, +inf at 8..16
    0x80,
    0x3f,
    0x40,
    0xc0, // BF16 1, -3 at 16..20
    0xff,
    0xff,
    0xff,
    0xff,
    0x07,
    0x00,
    0x00,
    0x00, // I32 -1, 7 at 20..28
    0xfe,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff,
    0xff, // I64 -2 at 28..36
  ];
  const bytes = build({
    __metadata__: { format: "pt" },
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    h: { dtype: "F16", shape: [2, 2], data_offsets: [8, 16] },
    b: { dtype: "BF16", shape: [2], data_offsets: [16, 20] },
    i: { dtype: "I32", shape: [2], data_offsets: [20, 28] },
    l: { dtype: "I64", shape: [], data_offsets: [28, 36] },
  }, data);
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual([...tensors.keys()], ["a", "h", "b", "i", "l"]);
  assert.deepEqual(tensors.get("a"), {
    dtype: "F32",
    shape: [2],
    data: new Float32Array([1.5, -2]),
  });
  assert.deepEqual(
    tensors.get("h")?.data,
    new Float32Array([1, -2, 2 ** -24, Infinity]),
  );
  assert.deepEqual(tensors.get("h")?.shape, [2, 2]);
  assert.deepEqual(tensors.get("b")?.data, new Float32Array([1, -3]));
  assert.deepEqual(tensors.get("i")?.data, new Int32Array([-1, 7]));
  assert.deepEqual(tensors.get("l"), {
    dtype: "I64",
    shape: [],
    data: new Int32Array([-2]),
  });
});

Deno.test("writeSafetensors() round-trips with sorted keys, metadata and 8-byte padding", () => {
  const tensors = new Map([
    ["z.weight", {
      shape: [2, 3],
      data: new Float32Array([1, 2, 3, 4, 5, 6.25]),
    }],
    ["a.ids", { shape: [3], data: new Int32Array([-5, 0, 2 ** 31 - 1]) }],
    ["empty", { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = writeSafetensors(tensors, { format: "pt", step: "3" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLen % 8, 0);
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  const header = JSON.parse(headerText);
  assert.deepEqual(Object.keys(header), [
    "__metadata__",
    "a.ids",
    "empty",
    "z.weight",
  ]);
  assert.deepEqual(header["a.ids"], {
    dtype: "I32",
    shape: [3],
    data_offsets: [0, 12],
  });
  assert.deepEqual(header["z.weight"].data_offsets, [12, 36]);
  assert.equal(bytes.length, 8 + headerLen + 36);
  const back = parseSafetensors(bytes);
  assert.deepEqual(back.metadata, { format: "pt", step: "3" });
  assert.deepEqual(back.tensors.get("z.weight"), {
    dtype: "F32",
    shape: [2, 3],
    data: tensors.get("z.weight")!.data,
  });
  assert.deepEqual(back.tensors.get("a.ids")?.data, tensors.get("a.ids")!.data);
  assert.deepEqual(back.tensors.get("empty")?.shape, [0, 4]);
  // Same input, same bytes (insertion order does not matter).
  const reversed = new Map([...tensors].reverse());
  assert.deepEqual(
    writeSafetensors(reversed, { step: "3", format: "pt" }),
    bytes,
  );
});

Deno.test("writeSafetensorsFile() and readSafetensorsFile() round-trip through disk", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/t.safetensors`;
    await writeSafetensorsFile(path, {
      w: { shape: [1, 2], data: new Float32Array([0.5, NaN]) },
    });
    const back = await readSafetensorsFile(path);
    assert.deepEqual(back.metadata, {});
    assert.deepEqual(back.tensors.get("w")?.data, new Float32Array([0.5, NaN]));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "t.safetensors",
    ]);
    await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
    await assert.rejects(() => readSafetensorsFile(path), (e: Error) => {
      assert.ok(e instanceof SafetensorsError);
      assert.match(e.message, new RegExp(`${path}: file is 3 bytes`));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readSafetensors() rejects malformed files clearly", async (t) => {
  const ok = { dtype: "F32", shape: [2], "data_offsets": [0, 8] };
  const cases: [string, Uint8Array, RegExp][] = [
    ["too short", new Uint8Array(4), /shorter than the 8-byte header length/],
    [
      "header past end",
      build({ a: ok }, le32f(1, 2), 10_000n),
      /header length 10000 runs past the end of the file/,
    ],
    [
      "not JSON",
      build("x", []).map((b, i) => i === 8 ? 0x7b : b),
      /not valid UTF-8 JSON/,
    ],
    ["not an object", build([1], []), /header must be a JSON object/],
    [
      "unknown dtype",
      build({ a: { ...ok, dtype: "F64" } }, le32f(1, 2)),
      /tensor a: unsupported dtype "F64"/,
    ],
    [
      "bad shape",
      build({ a: { ...ok, shape: [-1] } }, le32f(1, 2)),
      /tensor a: shape must be/,
    ],
    [
      "bad offsets",
      build({ a: { ...ok, data_offsets: [8, 0] } }, le32f(1, 2)),
      /tensor a: data_offsets must be/,
    ],
    [
      "offsets past end",
      build({ a: { ...ok, data_offsets: [4, 12] } }, le32f(1, 2)),
      /end 12 is past the data section \(8 bytes\)/,
    ],
    [
      "shape/bytes mismatch",
      build({ a: { ...ok, shape: [3] } }, le32f(1, 2)),
      /needs 12 bytes but data_offsets span 8/,
    ],
    [
      "overlap",
      build(
        { a: ok, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } },
        le32f(1, 2),
      ),
      /tensors a \[0, 8\) and b \[4, 8\) overlap/,
    ],
    [
      "bad metadata",
      build({ __metadata__: { n: 1 } }, []),
      /__metadata__.n must be a string/,
    ],
    [
      "I64 out of int32 range",
      build({ a: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, [
        0,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
      ]),
      /I64 element 0 is 4294967296, outside the int32 range/,
    ],
  ];
  for (const [name, bytes, pattern] of cases) {
    await t.step(name, () => {
      assert.throws(() => readSafetensors(bytes), (e: Error) => {
        assert.ok(e instanceof SafetensorsError, `${e}`);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("writeSafetensors() rejects a shape that disagrees with the data", () => {
  assert.throws(
    () => writeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }),
    /tensor w: shape \[2,2\] has 4 elements but data has 3/,
  );
  assert.throws(
    () => writeSafetensors({ "": { shape: [0], data: new Float32Array(0) } }),
    SafetensorsError,
  );
});
