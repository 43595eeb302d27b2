/**
 * SwiGLU gate of the Llama MLP: h = silu(gate) · up, silu(g) = g · σ(g).
 *
 * Shapes: gate, up, h and their gradients [N,F] (flat, `n` elements).
 *
 * @module
 */

/** h = silu(gate) · up. */
export function swigluForward(
  h: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  n: number,
  exp: (x: number) => number = Math.exp,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    h[i] = (g / (1 + exp(-g))) * up[i];
  }
}

/**
 * forward: h = g σ(g) · u
 *   dup   = dh · g σ(g)
 *   dgate = dh · u · σ(g) (1 + g (1 − σ(g)))
 */
export function swigluBackward(
  dgate: Float32Array,
  dup: Float32Array,
  dh: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  n: number,
  exp: (x: number) => number = Math.exp,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i];
    const sig = 1 / (1 + exp(-g));
    dup[i] = dh[i] * g * sig;
    dgate[i] = dh[i] * up[i] * sig * (1 + g * (1 - sig));
  }
}
