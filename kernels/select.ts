/**
 * Choosing the compute backend: `BIOS_BACKEND=cpu|native|webgpu` forces one;
 * otherwise native (OpenBLAS) when it loads, else cpu.
 *
 * @module
 */
import type { Backend } from "./backend.ts";
import { CpuBackend } from "./cpu/backend.ts";
import {
  nativeUnavailableReason,
  openNativeBackend,
} from "./native/backend.ts";

/** Pick the backend for this process, with a one-line reason. */
export function selectBackend(
  env: { get(key: string): string | undefined } = Deno.env,
): Promise<{ backend: Backend; reason: string }> {
  const forced = env.get("BIOS_BACKEND");
  if (forced === "cpu") {
    return Promise.resolve({
      backend: new CpuBackend(),
      reason: "BIOS_BACKEND=cpu",
    });
  }
  const native = openNativeBackend();
  if (forced === "native") {
    if (!native) {
      throw new Error(`BIOS_BACKEND=native but ${nativeUnavailableReason()}`);
    }
    return Promise.resolve({ backend: native, reason: "BIOS_BACKEND=native" });
  }
  if (native) {
    return Promise.resolve({
      backend: native,
      reason: "no GPU adapter; OpenBLAS found: using native",
    });
  }
  return Promise.resolve({
    backend: new CpuBackend(),
    reason:
      `no GPU adapter; ${nativeUnavailableReason()}: using the cpu backend`,
  });
}
