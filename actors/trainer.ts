/**
 * Trainer: one per training run. It owns the run's queue of operations (its
 * mailbox: one at a time, in arrival order), the sequence numbers, the step
 * counter and the loss. It sends micro-batches through the shards — forward
 * from first to last, backward in reverse — runs the loss between them, and
 * drives optimizer steps and checkpoints.
 *
 * Exactly-once: every training operation carries the run id and a sequence
 * number. A number already applied is answered from the record (the same
 * reply, or the same error) and never applied twice; a gap is refused.
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import {
  ActorCrashedError,
  ActorStoppedError,
  ActorTimeoutError,
  BiosError,
  ConflictError,
  errorFromWire,
  errorToWire,
  InvalidArgumentError,
  OutOfOrderError,
  UnavailableError,
  UnknownActorError,
} from "../runtime/errors.ts";
import type { AdamStep } from "../kernels/backend.ts";
import { computeLoss, type LossFnName } from "../model/loss.ts";
import type { LoraSpec } from "../model/lora.ts";
import type { LlamaConfig } from "../model/config.ts";
import { splitLayers } from "../model/stage_weights.ts";
import { checkTokenRange } from "../protocol/types/model_input.ts";
import type { NormalizedDatum } from "../protocol/types/datum.ts";
import { type MicroBatch, packMicroBatches } from "./micro_batch.ts";
import {
  CHECKPOINT_STORE,
  shardAddress,
  trainerAddress,
} from "../protocol/addresses.ts";
import { lossProblem } from "./finite_loss.ts";
import { type Outcome, RunJournal } from "./run_journal.ts";
import type { ActorSystem } from "../runtime/system.ts";
import {
  type ShardMsg,
  ShardRestartedError,
  type ShardSnapshot,
  type ShardState,
} from "./param_shard.ts";
import {
  deviceHandoff,
  type DeviceRef,
  isDeviceRef,
  StaleHandleError,
} from "./device_handoff.ts";
import { loadBaseModel } from "./base_models.ts";
import { mergeWire, type WireTensors } from "./wire_tensors.ts";
import type { CheckpointMsg } from "./checkpoint_store.ts";
import type { AdapterManifest } from "./peft_adapter.ts";
import {
  type ParsedRequest,
  parseHead,
  parseRequest,
} from "./trainer_parse.ts";

/** Everything that defines a run. */
export interface RunSpec {
  runId: string;
  baseModel: string;
  lora: LoraSpec;
  /** Number of pipeline stages (capped at the layer count). */
  shards: number;
  /** Largest padded micro-batch, in tokens. */
  microBatchTokens: number;
  /**
   * The shards run in this process on its shared backend (the embedded
   * node): activations pass between them as device handles and commit
   * points stay on the device, so a step reads back only the logprobs.
   * False sends both by value. @default {true}
   */
  deviceHandoff?: boolean;
}

/** Time a shard gets for one message before the trainer gives up. */
const SHARD_TIMEOUT_MS = 600_000;
/** How long the trainer waits for a crashed shard to come back. */
const SHARD_RESTART_WAIT_MS = 60_000;
/** Recoveries one operation may go through before the run is reported unavailable. */
const MAX_RECOVERIES = 5;

export { shardAddress, trainerAddress };

/** An operation's reply and the change it makes to the journal once recorded. */
interface Applied {
  value: unknown;
  land?: () => void;
}

/** The Trainer actor. */
export class Trainer implements Actor<unknown, unknown> {
  #shards: ActorRef<ShardMsg, unknown>[] = [];
  #store!: ActorRef<CheckpointMsg, unknown>;
  #cfg!: LlamaConfig;
  /** The run's state that outlives this instance. */
  readonly #j: RunJournal;
  /** This instance's epoch in the journal. */
  #epoch = 0;
  #system?: ActorSystem;
  /** The shard instances this trainer speaks to (from `ping`). */
  #inc: string[] = [];

  /**
   * @param spec the run
   * @param journal the run's state from an earlier instance (a restart);
   *   a new run starts with an empty one
   */
  constructor(readonly spec: RunSpec, journal: RunJournal = new RunJournal()) {
    this.#j = journal;
  }

