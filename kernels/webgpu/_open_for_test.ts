/**
 * Opens the WebGPU backend for tests: when no adapter exists the tests skip
 * with one line naming mesa-vulkan-drivers, unless BIOS_REQUIRE_ALL=1, in
 * which case they fail.
 *
 * @module
 */

import { openWebGpuBackend, type WebGpuBackend } from "./backend.ts";

/** The line printed (and the ignored test's name) when no adapter exists. */
export const NO_ADAPTER =
  "webgpu tests skipped: no WebGPU adapter (on a machine without a GPU: apt-get install mesa-vulkan-drivers)";

let shared: Promise<WebGpuBackend | null> | null = null;

/** One backend shared by the webgpu test files of a process (autotune off). */
export function testBackend(): Promise<WebGpuBackend | null> {
  return shared ??= openWebGpuBackend({ autotune: false });
}

/**
 * Registers the test that stands in for a missing adapter and returns false,
 * or returns true when the adapter exists.
 */
export function haveAdapter(be: WebGpuBackend | null): be is WebGpuBackend {
  if (be) return true;
  if (Deno.env.get("BIOS_REQUIRE_ALL") === "1") {
    Deno.test("webgpu adapter is required (BIOS_REQUIRE_ALL=1)", () => {
      throw new Error(`${NO_ADAPTER}; BIOS_REQUIRE_ALL=1 makes this a failure`);
    });
  } else {
    console.log(NO_ADAPTER);
    Deno.test({ name: NO_ADAPTER, ignore: true, fn: () => {} });
  }
  return false;
}

const limited = new Map<number, Promise<WebGpuBackend | null>>();

/**
 * A backend whose tensors split past `maxBindingBytes` (autotune off), one
 * per limit per process: the split paths at small sizes.
 */
export function testBackendWithLimit(
  maxBindingBytes: number,
): Promise<WebGpuBackend | null> {
  let be = limited.get(maxBindingBytes);
  if (!be) {
    be = openWebGpuBackend({ autotune: false, maxBindingBytes });
    limited.set(maxBindingBytes, be);
  }
  return be;
}

let gpuKernels: Promise<WebGpuBackend | null> | null = null;

/**
 * A backend that runs the kernels chosen for real GPUs (workgroup-memory
 * tiles, storage-fed operands) whatever the adapter (autotune off), so that
 * lavapipe checks the paths a discrete GPU takes.
 */
export function testBackendGpuKernels(): Promise<WebGpuBackend | null> {
  return gpuKernels ??= openWebGpuBackend({
    autotune: false,
    gpuKernels: true,
  });
}
