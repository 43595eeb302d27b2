/**
 * ParameterShard: one pipeline stage of a training run. It holds the frozen
 * base weights of a contiguous range of layers plus that range's LoRA
 * adapters and AdamW state, computes forward and backward for its range, and
 * applies its part of each optimizer step.
 *
 * Activations of a micro-batch stay here between its `forward` and
 * `backward`, keyed by the micro-batch id the trainer gives.
 *
 * @module
 */
import type { Actor } from "../runtime/actor.ts";
import { BiosError, registerWireError } from "../runtime/errors.ts";
import type { Backend, Tensor } from "../kernels/backend.ts";
import { LoraSet, type LoraSpec } from "../model/lora.ts";
import { Stage, type StageContext } from "../model/stage.ts";
import {
  freeStage,
  type StageRange,
  uploadStage,
} from "../model/stage_weights.ts";
import { loadBaseModel } from "./base_models.ts";
import { sharedBackend } from "./compute.ts";
import { fromWire, toWire, type WireTensors } from "./wire_tensors.ts";
import { StaleTrainerError } from "./run_journal.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type ShardRequest,
  ShardRequestSchema,
  type ShardSnapshot,
  type ShardState,
} from "../protocol/shard_messages.ts";
import {
  deviceHandoff,
  type DeviceRef,
  isDeviceRef,
} from "./device_handoff.ts";

/**
 * The shard is not the instance the trainer last spoke to (it restarted and
 * holds fresh state), or it lost a micro-batch's activations for that reason.
 * The trainer answers by restoring the last commit and replaying.
 */
export class ShardRestartedError extends BiosError {
  /** @param message what was found */
  constructor(message: string) {
    super("shard_restarted", message);
    this.name = "ShardRestartedError";
  }
}
registerWireError(ShardRestartedError);

/** How to build a shard. */
export interface ShardSpec {
  baseModel: string;
  range: StageRange;
  lora: LoraSpec;
}

export type { ShardSnapshot, ShardState };

/** Messages a shard handles (see `protocol/shard_messages.ts`). */
export type ShardMsg = ShardRequest;

/** The ParameterShard actor. */
export class ParamShard implements Actor<unknown, unknown> {
  #be!: Backend;
  #stage!: Stage;
  #lora!: LoraSet;
  #ctx = new Map<number, StageContext>();
  /** This instance's id: a restart makes a new one. */
  readonly #incarnation: string = crypto.randomUUID();
  /** The newest trainer epoch seen. */
  #epoch = 0;

  /** @param spec what to hold */
  constructor(readonly spec: ShardSpec) {}

