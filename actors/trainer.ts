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
import { splitDatums } from "./data_parallel.ts";
import type { RunPlacement } from "../protocol/node_messages.ts";
import {
  CHECKPOINT_STORE,
  shardAddress,
  trainerAddress,
} from "../protocol/addresses.ts";
import { lossProblem } from "./finite_loss.ts";
import { type Outcome, RunJournal, StaleTrainerError } from "./run_journal.ts";
import type { ShardLocations } from "./shard_locations.ts";
import type { DurableJournal } from "./durable_journal.ts";
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
   * Shards in this process share its backend: between the trainer and such
   * shards activations pass as device handles and commit points stay on
   * the device, so a step reads back only the logprobs. Decided per link:
   * a handle is used only where both ends are in the trainer's process.
   * False sends everything by value. @default {true}
   */
  deviceHandoff?: boolean;
  /**
   * Pipeline replicas (data parallelism, see `data_parallel.ts`): each
   * batch is split over them and their LoRA gradients are summed in
   * replica order before each optimizer step. @default {1}
   */
  dataParallel?: number;
  /**
   * The node actor of the trainer's node and of each shard
   * (`shards[replica][stage]`); absent: every shard is in this process.
   */
  placement?: RunPlacement;
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
  /** For a durable journal: the op to replay, or the new commit by value. */
  op?: {
    data: NormalizedDatum[];
    lossFn: LossFnName;
    lossFnConfig: Record<string, number>;
  };
  commit?: ShardState[];
  /** The step, version and pendingGrads after it lands (absent: unchanged). */
  after?: { step: number; version: number; pendingGrads: boolean };
}

/** The Trainer actor. */
export class Trainer implements Actor<unknown, unknown> {
  /** Every shard, replica by replica: (replica r, stage s) at r · stages + s. */
  #shards: ActorRef<ShardMsg, unknown>[] = [];
  /** Pipeline stages per replica. */
  #stages = 0;
  /** Pipeline replicas. */
  #replicas = 1;
  /** Whether each shard takes device handles: it is in this process (and hand-off is on). */
  #local: boolean[] = [];
  #store!: ActorRef<CheckpointMsg, unknown>;
  #cfg!: LlamaConfig;
  /** The run's state that outlives this instance. */
  readonly #j: RunJournal;
  /** This instance's epoch in the journal. */
  #epoch = 0;
  #system?: ActorSystem;
  /** The shard instances this trainer speaks to (from `ping`). */
  #inc: string[] = [];

  /** The run's journal in JetStream (a cluster run), if any. */
  readonly #durable?: DurableJournal;
  /** Where this node's remote shards are now (for `placement`). */
  readonly #locations?: ShardLocations;

  /**
   * @param spec the run
   * @param journal the run's state from an earlier instance (a restart);
   *   a new run starts with an empty one
   * @param durable where the journal is kept durable (a cluster run): each
   *   instance loads it at start and writes each operation there before
   *   answering it (see `durable_journal.ts`)
   */
  constructor(
    readonly spec: RunSpec,
    journal: RunJournal = new RunJournal(),
    durable?: DurableJournal,
    locations?: ShardLocations,
  ) {
    this.#j = journal;
    this.#durable = durable;
    this.#locations = locations;
  }

