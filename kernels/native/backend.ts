/**
 * The native backend: the CPU reference backend with every matrix product
 * (gemm, linear, linearBackward) run by OpenBLAS's `cblas_sgemm`. All other
 * ops are the CPU backend's.
 *
 * @module
 */

import { CpuBackend } from "../cpu/backend.ts";
import { loadOpenBlas, type OpenBlas, OPENBLAS_PATHS } from "./openblas.ts";

/**
 * {@linkcode CpuBackend} with OpenBLAS matrix products (name "native").
 * Made by {@linkcode openNativeBackend}.
 */
export class NativeBackend extends CpuBackend {
  /** "native" */
  override readonly name: string = "native";
  /** The OpenBLAS build in use. */
  override readonly device: string;

  /** Prefer {@linkcode openNativeBackend}, which finds OpenBLAS. */
  constructor(blas: OpenBlas) {
    super(blas.gemm);
    this.device = blas.description;
  }
}

/** Where to look for OpenBLAS. */
export interface NativeOptions {
  /** Library names or paths, tried in order. @default {OPENBLAS_PATHS} */
  paths?: readonly string[];
}

/**
 * The native backend, or null when OpenBLAS cannot be loaded (see
 * {@linkcode nativeUnavailableReason}).
 *
 * @example
 * ```ts
 * import { nativeUnavailableReason, openNativeBackend } from "./backend.ts";
 * const be = openNativeBackend();
 * console.log(be?.device ?? nativeUnavailableReason());
 * ```
 */
export function openNativeBackend(
  opts: NativeOptions = {},
): NativeBackend | null {
  const got = loadOpenBlas(opts.paths ?? OPENBLAS_PATHS);
  return got.ok ? new NativeBackend(got.blas) : null;
}

/**
 * One line saying why {@linkcode openNativeBackend} gives null (naming the
 * package `libopenblas0-pthread`), or null when it is available.
 */
export function nativeUnavailableReason(
  opts: NativeOptions = {},
): string | null {
  const got = loadOpenBlas(opts.paths ?? OPENBLAS_PATHS);
  return got.ok ? null : got.reason;
}
