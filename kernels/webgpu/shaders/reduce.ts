/**
 * WGSL snippets for fixed-order workgroup reductions (a tree over `RW` lanes,
 * the same order on every run).
 *
 * @module
 */

/** Lanes of the per-row reduction workgroups. */
export const RW = 64;

/**
 * WGSL declarations of `reduceSum(lid, v)`, `reduceMax(lid, v)` and
 * `reduceMin(lid, v)` over `lanes` lanes (a power of two): every lane gets
 * the reduction of all lanes' `v`, combined in a fixed tree order. Call from
 * uniform control flow only. A tree also keeps each lane's loop count small:
 * lavapipe stops any invocation after 65535 loop iterations in total.
 */
export function reduceFns(lanes: number): string {
  const fn = (
    name: string,
    type: string,
    op: (a: string, b: string) => string,
  ) => `
fn ${name}(lid: u32, v: ${type}) -> ${type} {
  ${name}Buf[lid] = v;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${name}Buf[lid] = ${
    op(`${name}Buf[lid]`, `${name}Buf[lid + s]`)
  }; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&${name}Buf[0]);
  workgroupBarrier();
  return r;
}
var<workgroup> ${name}Buf: array<${type}, ${lanes}>;`;
  return fn("reduceSum", "f32", (a, b) => `${a} + ${b}`) +
    fn("reduceMax", "f32", (a, b) => `max(${a}, ${b})`) +
    fn("reduceMinU", "u32", (a, b) => `min(${a}, ${b})`);
}

/** {@linkcode reduceFns} over {@linkcode RW} lanes. */
export const REDUCE_FNS: string = reduceFns(RW);

/** WGSL entry-point parameters giving `row` (the workgroup's flat index) and `lid`. */
export const ROW_ARGS = `@builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32`;

/** WGSL expression of the row handled by a workgroup under {@linkcode ROW_ARGS}. */
export const ROW_INDEX = `(wid.y * nwg.x + wid.x)`;