  /** Look up the model and the shards' addresses. */
  async init(ctx: ActorContext): Promise<void> {
    this.#cfg = (await loadBaseModel(this.spec.baseModel)).config;
    const n = splitLayers(this.#cfg.numLayers, this.spec.shards).length;
    for (let i = 0; i < n; i++) {
      this.#shards.push(ctx.system.ref(shardAddress(this.spec.runId, i)));
    }
    this.#store = ctx.system.ref(CHECKPOINT_STORE);
    this.#system = ctx.system;
    this.#epoch = this.#j.claim();
    for (let i = 0; i < n; i++) await this.#waitFor(i);
    // A restart: the shards may hold half of the operation that was running;
    // put them back at the commit point and replay what followed it.
    if (this.#j.committed.length > 0) {
      await this.#recovering(() => this.#restoreCommitted());
      return;
    }
    const states = await this.#recovering(() => this.#collectCommit());
    this.#j.check(this.#epoch);
    this.#setCommitted(states);
  }

  /**
   * Handle one request. Its head (type, run, seq) is read first: a bad head
   * changes nothing. A request with a good head takes its seq even when its
   * body is refused (its sender counted it): the error is its recorded
   * outcome, so a replay gets it again and the next seq is not a gap.
   */
  async receive(raw: unknown): Promise<unknown> {
    const head = parseHead(raw, this.spec.runId);
    let msg: ParsedRequest | undefined;
    let invalid: InvalidArgumentError | undefined;
    try {
      msg = parseRequest(raw);
    } catch (e) {
      if (!(e instanceof InvalidArgumentError) || head.seq === undefined) {
        throw e;
      }
      invalid = e;
    }
    if (msg?.type === "get_info") return this.#info();
    if (msg?.type === "snapshot") return await this.#snapshot();
    const seq = head.seq!;
    const j = this.#j;
    if (seq <= j.lastSeq) {
      const rec = j.record.get(seq);
      if (!rec) {
        throw new ConflictError(
          `seq ${seq} was already applied and its reply is no longer kept (last applied: ${j.lastSeq})`,
        );
      }
      if (rec.ok) return rec.value;
      throw errorFromWire(rec.error);
    }
    if (seq !== j.lastSeq + 1) {
      throw new OutOfOrderError(
        `seq must be ${
          j.lastSeq + 1
        } (the next after ${j.lastSeq}): got ${seq}`,
      );
    }
    let outcome: Outcome;
    let applied: Applied | undefined;
    if (invalid || !msg) {
      outcome = { ok: false, error: errorToWire(invalid) };
    } else {
      try {
        applied = await this.#apply(msg);
        outcome = { ok: true, value: applied.value };
      } catch (e) {
        // A crash or an unavailable run consumes no seq: the op may be sent again.
        if (!(e instanceof BiosError) || e instanceof UnavailableError) throw e;
        outcome = { ok: false, error: errorToWire(e) };
      }
    }
    // One synchronous block: the operation's change and its record land
    // together, or (in a replaced instance) neither does.
    j.check(this.#epoch);
    applied?.land?.();
    j.recordOutcome(seq, outcome);
    if (outcome.ok) return outcome.value;
    throw errorFromWire(outcome.error);
  }

  #info() {
    const s = this.spec;
    return {
      modelId: s.runId,
      modelName: s.baseModel,
      isLora: true,
      loraRank: s.lora.rank,
      modelData: {
        arch: "llama",
        modelName: s.baseModel,
        tokenizerId: s.baseModel,
      },
      step: this.#j.step,
      lastSeq: this.#j.lastSeq,
      version: this.#j.version,
      shards: this.#shards.length,
    };
  }

  /**
   * Apply one operation. If a shard fails meanwhile (crash, stop, timeout),
   * restore every shard to the last commit, replay the forward_backward ops
   * since then, and run the operation again: its effect lands exactly once.
   */
  #apply(
    msg: Exclude<ParsedRequest, { type: "get_info" | "snapshot" }>,
  ): Promise<Applied> {
    const j = this.#j;
    return this.#recovering(async (): Promise<Applied> => {
      switch (msg.type) {
        case "forward":
          return {
            value: await this.#forwardBackward(
              msg.data,
              msg.lossFn,
              msg.lossFnConfig,
              false,
            ),
          };
        case "forward_backward": {
          const value = await this.#forwardBackward(
            msg.data,
            msg.lossFn,
            msg.lossFnConfig,
            true,
            j.sinceCommit.length,
          );
          return {
            value,
            land: () => {
              j.sinceCommit.push(msg);
              j.pendingGrads = true;
            },
          };
        }
        case "optim_step": {
          const value = await this.#optimStep(msg.adamParams);
          const states = await this.#collectCommit();
          return {
            value,
            land: () => {
              this.#setCommitted(states);
              j.step++;
              j.version++;
              j.pendingGrads = false;
            },
          };
        }
        case "save_state":
          return {
            value: await this.#save(msg.name, "weights", msg.overwrite),
          };
        case "save_weights_for_sampler":
          return {
            value: await this.#save(
              msg.name,
              "sampler_weights",
              msg.overwrite,
            ),
          };
        case "load_state": {
          const out = await this.#load(msg.path, msg.optimizer);
          const states = await this.#collectCommit();
          return {
            value: { path: out.path },
            land: () => {
              this.#setCommitted(states);
              j.step = out.step;
              j.version++;
              j.pendingGrads = false;
            },
          };
        }
      }
    });
  }

  /** Run `fn`, recovering from shard failures up to MAX_RECOVERIES times. */
  async #recovering<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      try {
        // The restore itself may meet another crash: it is retried the same way.
        if (attempt > 0) await this.#restoreCommitted();
        return await fn();
      } catch (e) {
        if (!isWorkerFailure(e)) throw e;
        if (attempt >= MAX_RECOVERIES) {
          const why = (e as Error).message;
          throw new UnavailableError(
            `run ${this.spec.runId}: shards keep failing (${why})`,
            { cause: e },
          );
        }
        this.recoveries++;
      }
    }
  }

  /** Shard recoveries so far (for tests and metrics). */
  recoveries = 0;

  get #handoff(): boolean {
    return this.spec.deviceHandoff ?? true;
  }

  /** Every shard's state, as a commit point to be (parked on the device with hand-off). */
  async #collectCommit(): Promise<(ShardState | ShardSnapshot)[]> {
    const states: (ShardState | ShardSnapshot)[] = [];
    try {
      for (let i = 0; i < this.#shards.length; i++) {
        states.push(
          this.#handoff
            ? await this.#ask(i, { type: "commit" }) as ShardSnapshot
            : await this.#ask(i, {
              type: "get_state",
              optimizer: true,
            }) as ShardState,
        );
      }
    } catch (e) {
      dropSnapshots(states);
      throw e;
    }
    return states;
  }

  /** Make `states` the commit point (the old one is dropped); synchronous. */
  #setCommitted(states: (ShardState | ShardSnapshot)[]): void {
    dropSnapshots(this.#j.committed);
    this.#j.committed = states;
    this.#j.sinceCommit = [];
  }

  /**
   * Frees the commit point kept on the device when the node shuts down. A
   * trainer stopped for a restart leaves it to the next instance.
   */
  terminate(): void {
    if (!this.#system?.isShuttingDown) return;
    dropSnapshots(this.#j.committed);
    this.#j.committed = [];
  }

  /**
   * Take back a forward_backward that failed part-way: drop the activations
   * its micro-batch `mb` left on the shards and, when earlier micro-batches
   * already added their gradients (`accumulated`), restore the commit and
   * replay the operations since it, so nothing of this one remains.
   */
  async #undoPartial(mb: number, accumulated: boolean): Promise<void> {
    if (accumulated) {
      await this.#restoreCommitted();
      return;
    }
    for (let i = 0; i < this.#shards.length; i++) {
      await this.#ask(i, { type: "release", mb });
    }
  }

  /** Wait for every shard to answer, restore the commit, replay since it. */
  async #restoreCommitted(): Promise<void> {
    for (let i = 0; i < this.#shards.length; i++) await this.#waitFor(i);
    for (let i = 0; i < this.#shards.length; i++) {
      await this.#ask(i, {
        type: "set_state",
        state: this.#j.committed[i],
        optimizer: true,
      });
    }
    for (const [i, op] of this.#j.sinceCommit.entries()) {
      await this.#forwardBackward(op.data, op.lossFn, op.lossFnConfig, true, i);
    }
  }

  /** Poll a shard until its (restarted) actor answers. */
  async #waitFor(i: number): Promise<void> {
    const deadline = Date.now() + SHARD_RESTART_WAIT_MS;
    for (;;) {
      try {
        this.#inc[i] = await this.#shards[i].ask({
          type: "ping",
          epoch: this.#epoch,
        }, {
          timeoutMs: 5_000,
        }) as string;
        return;
      } catch (e) {
        if (!isWorkerFailure(e) || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Ask shard i, naming the instance we expect (a restarted one refuses). */
  #ask(i: number, m: ShardMsg): Promise<unknown> {
    return this.#shards[i].ask(
      { ...m, inc: this.#inc[i], epoch: this.#epoch },
      {
        timeoutMs: SHARD_TIMEOUT_MS,
      },
    );
  }

  async #forwardBackward(
    data: NormalizedDatum[],
    lossFn: LossFnName,
    lossFnConfig: Record<string, number>,
    backward: boolean,
    /** Index of this op since the last commit (with the step, it keys dropout masks). */
    opIndex = 0,
  ) {
    const ctxLen = this.#cfg.maxPositionEmbeddings;
    data.forEach((d, i) => {
      checkTokenRange(
        d.tokens,
        this.#cfg.vocabSize,
        `data[${i}].modelInput.tokens`,
      );
      if (d.inputs.targetTokens) {
        checkTokenRange(
          d.inputs.targetTokens,
          this.#cfg.vocabSize,
          `data[${i}].lossFnInputs.targetTokens`,
        );
      }
      if (d.tokens.length > ctxLen) {
        throw new InvalidArgumentError(
          `data[${i}].modelInput`,
          `data[${i}].modelInput must have at most ${ctxLen} tokens (the model's context): got ${d.tokens.length}`,
        );
      }
    });
    const outputs: Float32Array[] = new Array(data.length);
    let loss = 0;
    let tokens = 0;
    const last = this.#shards.length - 1;
    const handoff = this.#handoff;
    // With hand-off, cross_entropy's dL/dlogprob (−weight) does not depend
    // on the logprobs: the backward is recorded at once, and the logprobs
    // come back with the gradients' norms in one read at the end (one GPU
    // wait a forwardBackward). Other losses read the logprobs first.
    const defer = backward && handoff && lossFn === "cross_entropy";
    // handles parked for the next shard: dropped if the op fails before it takes them
    const parked = new Set<string>();
    const pass = async (s: number, m: ShardMsg) => {
      const handle = "input" in m && isDeviceRef(m.input)
        ? m.input.handle
        : "dout" in m && isDeviceRef(m.dout)
        ? m.dout.handle
        : null;
      const out = await this.#ask(s, m);
      if (handle) parked.delete(handle);
      if (isDeviceRef(out)) parked.add(out.handle);
      return out;
    };
    const lossOf = (mb: MicroBatch, logprobs: Float32Array) => {
      const inp = mb.inputs;
      // Padding gets weight 0, so its dL/dlogprob is 0; missing weights mean 1.
      return computeLoss(lossFn, {
        logprobs,
        weights: inp.weights ? mask(inp.weights, mb.valid) : mb.valid,
        advantages: inp.advantages,
        samplingLogprobs: inp.logprobs,
        clipLow: inp.clipLowThreshold,
        clipHigh: inp.clipHighThreshold,
      }, lossFnConfig);
    };
    const done: { mb: MicroBatch; out: Float32Array | DeviceRef }[] = [];
    try {
      for (
        const [mbIndex, mb] of packMicroBatches(
          data,
          this.spec.microBatchTokens,
        )
          .entries()
      ) {
        const id = ++this.#j.mb;
        const rows = { batch: mb.batch, seqLen: mb.seqLen };
        let x: Int32Array | Float32Array | DeviceRef = mb.tokens;
        for (let s = 0; s <= last; s++) {
          x = await pass(s, {
            type: "forward",
            mb: id,
            input: x,
            rows,
            targets: s === last ? mb.targets : undefined,
            keep: backward,
            dropoutKey: backward
              ? dropoutKey(this.#j.step, opIndex, mbIndex)
              : undefined,
            handoff,
            parkLogprobs: defer && s === last,
          }) as Float32Array | DeviceRef;
        }
        const out = x as Float32Array | DeviceRef;
        done.push({ mb, out });
        let dlogprobs: Float32Array;
        if (isDeviceRef(out)) {
          dlogprobs = lossOf(mb, new Float32Array(mb.valid.length)).dlogprobs;
        } else {
          const r = lossOf(mb, out);
          const problem = lossProblem(lossFn, r, out, mb);
          if (problem) {
            if (backward) await this.#undoPartial(id, mbIndex > 0);
            throw problem;
          }
          dlogprobs = r.dlogprobs;
        }
        if (!backward) continue;
        let d: Float32Array | DeviceRef | null = dlogprobs;
        for (let s = last; s >= 0; s--) {
          d = await pass(s, { type: "backward", mb: id, dout: d!, handoff }) as
            | Float32Array
            | DeviceRef
            | null;
        }
      }
      const deferred = done.flatMap((e) =>
        isDeviceRef(e.out) ? [e.out.handle] : []
      );
      const back = backward
        ? await this.#readWithGradNorms(deferred, parked)
        : { logprobs: [], norms: [] };
      let k = 0;
      for (const { mb, out } of done) {
        const logprobs = isDeviceRef(out) ? back.logprobs[k++] : out;
        const r = lossOf(mb, logprobs);
        const problem = lossProblem(lossFn, r, logprobs, mb);
        if (problem) {
          // Only a deferred loss gets here: its gradients are in.
          await this.#restoreCommitted();
          throw problem;
        }
        loss += r.loss;
        mb.datums.forEach((di, b) => {
          const n = data[di].tokens.length;
          outputs[di] = logprobs.slice(b * mb.seqLen, b * mb.seqLen + n);
          tokens += n;
        });
      }
      if (!back.norms.every(Number.isFinite)) {
        // A finite loss can still overflow on the way back.
        await this.#restoreCommitted();
        throw new InvalidArgumentError(
          "data",
          `data gives gradients that overflow float32 (their squared norm per pipeline stage: ${
            back.norms.join(", ")
          }) although its loss is finite: lower its weights or advantages; nothing was accumulated`,
        );
      }
      return {
        lossFnOutputType: "ArrayRecord",
        lossFnOutputs: outputs.map((lp) => ({
          logprobs: { data: lp, dtype: "float32", shape: [lp.length] },
        })),
        metrics: { "loss:sum": loss, "num_tokens:sum": tokens },
        loss,
      };
    } finally {
      for (const h of parked) deviceHandoff.drop(h);
    }
  }

  /**
   * Every shard's Σ g² of its accumulated gradients, and the parked
   * logprobs `handles`: with hand-off, all in one read (the shards park
   * their sums on the shared device); by value, each shard reads its own.
   */
  async #readWithGradNorms(
    handles: readonly string[],
    parked: Set<string>,
  ): Promise<{ logprobs: Float32Array[]; norms: number[] }> {
    const asks = await Promise.allSettled(
      this.#shards.map((_, i) =>
        this.#ask(i, { type: "grad_norm_sq", park: this.#handoff })
      ),
    );
    const got: unknown[] = [];
    for (const a of asks) {
      if (a.status === "fulfilled") {
        got.push(a.value);
        if (isDeviceRef(a.value)) parked.add(a.value.handle);
      }
    }
    const failed = asks.find((a) => a.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (!this.#handoff) return { logprobs: [], norms: got as number[] };
    const sums = (got as DeviceRef[]).map((r) => r.handle);
    const all = await deviceHandoff.readAll([...handles, ...sums]);
    return {
      logprobs: all.slice(0, handles.length),
      norms: all.slice(handles.length).map((a) => a[0]),
    };
  }

  async #optimStep(p: {
    learningRate: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    gradClipNorm: number;
  }) {
    if (!this.#j.pendingGrads) {
      throw new ConflictError(
        "optimStep needs accumulated gradients: call forwardBackward first",
      );
    }
    // The global norm costs a read-back per shard: it is computed only for
    // the clip (torch.nn.utils.clip_grad_norm_: scale by
    // max_norm / (norm + 1e-6) when below 1).
    let norm: number | undefined;
    if (p.gradClipNorm > 0) {
      let normSq = 0;
      for (let i = 0; i < this.#shards.length; i++) {
        normSq += await this.#ask(i, { type: "grad_norm_sq" }) as number;
      }
      norm = Math.sqrt(normSq);
    }
    const gradScale = norm !== undefined
      ? Math.min(1, p.gradClipNorm / (norm + 1e-6))
      : 1;
    const step: AdamStep = {
      lr: p.learningRate,
      beta1: p.beta1,
      beta2: p.beta2,
      eps: p.eps,
      weightDecay: p.weightDecay,
      step: this.#j.step + 1,
      gradScale,
    };
    for (let i = 0; i < this.#shards.length; i++) {
      await this.#ask(i, { type: "optim_step", step });
    }
    const metrics: Record<string, number> = {
      "step:max": this.#j.step + 1,
      "learning_rate:mean": p.learningRate,
    };
    if (norm !== undefined) {
      metrics["grad_norm:mean"] = norm;
      metrics["grad_scale:mean"] = gradScale;
    }
    return { metrics };
  }

  async #gather(
    optimizer: boolean,
  ): Promise<{ params: WireTensors; m?: WireTensors; v?: WireTensors }> {
    const states: ShardState[] = [];
    for (let i = 0; i < this.#shards.length; i++) {
      states.push(
        await this.#ask(i, { type: "get_state", optimizer }) as ShardState,
      );
    }
    return {
      params: mergeWire(states.map((s) => s.params)),
      m: optimizer ? mergeWire(states.map((s) => s.m!)) : undefined,
      v: optimizer ? mergeWire(states.map((s) => s.v!)) : undefined,
    };
  }

  async #snapshot() {
    const { params } = await this.#gather(false);
    return {
      baseModel: this.spec.baseModel,
      lora: this.spec.lora,
      params,
      version: this.#j.version,
    };
  }

  async #save(
    name: string,
    kind: "weights" | "sampler_weights",
    overwrite: boolean,
  ) {
    const withOpt = kind === "weights";
    const state = await this.#gather(withOpt);
    const s = this.spec;
    const reply = await this.#store.ask({
      type: "save",
      overwrite,
      manifest: {
        runId: s.runId,
        kind,
        name,
        baseModel: s.baseModel,
        lora: { ...s.lora, targets: [...s.lora.targets] },
        step: this.#j.step,
        seq: this.#j.lastSeq + 1,
      },
      params: state.params,
      m: state.m,
      v: state.v,
    }, { timeoutMs: SHARD_TIMEOUT_MS }) as { path: string };
    return { path: reply.path };
  }

  async #load(path: string, optimizer: boolean) {
    const ck = await this.#store.ask({
      type: "load",
      path,
      optimizer,
      forTraining: true,
      // An adapter folder is checked against this run's model.
      baseModel: this.spec.baseModel,
    }, { timeoutMs: SHARD_TIMEOUT_MS }) as {
      manifest: AdapterManifest;
      params: WireTensors;
      m?: WireTensors;
      v?: WireTensors;
    };
    checkCompatible(ck.manifest, this.spec);
    const state: ShardState = {
      params: ck.params,
      m: ck.m,
      v: ck.v,
      step: optimizer ? ck.manifest.step : 0,
    };
    for (let i = 0; i < this.#shards.length; i++) {
      await this.#ask(i, { type: "set_state", state, optimizer });
    }
    return { path, step: state.step };
  }
}

