/**
 * LoRA adapters on a Llama model's linear layers, in PEFT's layout.
 *
 * A module `m` with weight W [out,in] gains A [R,in] and B [out,R];
 * y = x Wᵀ + (alpha/R) · (x Aᵀ) Bᵀ. A starts as PEFT's kaiming-uniform
 * (uniform in ±1/sqrt(in)); B starts at zero, so an untrained adapter leaves
 * the model's output unchanged.
 *
 * @module
 */
import type { Backend, LoraWeights, Tensor } from "../kernels/backend.ts";
import type { LlamaConfig } from "./config.ts";
import { Prng } from "./prng.ts";

/** The linear layers LoRA can adapt, by their Hugging Face module names. */
export const LORA_TARGETS = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
  "lm_head",
] as const;

/** One adaptable module name. */
export type LoraTarget = typeof LORA_TARGETS[number];

/** What a LoRA adapter covers and how it is scaled. */
export interface LoraSpec {
  /** Rank R. */
  rank: number;
  /** Scale numerator: the update is multiplied by alpha / rank. */
  alpha: number;
  /** Dropout on the adapter's input during training, in [0, 1). */
  dropout: number;
  /** Adapted module names. */
  targets: readonly LoraTarget[];
  /** Seed of A's initialisation (and of dropout masks). */
  seed: number;
}

/**
 * Which targets follow from the anchor's flags, unless `targetModules` names them.
 *
 * @example
 * ```ts
 * resolveTargets({ trainAttn: true, trainMlp: false, trainUnembed: false });
 * // ["q_proj", "k_proj", "v_proj", "o_proj"]
 * ```
 */
export function resolveTargets(opts: {
  targetModules?: readonly string[];
  trainAttn?: boolean;
  trainMlp?: boolean;
  trainUnembed?: boolean;
}): LoraTarget[] {
  if (opts.targetModules && opts.targetModules.length > 0) {
    return LORA_TARGETS.filter((t) => opts.targetModules!.includes(t));
  }
  const out: LoraTarget[] = [];
  if (opts.trainAttn ?? true) out.push("q_proj", "k_proj", "v_proj", "o_proj");
  if (opts.trainMlp ?? true) out.push("gate_proj", "up_proj", "down_proj");
  if (opts.trainUnembed ?? true) out.push("lm_head");
  return out;
}

/**
 * The Hugging Face module path of a target: `model.layers.3.self_attn.q_proj`,
 * `model.layers.3.mlp.down_proj` or `lm_head`.
 */
export function modulePath(target: LoraTarget, layer: number): string {
  if (target === "lm_head") return "lm_head";
  const group = target.endsWith("_proj") && target.length === 6
    ? "self_attn"
    : "mlp";
  return `model.layers.${layer}.${group}.${target}`;
}

/** [out, in] of a target's base weight. */
export function moduleShape(
  cfg: LlamaConfig,
  target: LoraTarget,
): [number, number] {
  const c = cfg.hiddenSize, d = cfg.headDim;
  switch (target) {
    case "q_proj":
      return [cfg.numHeads * d, c];
    case "k_proj":
    case "v_proj":
      return [cfg.numKvHeads * d, c];
    case "o_proj":
      return [c, cfg.numHeads * d];
    case "gate_proj":
    case "up_proj":
      return [cfg.intermediateSize, c];
    case "down_proj":
      return [c, cfg.intermediateSize];
    case "lm_head":
      return [cfg.vocabSize, c];
  }
}

/** Every module path an adapter covers for layers [first, last), plus `lm_head` when asked. */
export function adaptedModules(
  cfg: LlamaConfig,
  spec: LoraSpec,
  layers: { first: number; last: number; head: boolean },
): { path: string; target: LoraTarget; shape: [number, number] }[] {
  const out: { path: string; target: LoraTarget; shape: [number, number] }[] =
    [];
  for (let l = layers.first; l < layers.last; l++) {
    for (const t of spec.targets) {
      if (t !== "lm_head") {
        out.push({
          path: modulePath(t, l),
          target: t,
          shape: moduleShape(cfg, t),
        });
      }
    }
  }
  if (layers.head && spec.targets.includes("lm_head")) {
    out.push({
      path: "lm_head",
      target: "lm_head",
      shape: moduleShape(cfg, "lm_head"),
    });
  }
  return out;
}

/** PEFT's tensor names for one module's A and B. */
export function peftKeys(path: string): { a: string; b: string } {
  return {
    a: `base_model.model.${path}.lora_A.weight`,
    b: `base_model.model.${path}.lora_B.weight`,
  };
}