  /** Load base weights for the range and create fresh adapters. */
  async init(): Promise<void> {
    this.#be = (await sharedBackend()).backend;
    const base = await loadBaseModel(this.spec.baseModel);
    const r = this.spec.range;
    const weights = uploadStage(this.#be, base.config, base.tensors, r);
    this.#lora = LoraSet.create(this.#be, base.config, this.spec.lora, {
      first: r.first,
      last: r.last,
      head: r.head,
    });
    this.#stage = new Stage(this.#be, base.config, r, weights, this.#lora);
  }

  /** Handle one message, parsed here by the protocol's schema. */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(ShardRequestSchema, raw, "");
    const be = this.#be;
    if (msg.epoch !== undefined) {
      if (msg.epoch < this.#epoch) {
        throw new StaleTrainerError(
          `trainer epoch ${msg.epoch} was replaced by epoch ${this.#epoch}`,
        );
      }
      this.#epoch = msg.epoch;
    }
    if (
      msg.type !== "ping" && msg.inc !== undefined &&
      msg.inc !== this.#incarnation
    ) {
      throw new ShardRestartedError(
        `shard instance ${this.#incarnation} is not the expected ${msg.inc}`,
      );
    }
    switch (msg.type) {
      case "forward": {
        const n = msg.rows.batch * msg.rows.seqLen;
        const hidden = [n, this.#stage.cfg.hiddenSize];
        const input = isDeviceRef(msg.input)
          ? this.#takeParked(msg.input, hidden)
          : msg.input instanceof Int32Array
          ? be.fromInts(msg.input, [n])
          : be.fromArray(msg.input, hidden);
        const targets = msg.targets ? be.fromInts(msg.targets, [n]) : undefined;
        const { out, ctx } = this.#stage.forward(
          input,
          msg.rows,
          targets,
          msg.dropoutKey,
        );
        if (msg.keep) {
          this.#release(msg.mb);
          this.#ctx.set(msg.mb, ctx);
        } else {
          this.#stage.release(ctx);
        }
        // No saved activation refers to the output: it is handed on whole.
        if (
          msg.handoff && (!this.#stage.range.head || msg.parkLogprobs)
        ) {
          return { handle: deviceHandoff.park(be, [out]) };
        }
        const host = await be.read(out);
        be.free(out);
        return host;
      }
      case "backward": {
        const ctx = this.#ctx.get(msg.mb);
        if (!ctx) {
          throw new Error(`no activations kept for micro-batch ${msg.mb}`);
        }
        this.#ctx.delete(msg.mb);
        const n = ctx.rows.batch * ctx.rows.seqLen;
        const shape = this.#stage.range.head
          ? [n]
          : [n, this.#stage.cfg.hiddenSize];
        const dout = isDeviceRef(msg.dout)
          ? this.#takeParked(msg.dout, shape)
          : be.fromArray(msg.dout, shape);
        const dx = this.#stage.backward(ctx, dout);
        be.free(dout);
        if (!dx) return null;
        if (msg.handoff) return { handle: deviceHandoff.park(be, [dx]) };
        const host = await be.read(dx);
        be.free(dx);
        return host;
      }
      case "release":
        this.#release(msg.mb);
        return null;
      case "ping":
        return this.#incarnation;
      case "grad_norm_sq": {
        const grads = this.#lora.keys.map((k) => this.#lora.grads.get(k)!);
        if (msg.park) {
          return {
            handle: deviceHandoff.park(be, [be.sumOfSquaresTensor(grads)]),
          };
        }
        return await be.sumOfSquares(grads);
      }
      case "optim_step": {
        const keys = this.#lora.keys;
        be.adamw(
          keys.map((k) => this.#lora.params.get(k)!),
          keys.map((k) => this.#lora.grads.get(k)!),
          keys.map((k) => this.#lora.m.get(k)!),
          keys.map((k) => this.#lora.v.get(k)!),
          msg.step,
        );
        this.#lora.step = msg.step.step;
        this.#lora.zeroGrads();
        return null;
      }
      case "commit": {
        const snap: ShardSnapshot = {
          snapshot: deviceHandoff.park(be, this.#lora.snapshot()),
          step: this.#lora.step,
        };
        return snap;
      }
      case "zero_grads":
        this.#lora.zeroGrads();
        return null;
      case "get_grads": {
        const keys = this.#lora.keys;
        if (msg.park) {
          const shapes = keys.map((k) => this.#lora.grads.get(k)!.shape);
          const copies = be.zerosPacked(shapes);
          keys.forEach((k, i) => be.copy(copies[i], this.#lora.grads.get(k)!));
          return { handle: deviceHandoff.park(be, copies) };
        }
        return toWire((await this.#lora.manyToHost(["grads"]))[0]);
      }
      case "add_grads": {
        const keys = this.#lora.keys;
        // Checked whole before any is added: a refused sum changes nothing.
        const add: Tensor[] = [];
        if (isDeviceRef(msg.grads)) {
          const got = deviceHandoff.take(msg.grads.handle);
          add.push(...got);
        } else {
          const all = fromWire(msg.grads);
          for (const k of keys) {
            const t = all.get(k);
            if (!t) {
              for (const x of add) be.free(x);
              throw new Error(`gradient tensor ${k} is missing`);
            }
            add.push(be.fromArray(t.data, t.shape));
          }
        }
        try {
          const bad = keys.findIndex((k, i) =>
            add[i]?.shape.join(",") !==
              this.#lora.grads.get(k)!.shape.join(",")
          );
          if (add.length !== keys.length || bad >= 0) {
            throw new Error(
              `gradients to add do not fit this shard's adapters (${add.length} tensors for ${keys.length}${
                bad >= 0 ? `; ${keys[bad]} has shape [${add[bad]?.shape}]` : ""
              })`,
            );
          }
          keys.forEach((k, i) => be.axpy(this.#lora.grads.get(k)!, add[i], 1));
        } finally {
          for (const x of add) be.free(x);
        }
        return null;
      }
      case "get_state": {
        const [params, m, v] = await this.#lora.manyToHost(
          msg.optimizer ? ["params", "m", "v"] : ["params"],
        );
        const state: ShardState = {
          params: toWire(params),
          step: this.#lora.step,
        };
        if (m && v) {
          state.m = toWire(m);
          state.v = toWire(v);
        }
        return state;
      }
      case "set_state": {
        if ("snapshot" in msg.state) {
          const snap = deviceHandoff.peek(msg.state.snapshot);
          for (const mb of [...this.#ctx.keys()]) this.#release(mb);
          this.#lora.restore(snap, msg.optimizer);
          this.#lora.step = msg.optimizer ? msg.state.step : 0;
          return null;
        }
        const state = msg.state;
        const pick = (w: WireTensors) => {
          const all = fromWire(w);
          const mine = new Map(
            [...all].filter(([k]) => this.#lora.params.has(k)),
          );
          return mine;
        };
        // Validate everything before changing anything.
        const params = pick(state.params);
        const m = msg.optimizer && state.m ? pick(state.m) : undefined;
        const v = msg.optimizer && state.v ? pick(state.v) : undefined;
        for (
          const [name, map] of [["params", params], ["m", m], ["v", v]] as const
        ) {
          if (!map) continue;
          for (const k of this.#lora.keys) {
            const t = map.get(k);
            const cur = this.#lora.params.get(k)!;
            if (!t) throw new Error(`${name} tensor ${k} is missing`);
            if (t.shape.join(",") !== cur.shape.join(",")) {
              throw new Error(
                `${name} tensor ${k} has shape [${t.shape}], expected [${cur.shape}]`,
              );
            }
          }
        }
        // Restoring state abandons any micro-batch in flight.
        for (const mb of [...this.#ctx.keys()]) this.#release(mb);
        this.#lora.load("params", params);
        if (m && v) {
          this.#lora.load("m", m);
          this.#lora.load("v", v);
          this.#lora.step = state.step;
        } else {
          this.#lora.load("m", zerosLike(params));
          this.#lora.load("v", zerosLike(params));
          this.#lora.step = 0;
        }
        this.#lora.zeroGrads();
        return null;
      }
    }
  }

  /** Takes a parked tensor handed on by another shard, checking its shape. */
  #takeParked(ref: DeviceRef, shape: readonly number[]): Tensor {
    const got = deviceHandoff.take(ref.handle);
    if (got.length !== 1 || got[0].shape.join(",") !== shape.join(",")) {
      for (const t of got) this.#be.free(t);
      throw new Error(
        `parked input has shape [${
          got.map((t) => t.shape).join("; ")
        }], expected [${shape}]`,
      );
    }
    return got[0];
  }

  #release(mb: number): void {
    const ctx = this.#ctx.get(mb);
    if (ctx) this.#stage.release(ctx);
    this.#ctx.delete(mb);
  }

  /** Free everything. */
  terminate(): void {
    if (!this.#stage) return;
    for (const mb of [...this.#ctx.keys()]) this.#release(mb);
    this.#lora.dispose();
    freeStage(this.#be, this.#stage.weights);
  }
}

function zerosLike(t: Map<string, { shape: number[]; data: Float32Array }>) {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of t) {
    out.set(k, { shape: v.shape, data: new Float32Array(v.data.length) });
  }
  return out;
}
