/**
 * A base model's whole-model weights on a device, uploaded once per
 * (backend, base model) and shared by the samplers that run it: each holder
 * takes a reference, and the last one to let go frees the tensors. A sampler
 * then costs only its adapter snapshot and its KV cache.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import {
  freeStage,
  splitLayers,
  type StageRange,
  type StageWeights,
  uploadStage,
} from "../model/stage_weights.ts";
import type { BaseModel } from "./base_models.ts";

/** One reference to a model's shared device weights. */
export interface BaseWeightsLease {
  /** The whole model as one stage (embedding, every layer, head). */
  readonly range: StageRange;
  /** The uploaded tensors: read them, never free or write them. */
  readonly weights: StageWeights;
  /** Let go of this reference (idempotent); the last one frees the tensors. */
  release(): void;
}

interface Entry {
  refs: number;
  range: StageRange;
  weights: StageWeights;
}

const uploaded = new WeakMap<Backend, Map<string, Entry>>();

/**
 * Take a reference to `base`'s whole-model weights on `be`, uploading them if
 * no one holds them.
 *
 * @example
 * ```ts ignore
 * const lease = acquireBaseWeights(be, await loadBaseModel("test/tiny"));
 * const stage = new Stage(be, base.config, lease.range, lease.weights);
 * // …
 * lease.release();
 * ```
 */
export function acquireBaseWeights(
  be: Backend,
  base: BaseModel,
): BaseWeightsLease {
  let byName = uploaded.get(be);
  if (!byName) uploaded.set(be, byName = new Map());
  let entry = byName.get(base.name);
  if (!entry) {
    const range = splitLayers(base.config.numLayers, 1)[0];
    const weights = uploadStage(be, base.config, base.tensors, range);
    entry = { refs: 0, range, weights };
    byName.set(base.name, entry);
  }
  entry.refs++;
  const held = entry;
  const map = byName;
  let released = false;
  return {
    range: held.range,
    weights: held.weights,
    release() {
      if (released) return;
      released = true;
      if (--held.refs > 0) return;
      if (map.get(base.name) === held) map.delete(base.name);
      freeStage(be, held.weights);
    },
  };
}

/**
 * How many references each model's shared weights on `be` have (models no
 * one holds are absent). For tests and diagnostics.
 */
export function baseWeightsRefs(be: Backend): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, e] of uploaded.get(be) ?? []) out.set(name, e.refs);
  return out;
}