/** A host copy of LoRA tensors (or their gradients / Adam moments), keyed by PEFT names. */
export type HostTensors = Map<string, { shape: number[]; data: Float32Array }>;

/**
 * The LoRA parameters of one pipeline stage, with gradient accumulators and
 * AdamW moments, all as backend tensors. Iteration order is fixed (sorted
 * PEFT keys), so optimizer steps and norms reduce in the same order every run.
 */
export class LoraSet {
  /** alpha / rank. */
  readonly scale: number;
  /** PEFT key → parameter. */
  readonly params: Map<string, Tensor> = new Map();
  /** PEFT key → accumulated gradient. */
  readonly grads: Map<string, Tensor> = new Map();
  /** PEFT key → Adam first moment. */
  readonly m: Map<string, Tensor> = new Map();
  /** PEFT key → Adam second moment. */
  readonly v: Map<string, Tensor> = new Map();
  /** Sorted PEFT keys. */
  readonly keys: string[];
  /** Optimizer steps taken. */
  step = 0;

  private constructor(
    readonly be: Backend,
    readonly spec: LoraSpec,
    readonly modules: {
      path: string;
      target: LoraTarget;
      shape: [number, number];
    }[],
    init: HostTensors,
    /** Parameters only (a sampler's snapshot): no gradients, no Adam moments. */
    readonly frozen = false,
  ) {
    this.scale = spec.alpha / spec.rank;
    const keys = modules.flatMap((mod) => {
      const k = peftKeys(mod.path);
      return [k.a, k.b];
    }).sort();
    const shapes = keys.map((key) => {
      const t = init.get(key);
      if (!t) throw new Error(`LoRA tensor ${key} is missing`);
      return t.shape;
    });
    // each map packed in key order: the optimizer and the gradient norm
    // cover a map in one pass
    for (const map of this.#maps()) {
      const ts = be.zerosPacked(shapes);
      keys.forEach((key, i) => map.set(key, ts[i]));
    }
    keys.forEach((key) => be.write(this.params.get(key)!, init.get(key)!.data));
    this.keys = keys;
  }

  /**
   * Fresh adapters: A from a seeded kaiming-uniform, B zero. Each module's A is
   * drawn from a PRNG seeded by (seed, module path), so a stage's values do not
   * depend on how the model is split.
   */
  static create(
    be: Backend,
    cfg: LlamaConfig,
    spec: LoraSpec,
    layers: { first: number; last: number; head: boolean },
  ): LoraSet {
    const modules = adaptedModules(cfg, spec, layers);
    const init: HostTensors = new Map();
    for (const mod of modules) {
      const [out, inp] = mod.shape;
      const rng = new Prng(hashSeed(spec.seed, mod.path));
      const a = new Float32Array(spec.rank * inp);
      const bound = 1 / Math.sqrt(inp);
      for (let i = 0; i < a.length; i++) {
        a[i] = (rng.nextFloat() * 2 - 1) * bound;
      }
      const k = peftKeys(mod.path);
      init.set(k.a, { shape: [spec.rank, inp], data: a });
      init.set(k.b, {
        shape: [out, spec.rank],
        data: new Float32Array(out * spec.rank),
      });
    }
    return new LoraSet(be, spec, modules, init);
  }

  /**
   * Adapters with given values (from a checkpoint); moments start at zero.
   * With `frozen`, only the parameters are allocated: the set can run
   * forward passes but never accumulates gradients or takes a step.
   */
  static fromHost(
    be: Backend,
    cfg: LlamaConfig,
    spec: LoraSpec,
    layers: { first: number; last: number; head: boolean },
    values: HostTensors,
    opts: { frozen?: boolean } = {},
  ): LoraSet {
    return new LoraSet(
      be,
      spec,
      adaptedModules(cfg, spec, layers),
      values,
      opts.frozen ?? false,
    );
  }

