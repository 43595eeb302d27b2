/**
 * Central finite-difference gradient checking for backward kernels.
 *
 * The scalar loss is L = Σ_o Σ_i upstream_o[i] · output_o[i], summed in float64.
 * For each probed input element x, the numeric gradient is
 * (L(x + eps) − L(x − eps)) / (2 eps), with the perturbation applied to the f32
 * input in place (and undone). It passes when
 * |numeric − analytic| ≤ atol + rtol · max(|numeric|, |analytic|).
 * Defaults: eps 1e-3, rtol 1e-2, atol 1e-3 — f32 outputs of size ~1 carry
 * rounding noise ~1e-7 / 2e-3 ≈ 5e-5 per term into the numeric gradient.
 *
 * @module
 */

/** One gradient check: inputs, a forward over them, upstream and analytic grads. */
export interface FdCase {
  /** Shown in failure messages. */
  name: string;
  /** Input arrays; `forward` must read them (they are perturbed in place). */
  inputs: Float32Array[];
  /** Computes the outputs from the current `inputs`. */
  forward: () => Float32Array[];
  /** One upstream gradient per output (same lengths). */
  upstream: Float32Array[];
  /** Analytic d L / d inputs[i]; null skips that input. */
  grads: (Float32Array | null)[];
}

/** Tolerances and probing of {@linkcode checkGradients}. */
export interface FdOptions {
  /** Perturbation. @default {1e-3} */
  eps?: number;
  /** Relative tolerance. @default {1e-2} */
  rtol?: number;
  /** Absolute tolerance. @default {1e-3} */
  atol?: number;
  /** Probe at most this many elements per input, evenly strided. @default {64} */
  maxProbes?: number;
}

/** The error a failed gradient check throws. */
export class GradientCheckError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "GradientCheckError";
  }
}

function loss(outputs: Float32Array[], upstream: Float32Array[]): number {
  let s = 0;
  for (let o = 0; o < outputs.length; o++) {
    const out = outputs[o];
    const up = upstream[o];
    if (out.length !== up.length) {
      throw new GradientCheckError(
        `output ${o} has ${out.length} elements but its upstream has ${up.length}`,
      );
    }
    for (let i = 0; i < out.length; i++) s += up[i] * out[i];
  }
  return s;
}

/**
 * Compares analytic gradients with central differences; throws
 * {@linkcode GradientCheckError} naming the worst element on failure.
 * Returns the largest |numeric − analytic| seen.
 *
 * @example d(Σ u·x²)/dx = 2 u x
 * ```ts
 * import { checkGradients } from "./_fd.ts";
 * const x = new Float32Array([0.5, -1, 2]);
 * const u = new Float32Array([1, 2, 3]);
 * checkGradients({
 *   name: "square",
 *   inputs: [x],
 *   forward: () => [x.map((v) => v * v)],
 *   upstream: [u],
 *   grads: [x.map((v, i) => 2 * u[i] * v)],
 * });
 * ```
 */
export function checkGradients(c: FdCase, opts: FdOptions = {}): number {
  const eps = opts.eps ?? 1e-3;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-3;
  const maxProbes = opts.maxProbes ?? 64;
  let worst = 0;
  for (let k = 0; k < c.inputs.length; k++) {
    const g = c.grads[k];
    if (g === null) continue;
    const x = c.inputs[k];
    if (g.length !== x.length) {
      throw new GradientCheckError(
        `${c.name}: grad ${k} has ${g.length} elements, input has ${x.length}`,
      );
    }
    const stride = Math.max(1, Math.floor(x.length / maxProbes));
    for (let i = 0; i < x.length; i += stride) {
      const orig = x[i];
      x[i] = orig + eps;
      const plusX = x[i];
      const lp = loss(c.forward(), c.upstream);
      x[i] = orig - eps;
      const minusX = x[i];
      const lm = loss(c.forward(), c.upstream);
      x[i] = orig;
      // divide by the step actually taken in f32
      const numeric = (lp - lm) / (plusX - minusX);
      const err = Math.abs(numeric - g[i]);
      worst = Math.max(worst, err);
      if (err > atol + rtol * Math.max(Math.abs(numeric), Math.abs(g[i]))) {
        throw new GradientCheckError(
          `${c.name}: d/d input ${k}[${i}]: analytic ${
            g[i]
          }, numeric ${numeric} ` +
            `(|diff| ${
              err.toExponential(3)
            } > atol ${atol} + rtol ${rtol} · max)`,
        );
      }
    }
  }
  return worst;
}
