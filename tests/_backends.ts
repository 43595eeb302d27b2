/**
 * The backends a cross-backend test runs on, each with how to open it and
 * the Debian package it needs (for the one-line skip message).
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { openNativeBackend } from "../kernels/native/backend.ts";
import {
  testBackend,
  testBackendGpuKernels,
} from "../kernels/webgpu/_open_for_test.ts";

/** [name, open (null when unavailable), package to install]. */
export const TEST_BACKENDS: readonly [
  string,
  () => Backend | null | Promise<Backend | null>,
  string,
][] = [
  ["cpu", () => new CpuBackend(), ""],
  ["native", () => openNativeBackend(), "libopenblas0-pthread"],
  ["webgpu", () => testBackend(), "mesa-vulkan-drivers"],
  // The kernels a discrete GPU runs, on whatever adapter there is.
  ["webgpu-gpu-kernels", () => testBackendGpuKernels(), "mesa-vulkan-drivers"],
];
