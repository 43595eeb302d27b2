/**
 * Helpers for 1-D kernels spread over a 2-D grid of workgroups (one dimension
 * alone caps at 65535 workgroups).
 *
 * @module
 */

/** Threads per workgroup of the 1-D kernels. */
export const WG = 64;

/** WGSL entry-point prologue giving the flat thread index `i`. */
export const FLAT = `@builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

/** WGSL expression of the flat thread index for {@linkcode FLAT}. */
export const FLAT_INDEX = `((wid.y * nwg.x + wid.x) * ${WG}u + lid)`;

/** Workgroup counts covering `n` threads of {@linkcode WG} each. */
export function grid(n: number, wg: number = WG): [number, number] {
  const total = Math.ceil(n / wg);
  if (total === 0) return [0, 1];
  const gx = Math.min(total, 32768);
  return [gx, Math.ceil(total / gx)];
}
