/**
 * The process's compute backend, chosen once and shared by every actor here.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { selectBackend } from "../kernels/select.ts";

let chosen: Promise<{ backend: Backend; reason: string }> | undefined;

/**
 * The backend this process computes with (see `kernels/select.ts` for the
 * rules and `BIOS_BACKEND`). The first call decides; later calls share it.
 */
export function sharedBackend(): Promise<{ backend: Backend; reason: string }> {
  chosen ??= selectBackend();
  return chosen;
}
