/**
 * Opens a backend by name for a benchmark worker: `cpu`, `native`, `webgpu`,
 * or `default` (what `selectBackend()` chooses). A backend that cannot be
 * opened gives a reason instead of throwing, so the table can say why.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import {
  nativeUnavailableReason,
  openNativeBackend,
} from "../kernels/native/backend.ts";
import { selectBackend } from "../kernels/select.ts";
import { openWebGpuBackend } from "../kernels/webgpu/backend.ts";

/** The names a worker's `--backend` accepts. */
export const WORKER_BACKENDS = ["cpu", "native", "webgpu", "default"] as const;

/** An opened backend, or why it could not be opened. */
export type Opened =
  | { ok: true; backend: Backend; reason?: string }
  | { ok: false; reason: string };

/** Open the backend called `name` (see {@linkcode WORKER_BACKENDS}). */
export async function openBackend(name: string): Promise<Opened> {
  try {
    switch (name) {
      case "cpu":
        return { ok: true, backend: new CpuBackend() };
      case "native": {
        const be = openNativeBackend();
        return be ? { ok: true, backend: be } : {
          ok: false,
          reason: nativeUnavailableReason() ?? "OpenBLAS not loaded",
        };
      }
      case "webgpu": {
        const be = await openWebGpuBackend();
        return be
          ? { ok: true, backend: be }
          : { ok: false, reason: "no WebGPU adapter" };
      }
      case "default": {
        const { backend, reason } = await selectBackend();
        return { ok: true, backend, reason };
      }
      default:
        return {
          ok: false,
          reason: `--backend must be one of ${
            WORKER_BACKENDS.join(", ")
          }: got ${JSON.stringify(name)}`,
        };
    }
  } catch (e) {
    return {
      ok: false,
      reason: `${name} failed to open: ${(e as Error).message}`,
    };
  }
}

/** Release a backend's device resources where it has any (WebGPU). */
export function closeBackend(be: Backend): void {
  const d = (be as Backend & { destroy?: () => void }).destroy;
  if (typeof d === "function") d.call(be);
}
