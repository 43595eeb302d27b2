/**
 * Chooses the compute backend: `BIOS_BACKEND=cpu|native|webgpu` forces one;
 * otherwise a real GPU → webgpu, else OpenBLAS → native, else the TypeScript
 * cpu backend, with a one-line reason naming what is missing.
 *
 * @module
 */

import type { Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/backend.ts";
import {
  nativeUnavailableReason,
  openNativeBackend,
} from "./native/backend.ts";
import { openWebGpuBackend, type WebGpuBackend } from "./webgpu/backend.ts";

/** The names `BIOS_BACKEND` accepts. */
export const BACKEND_NAMES = ["cpu", "native", "webgpu"] as const;

/** A forced backend is unknown or cannot be opened. */
export class BackendUnavailableError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "BackendUnavailableError";
  }
}

/** The environment reader {@linkcode selectBackend} needs (Deno.env fits). */
export interface EnvReader {
  /** The value of `key`, or undefined. */
  get(key: string): string | undefined;
}

const NO_ADAPTER =
  "no WebGPU adapter was found (on a machine without a GPU: apt-get install mesa-vulkan-drivers)";

/**
 * Opens the backend to use and says why in one line.
 *
 * @example
 * ```ts ignore
 * const { backend, reason } = await selectBackend();
 * console.log(reason); // e.g. "no GPU adapter; OpenBLAS loaded: using the native backend"
 * ```
 */
export async function selectBackend(
  env: EnvReader = Deno.env,
): Promise<{ backend: Backend; reason: string }> {
  const forced = env.get("BIOS_BACKEND")?.trim().toLowerCase();
  if (forced) {
    if (forced === "cpu") {
      return { backend: new CpuBackend(), reason: "BIOS_BACKEND=cpu" };
    }
    if (forced === "native") {
      const be = openNativeBackend();
      if (!be) {
        throw new BackendUnavailableError(
          `BIOS_BACKEND=native but OpenBLAS could not be loaded: ${nativeUnavailableReason()}`,
        );
      }
      return { backend: be, reason: `BIOS_BACKEND=native: ${be.device}` };
    }
    if (forced === "webgpu") {
      const be = await openWebGpuBackend();
      if (!be) {
        throw new BackendUnavailableError(
          `BIOS_BACKEND=webgpu but ${NO_ADAPTER}`,
        );
      }
      return { backend: be, reason: `BIOS_BACKEND=webgpu: ${be.device}` };
    }
    throw new BackendUnavailableError(
      `BIOS_BACKEND must be one of ${BACKEND_NAMES.join(", ")}: got ${
        JSON.stringify(forced)
      }`,
    );
  }
  let gpu: WebGpuBackend | null = null;
  try {
    gpu = await openWebGpuBackend({ autotune: false });
  } catch {
    gpu = null; // a broken driver counts as no adapter
  }
  let gpuNote = "no GPU adapter";
  if (gpu && !gpu.ctx.isFallback) {
    await gpu.tune();
    return {
      backend: gpu,
      reason: `GPU adapter ${gpu.device}: using the webgpu backend`,
    };
  }
  if (gpu) {
    gpuNote = `only a CPU WebGPU adapter (${gpu.ctx.adapterName})`;
    gpu.destroy();
  }
  const native = openNativeBackend();
  if (native) {
    return {
      backend: native,
      reason: `${gpuNote}; OpenBLAS loaded: using the native backend`,
    };
  }
  return {
    backend: new CpuBackend(),
    reason:
      `${gpuNote}; OpenBLAS not found (apt-get install libopenblas0-pthread): using the cpu backend`,
  };
}