/** Refuse a checkpoint made for another base model, LoRA shape or scale. */
export function checkCompatible(m: AdapterManifest, spec: RunSpec): void {
  if (m.baseModel !== spec.baseModel) {
    throw new InvalidArgumentError(
      "path",
      `path holds a checkpoint for baseModel ${m.baseModel}, but this run trains ${spec.baseModel}`,
    );
  }
  if (m.lora.rank !== spec.lora.rank) {
    throw new InvalidArgumentError(
      "path",
      `path holds a rank ${m.lora.rank} adapter, but this run has rank ${spec.lora.rank}`,
    );
  }
  // alpha / rank scales every adapter output: another alpha changes them all.
  if (m.lora.alpha !== spec.lora.alpha) {
    throw new InvalidArgumentError(
      "path",
      `path holds an adapter with alpha ${m.lora.alpha}, but this run has alpha ${spec.lora.alpha}`,
    );
  }
  const a = [...m.lora.targets].sort().join(","),
    b = [...spec.lora.targets].sort().join(",");
  if (a !== b) {
    throw new InvalidArgumentError(
      "path",
      `path adapts [${a}], but this run adapts [${b}]`,
    );
  }
}

function mask(w: Float32Array, valid: Float32Array): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = w[i] * valid[i];
  return out;
}

/** Whether an ask failed because the worker is gone, not because of the request. */
function isWorkerFailure(e: unknown): boolean {
  return e instanceof ActorCrashedError || e instanceof ActorStoppedError ||
    e instanceof UnknownActorError || e instanceof ActorTimeoutError ||
    e instanceof ShardRestartedError || e instanceof StaleHandleError;
}

/** Frees the device copies among `states` (by-value states hold none). */
function dropSnapshots(states: readonly (ShardState | ShardSnapshot)[]): void {
  for (const s of states) if ("snapshot" in s) deviceHandoff.drop(s.snapshot);
}

/**
 * The dropout key of a micro-batch: the same (step, op since commit,
 * micro-batch) always draws the same masks, so a replay is exact.
 */
function dropoutKey(step: number, opIndex: number, mbIndex: number): number {
  return (Math.imul(step + 1, 0x9e3779b1) ^ Math.imul(opIndex + 1, 0x85ebca6b) ^
    Math.imul(mbIndex + 1, 0xc2b2ae35)) >>> 0;
}