  /** The tensor maps this set holds: only `params` when frozen. */
  #maps(): Map<string, Tensor>[] {
    return this.frozen
      ? [this.params]
      : [this.params, this.grads, this.m, this.v];
  }

  #assertTrainable(op: string): void {
    if (this.frozen) {
      throw new Error(`${op} on a frozen LoRA set (it holds no gradients)`);
    }
  }

  /** The adapter of a module path, or undefined when it is not adapted. */
  weights(path: string): LoraWeights | undefined {
    const k = peftKeys(path);
    const a = this.params.get(k.a);
    const b = this.params.get(k.b);
    return a && b ? { a, b, scale: this.scale } : undefined;
  }

  /** Add a module's gradients into the accumulators. */
  accumulate(
    path: string,
    da: Tensor | undefined,
    db: Tensor | undefined,
  ): void {
    this.#assertTrainable("accumulate");
    const k = peftKeys(path);
    if (da) this.be.axpy(this.grads.get(k.a)!, da, 1);
    if (db) this.be.axpy(this.grads.get(k.b)!, db, 1);
  }

  /** Reset accumulated gradients to zero (in place). */
  zeroGrads(): void {
    this.#assertTrainable("zeroGrads");
    for (const key of this.keys) this.be.zero(this.grads.get(key)!);
  }

  /** Copy one of the tensor maps back to the host. */
  async toHost(which: "params" | "grads" | "m" | "v"): Promise<HostTensors> {
    return (await this.manyToHost([which]))[0];
  }

  /** Copy several tensor maps back at once (one read-back on a GPU). */
  async manyToHost(
    which: readonly ("params" | "grads" | "m" | "v")[],
  ): Promise<HostTensors[]> {
    const ts = which.flatMap((w) => this.keys.map((k) => this[w].get(k)!));
    const data = await this.be.readMany(ts);
    return which.map((_, j) => {
      const out: HostTensors = new Map();
      this.keys.forEach((k, i) => {
        const n = j * this.keys.length + i;
        out.set(k, { shape: [...ts[n].shape], data: data[n] });
      });
      return out;
    });
  }

  /** Replace values of one tensor map in place from host data (same keys and shapes). */
  load(which: "params" | "m" | "v", values: HostTensors): void {
    const dst = this[which];
    // all checked before any is written: a refused load changes nothing
    for (const key of this.keys) {
      const src = values.get(key);
      const cur = dst.get(key)!;
      if (!src) throw new Error(`LoRA tensor ${key} is missing`);
      if (
        src.shape.join(",") !== cur.shape.join(",") ||
        src.data.length !== cur.size
      ) {
        throw new Error(
          `LoRA tensor ${key} has shape [${src.shape}] (${src.data.length} values), expected [${cur.shape}]`,
        );
      }
    }
    for (const key of this.keys) {
      this.be.write(dst.get(key)!, values.get(key)!.data);
    }
  }

  /**
   * Device copies of the parameters and both moments (params, then m, then
   * v, each in key order and packed), for a commit point that never leaves
   * the device. The caller owns them; {@linkcode LoraSet.restore} copies
   * them back.
   */
  snapshot(): Tensor[] {
    const shapes = this.keys.map((k) => this.params.get(k)!.shape);
    const out: Tensor[] = [];
    for (const map of [this.params, this.m, this.v]) {
      const copies = this.be.zerosPacked(shapes);
      this.keys.forEach((k, i) => this.be.copy(copies[i], map.get(k)!));
      out.push(...copies);
    }
    return out;
  }

  /**
   * Copies a {@linkcode LoraSet.snapshot} back in place (gradients zeroed);
   * without `optimizer`, only the parameters, and the moments restart.
   */
  restore(snap: readonly Tensor[], optimizer: boolean): void {
    const n = this.keys.length;
    if (snap.length !== 3 * n) {
      throw new Error(
        `a LoRA snapshot of this set has ${3 * n} tensors: got ${snap.length}`,
      );
    }
    this.keys.forEach((k, i) => {
      const shape = this.params.get(k)!.shape.join(",");
      if (snap[i].shape.join(",") !== shape) {
        throw new Error(
          `LoRA snapshot tensor ${k} has shape [${
            snap[i].shape
          }], expected [${shape}]`,
        );
      }
    });
    this.keys.forEach((k, i) => {
      this.be.copy(this.params.get(k)!, snap[i]);
      if (optimizer) {
        this.be.copy(this.m.get(k)!, snap[n + i]);
        this.be.copy(this.v.get(k)!, snap[2 * n + i]);
      } else {
        this.be.zero(this.m.get(k)!);
        this.be.zero(this.v.get(k)!);
      }
    });
    this.zeroGrads();
  }

  /** Release every tensor. */
  dispose(): void {
    for (const map of this.#maps()) {
      for (const t of map.values()) this.be.free(t);
      map.clear();
    }
  }
}

/** Mix a seed and a string into a 32-bit seed (FNV-1a). */
export function hashSeed(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  h = Math.imul(h ^ Math.floor(seed / 0x100000000), 0x01000193) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}
