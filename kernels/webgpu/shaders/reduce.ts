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
var<workgroup> redOut: f32;
// Lane 0 adds the lanes' values in lane order, and workgroupUniformLoad hands
// the total to every lane: three barriers per reduction (a tree needs ~8,
// and lavapipe mis-runs dispatches that execute too many barriers).
fn reduceSum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  if (lid == 0u) {
    var s = red[0];
    for (var i = 1u; i < ${RW}u; i++) { s += red[i]; }
    redOut = s;
  }
  return workgroupUniformLoad(&redOut);
}
fn reduceMax(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  if (lid == 0u) {
    var s = red[0];
    for (var i = 1u; i < ${RW}u; i++) { s = max(s, red[i]); }
    redOut = s;
  }
  return workgroupUniformLoad(&redOut);
}`;

/** WGSL entry-point parameters giving `row` (the workgroup's flat index) and `lid`. */
export const ROW_ARGS = `@builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

/** WGSL expression of the row handled by a workgroup under {@linkcode ROW_ARGS}. */
export const ROW_INDEX = `(wid.y * nwg.x + wid.x)`;
