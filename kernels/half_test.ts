import assert from "node:assert/strict";
import { halfToF32, narrowToHalf, widenHalf } from "./half.ts";

Deno.test("narrowToHalf rounds to nearest even in both formats, as torch does", () => {
  // Bit patterns as torch.tensor([...]).to(dtype).view(torch.int16) gives them.
  const xs = new Float32Array([
    1,
    0.1,
    -2.5,
    65504,
    65520,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    Infinity,
    0,
  ]);
  assert.deepEqual([...narrowToHalf(xs, "f16").bits], [
    0x3c00,
    0x2e66,
    0xc100,
    0x7bff,
    0x7c00, // past the largest half: rounds to infinity
    0x0001, // smallest subnormal
    0x0000, // half of it: ties to even (zero)
    0x0001, // 0.75 of it rounds up
    0x3c00, // halfway between 1 and the next half: ties to even (1)
    0x3c02, // halfway between 0x3c01 and 0x3c02: ties to even
    0x7c00,
    0x0000,
  ]);
  assert.deepEqual(
    [
      ...narrowToHalf(
        new Float32Array([1, 0.1, -2.5, 1 + 2 ** -8, 1 + 3 * 2 ** -8]),
        "bf16",
      ).bits,
    ],
    [0x3f80, 0x3dcd, 0xc020, 0x3f80, 0x3f82],
  );
  assert.ok(
    Number.isNaN(halfToF32(narrowToHalf(new Float32Array([NaN]), "bf16"))[0]),
  );
  assert.ok(
    Number.isNaN(halfToF32(narrowToHalf(new Float32Array([NaN]), "f16"))[0]),
  );
});

Deno.test("widenHalf is exact: every f16 and bf16 value survives a round trip", () => {
  for (const format of ["f16", "bf16"] as const) {
    const bits = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const wide = halfToF32({ bits, format });
    const back = narrowToHalf(wide, format).bits;
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(wide[i])) continue;
      assert.equal(back[i], i, `${format} 0x${i.toString(16)}`);
    }
  }
  const out = new Float32Array(5).fill(7);
  widenHalf(
    { bits: new Uint16Array([0x3c00, 0x4000, 0xc000]), format: "f16" },
    out,
    1,
    2,
    3,
  );
  assert.deepEqual([...out], [7, 7, 7, 2, -2]);
});