  /** Look up the model and the shards' addresses. */
  async init(ctx: ActorContext): Promise<void> {
    this.#cfg = (await loadBaseModel(this.spec.baseModel)).config;
    const n = splitLayers(this.#cfg.numLayers, this.spec.shards).length;
    this.#stages = n;
    this.#replicas = this.spec.dataParallel ?? 1;
    const at = this.spec.placement;
    for (let r = 0; r < this.#replicas; r++) {
      for (let i = 0; i < n; i++) {
        this.#shards.push(ctx.system.ref(shardAddress(this.spec.runId, i, r)));
        this.#local.push(
          (this.spec.deviceHandoff ?? true) &&
            (at === undefined || at.shards[r][i] === at.node),
        );
      }
    }
    this.#store = ctx.system.ref(CHECKPOINT_STORE);
    this.#system = ctx.system;
    if (this.#durable) {
      // The durable journal is the truth: it may be ahead of this node's
      // memory, or this node may be new to the run (its old node died).
      dropSnapshots(this.#j.committed);
      await this.#durable.claim(this.#j);
      this.#epoch = this.#j.epoch;
    } else this.#epoch = this.#j.claim();
    for (let i = 0; i < this.#shards.length; i++) await this.#waitFor(i);
    // A restart: the shards may hold half of the operation that was running;
    // put them back at the commit point and replay what followed it.
    if (this.#j.committed.length > 0) {
      await this.#recovering(() => this.#restoreCommitted());
      return;
    }
    // Replicas start from replica 0's state, whatever they drew.
    const states = await this.#recovering(() => this.#commitAndBroadcast());
    if (this.#durable) {
      const j = this.#j;
      await this.#durable.write(
        { step: j.step, version: j.version, pendingGrads: false, mb: j.mb },
        undefined,
        await this.#byValue(states),
      );
    }
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
    if (this.#durable) await this.#writeDurable(seq, outcome, applied);
    // One synchronous block: the operation's change and its record land
    // together, or (in a replaced instance) neither does.
    j.check(this.#epoch);
    applied?.land?.();
    j.recordOutcome(seq, outcome);
    if (outcome.ok) return outcome.value;
    throw errorFromWire(outcome.error);
  }

  /**
   * Write seq's outcome and change to the durable journal before it lands
   * here. A write that fails (not refused as stale) leaves the op neither
   * applied nor answered: the shards go back to the commit point.
   */
  async #writeDurable(
    seq: number,
    outcome: Outcome,
    applied?: Applied,
  ): Promise<void> {
    const j = this.#j;
    try {
      await this.#durable!.write(
        {
          ...(applied?.after ?? {
            step: j.step,
            version: j.version,
            pendingGrads: j.pendingGrads,
          }),
          mb: j.mb,
        },
        { seq, outcome, op: applied?.op },
        applied?.commit,
      );
    } catch (e) {
      if (e instanceof StaleTrainerError) throw e;
      if (applied?.land) {
        await this.#recovering(() => this.#restoreCommitted()).catch(() => {});
      }
      throw new UnavailableError(
        `run ${this.spec.runId}: its journal could not be written (${
          (e as Error)?.message ?? e
        }); seq ${seq} was not applied and may be sent again`,
        { cause: e },
      );
    }
  }

  /** For a durable journal, `states` by value (dropped if that fails). */
  async #durableCommit(
    states: (ShardState | ShardSnapshot)[],
  ): Promise<ShardState[] | undefined> {
    if (!this.#durable) return undefined;
    try {
      return await this.#byValue(states);
    } catch (e) {
      dropSnapshots(states);
      throw e;
    }
  }

  /** The commit point `states` by value (device copies read back). */
  async #byValue(
    states: readonly (ShardState | ShardSnapshot)[],
  ): Promise<ShardState[]> {
    const out: ShardState[] = [];
    for (const [i, s] of states.entries()) {
      out.push(
        "snapshot" in s
          ? await this.#ask(i, {
            type: "get_state",
            optimizer: true,
          }) as ShardState
          : s,
      );
    }
    return out;
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
      shards: this.#stages,
      dataParallel: this.#replicas,
      /**
       * Node actor of each shard, `[replica][stage]`, where it runs now (a
       * shard whose node died is elsewhere); absent: all here.
       */
      placement: this.spec.placement?.shards.map((row, r) =>
        row.map((node, i) =>
          this.#locations?.get(shardAddress(s.runId, i, r)) ?? node
        )
      ),
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
            op: {
              data: msg.data,
              lossFn: msg.lossFn,
              lossFnConfig: msg.lossFnConfig,
            },
            after: { step: j.step, version: j.version, pendingGrads: true },
          };
        }
        case "optim_step": {
          const value = await this.#optimStep(msg.adamParams);
          const states = await this.#commitAndBroadcast();
          return {
            value,
            commit: await this.#durableCommit(states),
            after: {
              step: j.step + 1,
              version: j.version + 1,
              pendingGrads: false,
            },
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
            commit: await this.#durableCommit(states),
            after: {
              step: out.step,
              version: j.version + 1,
              pendingGrads: false,
            },
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

  /**
   * Whether stage `s`'s commit point is parked on the device: every
   * replica's shard of it takes handles (else it goes by value).
   */
  #stageLocal(s: number): boolean {
    for (let r = 0; r < this.#replicas; r++) {
      if (!this.#local[r * this.#stages + s]) return false;
    }
    return true;
  }

  /**
   * Each stage's state in replica 0 (every replica holds the same), as a
   * commit point to be: parked on the device where the stage is local.
   */
  async #collectCommit(): Promise<(ShardState | ShardSnapshot)[]> {
    const states: (ShardState | ShardSnapshot)[] = [];
    try {
      for (let i = 0; i < this.#stages; i++) {
        states.push(
          this.#stageLocal(i)
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

  /**
   * A commit point from replica 0, copied to every other replica (their
   * gradients zeroed): after an optimizer step all replicas hold replica
   * 0's new parameters and moments, bit for bit.
   */
  async #commitAndBroadcast(): Promise<(ShardState | ShardSnapshot)[]> {
    const states = await this.#collectCommit();
    try {
      for (let k = this.#stages; k < this.#shards.length; k++) {
        await this.#ask(k, {
          type: "set_state",
          state: states[k % this.#stages],
          optimizer: true,
        });
      }
    } catch (e) {
      dropSnapshots(states);
      throw e;
    }
    return states;
  }

  /**
   * Sums each stage's LoRA gradients over the replicas into replica 0's:
   * g₀ + g₁, then + g₂, … (replica order, one f32 addition at a time), by
   * device handle where both shards are local, else by value. Stages run
   * side by side; within a stage the order is fixed.
   */
  async #reduceGrads(): Promise<void> {
    const S = this.#stages;
    const stage = async (s: number) => {
      for (let r = 1; r < this.#replicas; r++) {
        const k = r * S + s;
        const g = await this.#ask(k, {
          type: "get_grads",
          park: this.#local[k] && this.#local[s],
        }) as WireTensors | DeviceRef;
        try {
          await this.#ask(s, { type: "add_grads", grads: g });
        } finally {
          if (isDeviceRef(g)) deviceHandoff.drop(g.handle);
        }
      }
    };
    const all = await Promise.allSettled(
      Array.from({ length: S }, (_, s) => stage(s)),
    );
    const failed = all.find((a) => a.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
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
   * its micro-batches `open` (replica, id) left on the shards and, when
   * micro-batches already added their gradients (`accumulated`), restore
   * the commit and replay the operations since it, so nothing of this one
   * remains.
   */
  async #undoPartial(
    open: readonly { r: number; id: number }[],
    accumulated: boolean,
  ): Promise<void> {
    if (accumulated) {
      await this.#restoreCommitted();
      return;
    }
    for (const { r, id } of open) {
      for (let s = 0; s < this.#stages; s++) {
        await this.#ask(r * this.#stages + s, { type: "release", mb: id });
      }
    }
  }

  /** Wait for every shard to answer, restore the commit, replay since it. */
  async #restoreCommitted(): Promise<void> {
    for (let i = 0; i < this.#shards.length; i++) await this.#waitFor(i);
    // Every replica of a stage gets that stage's committed state.
    for (let i = 0; i < this.#shards.length; i++) {
      await this.#ask(i, {
        type: "set_state",
        state: this.#j.committed[i % this.#stages],
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
          failOnReconnect: true,
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
      // A shard's request or reply lost with a NATS connection fails it
      // at the reconnect: the run recovers (restore, replay) at once.
      { timeoutMs: SHARD_TIMEOUT_MS, failOnReconnect: true },
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
    const S = this.#stages;
    const last = S - 1;
    // handles parked for the next shard: dropped if the op fails before it takes them
    const parked = new Set<string>();
    const pass = async (k: number, m: ShardMsg) => {
      const handle = "input" in m && isDeviceRef(m.input)
        ? m.input.handle
        : "dout" in m && isDeviceRef(m.dout)
        ? m.dout.handle
        : null;
      const out = await this.#ask(k, m);
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
    // Each replica's contiguous part, packed as one pipeline packs a batch;
    // micro-batches are numbered across replicas in order (dropout keys).
    let numbered = 0;
    const plans = splitDatums(data.length, this.#replicas).map((part, r) => {
      const mbs = packMicroBatches(
        data.slice(part.first, part.end),
        this.spec.microBatchTokens,
      ).map((mb) => ({
        ...mb,
        datums: mb.datums.map((i) => i + part.first),
      }));
      const plan = { r, mbs, base: numbered };
      numbered += mbs.length;
      return plan;
    });
    type Done = { mb: MicroBatch; out: Float32Array | DeviceRef };
    const done: Done[][] = plans.map(() => []);
    // micro-batches whose activations are kept and whose backward has not run
    const open: { r: number; id: number }[] = [];
    let accumulated = false;
    const problems: (BiosError | undefined)[] = [];
    const runReplica = async (
      { r, mbs, base }: { r: number; mbs: MicroBatch[]; base: number },
    ) => {
      const at = (s: number) => r * S + s;
      const link = (a: number, b: number) =>
        this.#local[at(a)] && this.#local[at(b)];
      // With a local last stage, cross_entropy's dL/dlogprob (−weight) does
      // not depend on the logprobs: the backward is recorded at once, and
      // the logprobs come back with the gradients' norms in one read at the
      // end (one GPU wait a forwardBackward). Otherwise the logprobs come
      // first.
      const defer = backward && lossFn === "cross_entropy" &&
        this.#local[at(last)];
      for (const [j, mb] of mbs.entries()) {
        const id = ++this.#j.mb;
        const rows = { batch: mb.batch, seqLen: mb.seqLen };
        if (backward) open.push({ r, id });
        let x: Int32Array | Float32Array | DeviceRef = mb.tokens;
        for (let s = 0; s <= last; s++) {
          x = await pass(at(s), {
            type: "forward",
            mb: id,
            input: x,
            rows,
            targets: s === last ? mb.targets : undefined,
            keep: backward,
            dropoutKey: backward
              ? dropoutKey(this.#j.step, opIndex, base + j)
              : undefined,
            handoff: s < last ? link(s, s + 1) : defer,
            parkLogprobs: defer && s === last,
          }) as Float32Array | DeviceRef;
        }
        const out = x as Float32Array | DeviceRef;
        done[r].push({ mb, out });
        let dlogprobs: Float32Array;
        if (isDeviceRef(out)) {
          dlogprobs = lossOf(mb, new Float32Array(mb.valid.length)).dlogprobs;
        } else {
          const res = lossOf(mb, out);
          const problem = lossProblem(lossFn, res, out, mb);
          if (problem) {
            problems[r] = problem;
            return;
          }
          dlogprobs = res.dlogprobs;
        }
        if (!backward) continue;
        let d: Float32Array | DeviceRef | null = dlogprobs;
        for (let s = last; s >= 0; s--) {
          d = await pass(at(s), {
            type: "backward",
            mb: id,
            dout: d!,
            handoff: s > 0 && link(s, s - 1),
          }) as Float32Array | DeviceRef | null;
        }
        open.splice(open.findIndex((o) => o.id === id), 1);
        accumulated = true;
      }
    };
    try {
      // The replicas run side by side; a failure is acted on once all stopped.
      const settled = await Promise.allSettled(plans.map(runReplica));
      const failed = settled.find((a) => a.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const problem = problems.find((p) => p !== undefined);
      if (problem) {
        if (backward) await this.#undoPartial(open, accumulated);
        throw problem;
      }
      const all = done.flat();
      const deferred = all.flatMap((e) =>
        isDeviceRef(e.out) ? [e.out.handle] : []
      );
      const back = backward
        ? await this.#readWithGradNorms(deferred, parked)
        : { logprobs: [], norms: [] };
      let k = 0;
      // Replica order, then micro-batch order: the order one pipeline sums in.
      for (const { mb, out } of all) {
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
   * logprobs `handles`: local shards park their sums on the shared device
   * and all are read in one go; a shard elsewhere reads its own.
   */
  async #readWithGradNorms(
    handles: readonly string[],
    parked: Set<string>,
  ): Promise<{ logprobs: Float32Array[]; norms: number[] }> {
    const asks = await Promise.allSettled(
      this.#shards.map((_, i) =>
        this.#ask(i, { type: "grad_norm_sq", park: this.#local[i] })
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
    const sums = got.flatMap((g) => isDeviceRef(g) ? [g.handle] : []);
    const all = await deviceHandoff.readAll([...handles, ...sums]);
    let j = handles.length;
    return {
      logprobs: all.slice(0, handles.length),
      norms: got.map((g) => isDeviceRef(g) ? all[j++][0] : g as number),
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
    // Replica 0 takes the sum of every replica's gradients and alone steps;
    // the others get its new state with the commit.
    if (this.#replicas > 1) await this.#reduceGrads();
    let norm: number | undefined;
    if (p.gradClipNorm > 0) {
      let normSq = 0;
      for (let i = 0; i < this.#stages; i++) {
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
    for (let i = 0; i < this.#stages; i++) {
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
    for (let i = 0; i < this.#stages; i++) {
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
