import { backendConformance } from "../_conformance.ts";
import {
  haveAdapter,
  testBackend,
  testBackendGpuKernels,
} from "./_open_for_test.ts";

const be = await testBackend();
if (haveAdapter(be)) {
  backendConformance("webgpu", () => be, { abs: 1e-4, rel: 1e-3 });
  // The kernels a discrete GPU runs (workgroup-memory tiles, split-k,
  // chunked attention backward), checked on whatever adapter there is; the
  // V = 32000 cases are left to the run above.
  backendConformance(
    "webgpu-gpu-kernels",
    async () => (await testBackendGpuKernels())!,
    {
      abs: 1e-4,
      rel: 1e-3,
      vocabWidth: false,
    },
  );
}
