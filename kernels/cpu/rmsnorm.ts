/**
 * RMSNorm (Llama): y = x / sqrt(mean(x²) + eps) · w.
 *
 * Shapes: x, y, dx, dy [N,C]; w, dw [C]; rstd [N].
 * Sums run over c = 0 … C−1 in float64.
 *
 * @module
 */

/** y[n,c] = x[n,c] · rstd[n] · w[c], rstd[n] = 1 / sqrt(mean_c x[n,c]² + eps). */
export function rmsNormForward(
  y: Float32Array,
  rstd: Float32Array,
  x: Float32Array,
  w: Float32Array,
  eps: number,
  n: number,
  c: number,
): void {
  for (let i = 0; i < n; i++) {
    const o = i * c;
    let ss = 0;
    for (let j = 0; j < c; j++) ss += x[o + j] * x[o + j];
    const r = Math.fround(1 / Math.sqrt(ss / c + eps));
    rstd[i] = r;
    for (let j = 0; j < c; j++) y[o + j] = x[o + j] * r * w[j];
  }
}

/**
 * dx and dw (dw is overwritten, summed over rows in order n = 0 … N−1).
 *
 * forward: y_c = x_c · r · w_c with r = (Σ x²/C + eps)^(-1/2), so dr/dx_c = −r³ x_c / C:
 *   dw_c = Σ_n dy_c x_c r
 *   dx_c = r · dy_c w_c − (r³ / C) · x_c · Σ_j dy_j w_j x_j
 */
export function rmsNormBackward(
  dx: Float32Array,
  dw: Float32Array,
  dy: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  n: number,
  c: number,
): void {
  const dwAcc = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    const o = i * c;
    const r = rstd[i];
    let dot = 0; // Σ_j dy_j w_j x_j
    for (let j = 0; j < c; j++) {
      dot += dy[o + j] * w[j] * x[o + j];
      dwAcc[j] += dy[o + j] * x[o + j] * r;
    }
    const k = (r * r * r * dot) / c;
    for (let j = 0; j < c; j++) dx[o + j] = r * dy[o + j] * w[j] - k * x[o + j];
  }
  for (let j = 0; j < c; j++) dw[j] = dwAcc[j];
}
