/**
 * RunJournal: the part of a training run's state that outlives any one
 * Trainer instance — the exactly-once record, the step and weights version,
 * the commit point and the operations since it. A restarted trainer picks it
 * up, restores the shards to the commit point, replays what followed, and
 * answers every acknowledged seq from the record: a trainer crash loses no
 * acknowledged step and applies none twice.
 *
 * Fencing: each trainer instance claims a new epoch. A trainer killed
 * mid-operation may still be running its last message (JavaScript cannot
 * abort it); its writes here are refused once a newer instance has claimed
 * the journal, and the shards refuse its messages once they have seen the
 * newer epoch. Every change of an operation lands in one synchronous block,
 * together with its seq's record, so no instance ever leaves half of one.
 *
 * In the embedded node the journal lives in memory, in the run's child spec;
 * across processes it is the state a cluster must keep durable.
 *
 * @module
 */
import {
  BiosError,
  registerWireError,
  type WireError,
} from "../runtime/errors.ts";
import type { LossFnName } from "../model/loss.ts";
import type { NormalizedDatum } from "../protocol/types/datum.ts";
import type { ShardSnapshot, ShardState } from "./param_shard.ts";

/** What a seq's operation gave: its reply, or its error. */
export type Outcome = { ok: true; value: unknown } | {
  ok: false;
  error: WireError;
};

/** A forward_backward since the commit point, as the trainer replays it. */
export interface JournalOp {
  data: NormalizedDatum[];
  lossFn: LossFnName;
  lossFnConfig: Record<string, number>;
}

/** A message or write from a trainer instance that a newer one replaced. */
export class StaleTrainerError extends BiosError {
  /** @param message what was refused */
  constructor(message: string) {
    super("stale_trainer", message);
    this.name = "StaleTrainerError";
  }
}
registerWireError(StaleTrainerError);

/** Replies kept for replayed sequence numbers. */
export const RECORD_SIZE = 1024;

/** The durable state of one training run (see the module doc). */
export class RunJournal {
  /** The newest trainer instance's epoch (0: none yet). */
  epoch = 0;
  /** Last seq applied. */
  lastSeq = 0;
  /** Outcomes of the last {@link RECORD_SIZE} seqs. */
  readonly record: Map<number, Outcome> = new Map();
  /** Optimizer steps taken. */
  step = 0;
  /** Bumped whenever the weights change; samplers snapshot by version. */
  version = 0;
  /** Whether gradients are accumulated and not yet applied. */
  pendingGrads = false;
  /** Micro-batch ids handed out (they key activations on the shards). */
  mb = 0;
  /**
   * Each shard's LoRA + Adam state as of the last optimizer step or load: on
   * the device (parked copies) with hand-off, else by value. Empty until the
   * first trainer has committed.
   */
  committed: (ShardState | ShardSnapshot)[] = [];
  /** forward_backward ops applied since that commit, replayed after a crash. */
  sinceCommit: JournalOp[] = [];

  /** A new trainer instance takes over: its epoch. */
  claim(): number {
    return ++this.epoch;
  }

  /**
   * Throws unless `epoch` is the newest instance's.
   *
   * @throws {StaleTrainerError} for a replaced instance
   */
  check(epoch: number): void {
    if (epoch !== this.epoch) {
      throw new StaleTrainerError(
        `trainer epoch ${epoch} was replaced by epoch ${this.epoch}`,
      );
    }
  }

  /** Record `seq`'s outcome as the last applied, keeping the newest RECORD_SIZE. */
  recordOutcome(seq: number, outcome: Outcome): void {
    this.lastSeq = seq;
    this.record.set(seq, outcome);
    if (this.record.size > RECORD_SIZE) {
      this.record.delete(this.record.keys().next().value!);
    }
  }
}
