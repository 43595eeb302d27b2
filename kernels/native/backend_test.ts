import assert from "node:assert/strict";
import { backendConformance } from "../_conformance.ts";
import { Rng } from "../cpu/_random.ts";
import { nativeUnavailableReason, openNativeBackend } from "./backend.ts";

const native = openNativeBackend();
const reason = nativeUnavailableReason();
const requireAll = Deno.env.get("BIOS_REQUIRE_ALL") === "1";

Deno.test("openNativeBackend() gives null and names the package when OpenBLAS is missing", () => {
  const paths = ["/nonexistent/libopenblas.so.0"];
  assert.equal(openNativeBackend({ paths }), null);
  const why = nativeUnavailableReason({ paths });
  assert.match(why ?? "", /libopenblas0-pthread/);
  assert.ok(!why!.includes("\n"), "one line");
});

if (native === null) {
  if (requireAll) {
    Deno.test("native backend is available (BIOS_REQUIRE_ALL=1)", () => {
      throw new Error(`native backend required but unavailable: ${reason}`);
    });
  } else {
    console.log(`skipping native backend tests: ${reason}`);
    Deno.test({
      name:
        "native backend tests (skipped: OpenBLAS unavailable, see the line above)",
      ignore: true,
      fn() {},
    });
  }
} else {
  Deno.test("NativeBackend runs gemm through OpenBLAS, bit-identical run to run", async () => {
    assert.equal(native.name, "native");
    assert.match(native.device, /OpenBLAS/);
    const a = native.fromArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
    assert.deepEqual([...(await native.read(native.gemm(a, a)))], [
      7,
      10,
      15,
      22,
    ]);
    const rng = new Rng(21);
    const x = native.fromArray(rng.floats(300 * 257), [300, 257]);
    const w = native.fromArray(rng.floats(129 * 257), [129, 257]);
    const y1 = await native.read(native.linear(x, w).y);
    const y2 = await native.read(native.linear(x, w).y);
    assert.deepEqual(y1, y2);
  });

  backendConformance("native", () => native, { abs: 1e-5, rel: 1e-4 });
}
