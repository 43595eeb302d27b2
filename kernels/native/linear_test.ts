// The folded LoRA linear layer (W' = W + scale·B A, used from FOLD_MIN_ROWS
// rows) against the CPU reference's unfolded composition.
import assert from "node:assert/strict";
import { assertClose } from "../_conformance.ts";
import { Rng } from "../cpu/_random.ts";
import { CpuBackend } from "../cpu/backend.ts";
import { openNativeBackend } from "./backend.ts";
import { FOLD_MIN_ROWS } from "./linear.ts";

const native = openNativeBackend();
const ref = new CpuBackend();
const TOL = { abs: 1e-5, rel: 1e-4 };

Deno.test({
  name:
    "native linear and linearBackward with LoRA match the CPU, folded (large N) and not",
  // Under BIOS_REQUIRE_ALL=1 a missing OpenBLAS is a failure, not a skip.
  ignore: native === null && Deno.env.get("BIOS_REQUIRE_ALL") !== "1",
  async fn() {
    if (!native) {
      throw new Error(
        "OpenBLAS unavailable (apt-get install libopenblas0-pthread)",
      );
    }
    const be = native;
    const rng = new Rng(31);
    for (
      const [n, inF, outF, rank] of [
        [FOLD_MIN_ROWS, 64, 96, 16],
        [FOLD_MIN_ROWS + 37, 72, 40, 8],
        [FOLD_MIN_ROWS - 1, 64, 96, 16],
      ]
    ) {
      const data = {
        x: rng.floats(n * inF),
        w: rng.floats(outF * inF, -0.5, 0.5),
        a: rng.floats(rank * inF, -0.5, 0.5),
        b: rng.floats(outF * rank, -0.5, 0.5),
        dy: rng.floats(n * outF),
      };
      const run = async (
        b: typeof ref,
      ): Promise<Float32Array[]> => {
        const x = b.fromArray(data.x, [n, inF]);
        const w = b.fromArray(data.w, [outF, inF]);
        const lora = {
          a: b.fromArray(data.a, [rank, inF]),
          b: b.fromArray(data.b, [outF, rank]),
          rank,
          scale: 2,
        };
        const f = b.linear(x, w, lora);
        const g = b.linearBackward(
          b.fromArray(data.dy, [n, outF]),
          x,
          w,
          lora,
          f.xa,
        );
        return await b.readMany([f.y, f.xa!, g.dx, g.da!, g.db!]);
      };
      const got = await run(be);
      const want = await run(ref);
      ["y", "xa", "dx", "da", "db"].forEach((name, i) =>
        assertClose(`${name} n=${n}`, got[i], want[i], TOL)
      );
      const again = await run(be);
      again.forEach((a, i) => assert.deepEqual(a, got[i], "bit-identical"));
    }
  },
});
