/**
 * The loops behind the CPU backend's layer ops (and the composition of its
 * linear layer from matrix products), as a table a faster host
 * backend can replace entry by entry (the native backend swaps in WebAssembly
 * SIMD versions) while keeping the CPU backend's shape checks and
 * allocation. Every entry fills its outputs completely.
 *
 * @module
 */

import { linearBackward, linearForward } from "./linear.ts";
import {
  logSoftmaxGatherBackward,
  logSoftmaxGatherForward,
} from "./log_softmax.ts";
import { rmsNormBackward, rmsNormForward } from "./rmsnorm.ts";
import { ropeForward } from "./rope.ts";
import { swigluBackward, swigluForward } from "./swiglu.ts";

/** The replaceable loops (signatures of the reference functions). */
export interface HostKernels {
  /** h = silu(gate) · up over n elements (see swiglu.ts). */
  swigluForward(
    h: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    n: number,
  ): void;
  /** dgate, dup of swigluForward (see swiglu.ts). */
  swigluBackward(
    dgate: Float32Array,
    dup: Float32Array,
    dh: Float32Array,
    gate: Float32Array,
    up: Float32Array,
    n: number,
  ): void;
  /** logprobs, lse of logits [n,v] (see log_softmax.ts). */
  logSoftmaxGatherForward: typeof logSoftmaxGatherForward;
  /** dlogits [n,v] (see log_softmax.ts). */
  logSoftmaxGatherBackward: typeof logSoftmaxGatherBackward;
  /** y, rstd of RMSNorm (see rmsnorm.ts). */
  rmsNormForward: typeof rmsNormForward;
  /** dx, dw of RMSNorm (see rmsnorm.ts). */
  rmsNormBackward: typeof rmsNormBackward;
  /** RoPE and its inverse (see rope.ts). */
  ropeForward: typeof ropeForward;
  /** y (and xa) of the LoRA linear layer from gemm products (see linear.ts). */
  linearForward: typeof linearForward;
  /** dx (and da, db) of the LoRA linear layer (see linear.ts). */
  linearBackward: typeof linearBackward;
}

/** The reference loops, with `exp` as SwiGLU's e^x. */
export function referenceKernels(
  exp: (x: number) => number = Math.exp,
): HostKernels {
  return {
    swigluForward: (h, gate, up, n) => swigluForward(h, gate, up, n, exp),
    swigluBackward: (dgate, dup, dh, gate, up, n) =>
      swigluBackward(dgate, dup, dh, gate, up, n, exp),
    logSoftmaxGatherForward,
    logSoftmaxGatherBackward,
    rmsNormForward,
    rmsNormBackward,
    ropeForward,
    linearForward,
    linearBackward,
  };
}
