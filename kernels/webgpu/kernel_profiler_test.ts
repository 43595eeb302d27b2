import assert from "node:assert/strict";
import { haveAdapter, testBackend } from "./_open_for_test.ts";
import { rand } from "./_test_data.ts";
import { openWebGpuBackend } from "./backend.ts";

const plain = await testBackend();
const opts = { sanitizeOps: false, sanitizeResources: false };

if (haveAdapter(plain)) {
  Deno.test({
    name:
      "webgpu profileKernels times each dispatch by kernel and grid, and leaves results unchanged",
    ...opts,
    fn: async () => {
      const be = await openWebGpuBackend({
        autotune: false,
        profileKernels: true,
      });
      assert.ok(be, "the adapter that opened without profiling opens with it");
      const prof = be.ctx.profiler!;
      const a = rand(70 * 90, 1), b = rand(90 * 50, 2);
      const run = async (x: typeof be | typeof plain) => {
        const c = x.gemm(x.fromArray(a, [70, 90]), x.fromArray(b, [90, 50]));
        return await x.read(c);
      };
      const got = await run(be);
      assert.deepEqual(got, await run(plain), "same kernels, same bits");
      const first = await prof.totals();
      const dispatches = [...first.values()].reduce((s, t) => s + t.count, 0);
      assert.ok(dispatches >= 1);
      for (const [label, t] of first) {
        assert.match(label, /^[a-z0-9_]+ \[\d+,\d+,\d+\]$/);
        assert.ok(t.ms >= 0 && Number.isFinite(t.ms), `${label}: ${t.ms}`);
      }
      assert.ok(
        [...first.values()].some((t) => t.ms > 0),
        "some dispatch took measurable GPU time",
      );
      await run(be);
      const second = await prof.totals();
      for (const [label, t] of first) {
        assert.equal(second.get(label)!.count, 2 * t.count, label);
      }
      await prof.reset();
      assert.equal((await prof.totals()).size, 0);
      be.destroy();
    },
  });
}
