/**
 * WGSL snippets for fixed-order workgroup reductions (a tree over `RW` lanes,
 * the same order on every run).
 *
 * @module
 */

/** Lanes of the per-row reduction workgroups. */
export const RW = 64;

/**
 * WGSL declarations of `reduceSum(lid, v)` and `reduceMax(lid, v)`: every lane
 * gets the reduction of all lanes' `v`. Call from uniform control flow only.
 */
export const REDUCE_FNS = `var<workgroup> red: array<f32, ${RW}>;
fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${RW / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red[0]);
  workgroupBarrier();
  return r;
}
fn reduceMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${RW / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&red[0]);
  workgroupBarrier();
  return r;
}`;

/** WGSL entry-point parameters giving `row` (the workgroup's flat index) and `lid`. */
export const ROW_ARGS = `@builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

/** WGSL expression of the row handled by a workgroup under {@linkcode ROW_ARGS}. */
export const ROW_INDEX = `(wid.y * nwg.x + wid.x)`;
