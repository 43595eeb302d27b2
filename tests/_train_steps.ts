/**
 * A few AdamW training steps through a chain of stages, for tests that
 * compare backends: forward, loss Σ −logprob, backward, AdamW on every LoRA
 * tensor (dropout keyed by the step).
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import type { RowShape } from "../model/block.ts";
import type { Stage, StageContext } from "../model/stage.ts";
import { type LlamaConfig, llamaTensorShapes } from "../model/config.ts";
import { Prng } from "../model/prng.ts";
import type { NamedTensors } from "../model/stage_weights.ts";

/** Run `steps` steps; returns each step's loss and the final LoRA weights. */
export async function trainSteps(
  be: Backend,
  stages: readonly Stage[],
  ids: Int32Array,
  targets: Int32Array,
  rows: RowShape,
  steps: number,
): Promise<{ losses: number[]; params: Map<string, Float32Array> }> {
  const n = rows.batch * rows.seqLen;
  const losses: number[] = [];
  for (let step = 1; step <= steps; step++) {
    let x = be.fromInts(ids, [n]);
    const ctxs: StageContext[] = [];
    for (const s of stages) {
      const { out, ctx } = s.forward(
        x,
        rows,
        s.range.head ? be.fromInts(targets, [n]) : undefined,
        step,
      );
      ctxs.push(ctx);
      x = out;
    }
    losses.push((await be.read(x)).reduce((a, v) => a - v, 0));
    let d = be.fromArray(new Float32Array(n).fill(-1), [n]);
    be.free(x);
    for (let i = stages.length - 1; i >= 0; i--) {
      const dx = stages[i].backward(ctxs[i], d);
      be.free(d);
      if (dx) d = dx;
    }
    for (const s of stages) {
      const l = s.lora!;
      const ks = l.keys;
      be.adamw(
        ks.map((k) => l.params.get(k)!),
        ks.map((k) => l.grads.get(k)!),
        ks.map((k) => l.m.get(k)!),
        ks.map((k) => l.v.get(k)!),
        {
          lr: 1e-2,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-12,
          weightDecay: 0.01,
          step,
          gradScale: 1,
        },
      );
      l.zeroGrads();
    }
  }
  const params = new Map<string, Float32Array>();
  for (const s of stages) {
    for (const [k, t] of await s.lora!.toHost("params")) params.set(k, t.data);
  }
  return { losses, params };
}

/** Random base weights for `cfg` (norms 1, the rest normal(0, 0.05)), seeded. */
export function randomTensors(cfg: LlamaConfig, seed: number): NamedTensors {
  const rng = new Prng(seed);
  const out: NamedTensors = new Map();
  for (const [name, shape] of llamaTensorShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const norm = name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) data[i] = norm ? 1 : 0.05 * rng.normal();
    out.set(name, { shape, data });
  }
  return out;
}
