import { backendConformance } from "../_conformance.ts";
import { haveAdapter, testBackend } from "./_open_for_test.ts";

const be = await testBackend();
if (haveAdapter(be)) {
  backendConformance("webgpu", () => be, { abs: 1e-4, rel: 1e-3 });
}
