/**
 * A run's journal kept durable in a JetStream Object Store bucket, for
 * cluster runs: when the node hosting a run's trainer dies, another node
 * reads it, starts the run again and the new trainer resumes from it (see
 * {@link RunJournal} for what the journal holds and why).
 *
 * Objects of run `<run>` (bucket `bios-journals` by default):
 * - `<run>/head`: the head — the run's arguments (to start it again), the
 *   newest trainer's epoch, lastSeq, step, version, pendingGrads, the
 *   micro-batch counter, the name of the commit object, the entries of the
 *   forward_backward ops since the commit and those of the last
 *   {@link DURABLE_RECORD_SIZE} seqs;
 * - `<run>/e<epoch>/s<seq>`: one seq's entry (its outcome, and the op for a
 *   forward_backward), written by the instance of that epoch;
 * - `<run>/e<epoch>/c<n>`: a commit point by value (each stage's LoRA
 *   weights and Adam moments).
 *
 * Every write is: the commit object (if any), the entry, then the head put
 * with the revision this instance last saw (compare-and-set). The head is
 * what is durable: an entry or commit no head names is as if never
 * written. A new instance claims the journal by putting the head with its
 * epoch (again compare-and-set), so a write by any older instance fails
 * from then on with {@link StaleTrainerError}: its objects carry its own
 * epoch in their names, and no head will name them.
 *
 * A crash before the head's put leaves the old head: the op was not
 * applied (nor answered), and the client sends it again. A crash after it
 * leaves the op applied and recorded: a resend is answered from the entry.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import { decode, encode } from "../runtime/codec.ts";
import type { z } from "zod";
import type { RunArgsSchema } from "../protocol/node_messages.ts";
import type { ShardState } from "./param_shard.ts";
import {
  type JournalOp,
  type Outcome,
  type RunJournal,
  StaleTrainerError,
} from "./run_journal.ts";

/** The bucket of run journals unless told otherwise. */
export const DEFAULT_JOURNAL_BUCKET = "bios-journals";

/** Outcomes kept durable: a client resends at most this many unanswered ops. */
export const DURABLE_RECORD_SIZE = 64;

/** Arguments of kind `run` (a run's whole tree). */
export type RunArgs = z.output<typeof RunArgsSchema>;

/** A seq's entry and the epoch that wrote it. */
type EntryRef = [seq: number, epoch: number];

/** The head object (see the module). */
export interface JournalHead {
  /** The run's arguments (kind `run`), to start it again elsewhere. */
  args: RunArgs;
  epoch: number;
  lastSeq: number;
  step: number;
  version: number;
  pendingGrads: boolean;
  mb: number;
  /** The commit object, or null before the first commit. */
  commit: string | null;
  /** Entries of the forward_backward ops since the commit, in order. */
  since: EntryRef[];
  /** Entries of the last seqs, oldest first. */
  record: EntryRef[];
}

/** What one seq's entry holds. */
interface Entry {
  outcome: Outcome;
  op?: JournalOp;
}

/** The run's counters after an operation lands. */
export interface Progress {
  step: number;
  version: number;
  pendingGrads: boolean;
  mb: number;
}

/** The journals of a cluster's runs, one bucket (see the module). */
export class JournalBucket {
  /** @param os the bucket */
  constructor(readonly os: ObjectStore) {}

  /** The bucket `bucket` of `nc`'s JetStream (made, file-backed, when missing). */
  static async open(
    nc: NatsConnection,
    bucket: string = DEFAULT_JOURNAL_BUCKET,
  ): Promise<JournalBucket> {
    const os = await new Objm(nc).create(bucket, {
      storage: StorageType.File,
      description: "Bios run journals: <run>/head and its entries",
    });
    return new JournalBucket(os);
  }

  /** Run `runId`'s head, or null when it has none. */
  async head(runId: string): Promise<JournalHead | null> {
    const bytes = await this.os.getBlob(`${runId}/head`);
    return bytes === null ? null : decode(bytes) as JournalHead;
  }

  /** A handle on run `args.spec.runId`'s journal for one trainer instance. */
  run(args: RunArgs): DurableJournal {
    return new DurableJournal(this.os, args);
  }

  /** Deletes every object of run `runId` (its journal is no longer needed). */
  async remove(runId: string): Promise<void> {
    for (const o of await this.os.list()) {
      if (o.name.startsWith(`${runId}/`)) await this.os.delete(o.name);
    }
  }
}

/** One trainer instance's hold on its run's durable journal. */
export class DurableJournal {
  readonly #os: ObjectStore;
  readonly #runId: string;
  #head: JournalHead;
  /** Revision of the head this instance last read or wrote (0: none). */
  #rev = 0;
  #commits = 0;
  /** Time spent in writes and their count (for the cost figure). */
  readonly cost = { ms: 0, writes: 0 };

  /**
   * @param os the bucket
   * @param args the run's arguments (kept in the head)
   */
  constructor(os: ObjectStore, readonly args: RunArgs) {
    this.#os = os;
    this.#runId = args.spec.runId;
    this.#head = {
      args,
      epoch: 0,
      lastSeq: 0,
      step: 0,
      version: 0,
      pendingGrads: false,
      mb: 0,
      commit: null,
      since: [],
      record: [],
    };
  }

  /**
   * Claim the journal with the next epoch and load it into `j` (its record,
   * counters, commit point by value and the ops since): a run with no head
   * yet starts empty. `j.committed` is replaced; its device copies are the
   * caller's to drop first.
   */
  async claim(j: RunJournal): Promise<void> {
    for (;;) {
      const info = await this.#os.info(this.#name("head"));
      const live = info !== null && !info.deleted;
      const bytes = live ? await this.#os.getBlob(this.#name("head")) : null;
      if (live && bytes === null) continue; // replaced while read
      const old = bytes === null ? this.#head : decode(bytes) as JournalHead;
      const head = { ...old, epoch: old.epoch + 1 };
      try {
        const put = await this.#os.putBlob(
          { name: this.#name("head") },
          encode(head),
          { previousRevision: info?.revision ?? 0 },
        );
        this.#rev = put.revision;
      } catch (e) {
        if (isWrongRevision(e)) continue; // another instance claimed: read again
        throw e;
      }
      this.#head = head;
      break;
    }
    const h = this.#head;
    const entries = new Map<string, Entry>();
    await Promise.all(
      [...h.record, ...h.since].map(async (ref) => {
        const key = entryName(ref);
        if (entries.has(key)) return;
        const bytes = await this.#os.getBlob(this.#name(key));
        if (bytes === null) {
          throw new Error(`run ${this.#runId}'s journal lacks entry ${key}`);
        }
        entries.set(key, decode(bytes) as Entry);
      }),
    );
    let committed: ShardState[] = [];
    if (h.commit !== null) {
      const bytes = await this.#os.getBlob(this.#name(h.commit));
      if (bytes === null) {
        throw new Error(`run ${this.#runId}'s journal lacks ${h.commit}`);
      }
      committed = decode(bytes) as ShardState[];
    }
    j.epoch = h.epoch;
    j.lastSeq = h.lastSeq;
    j.step = h.step;
    j.version = h.version;
    j.pendingGrads = h.pendingGrads;
    j.mb = Math.max(j.mb, h.mb);
    j.record.clear();
    for (const ref of h.record) {
      j.record.set(ref[0], entries.get(entryName(ref))!.outcome);
    }
    j.committed = committed;
    j.sinceCommit = h.since.map((ref) => entries.get(entryName(ref))!.op!);
  }

  /** This instance's epoch (0 before it claims). */
  get epoch(): number {
    return this.#head.epoch;
  }

  /**
   * Make an operation durable: `commit` (a new commit point by value, which
   * drops the ops since the old one), seq `entry`'s outcome (and op, for a
   * forward_backward), and the counters after it, all named by one
   * compare-and-set put of the head.
   *
   * @throws {StaleTrainerError} when a newer instance claimed the journal
   */
  async write(
    next: Progress,
    entry?: { seq: number; outcome: Outcome; op?: JournalOp },
    commit?: ShardState[],
  ): Promise<void> {
    const t0 = performance.now();
    const old = this.#head;
    const e = old.epoch;
    const head: JournalHead = { ...old, ...next };
    if (commit) {
      head.commit = `e${e}/c${++this.#commits}`;
      head.since = [];
      await this.#os.putBlob({ name: this.#name(head.commit) }, encode(commit));
    }
    if (entry) {
      const ref: EntryRef = [entry.seq, e];
      const body: Entry = entry.op
        ? { outcome: entry.outcome, op: entry.op }
        : { outcome: entry.outcome };
      await this.#os.putBlob(
        { name: this.#name(entryName(ref)) },
        encode(body),
      );
      head.lastSeq = entry.seq;
      head.record = [...old.record, ref].slice(-DURABLE_RECORD_SIZE);
      if (entry.op) head.since = [...head.since, ref];
    }
    try {
      const put = await this.#os.putBlob(
        { name: this.#name("head") },
        encode(head),
        { previousRevision: this.#rev },
      );
      this.#rev = put.revision;
    } catch (err) {
      if (isWrongRevision(err)) {
        throw new StaleTrainerError(
          `trainer epoch ${e} of run ${this.#runId} was replaced: its journal write is refused`,
        );
      }
      throw err;
    }
    this.#head = head;
    this.cost.ms += performance.now() - t0;
    this.cost.writes++;
    this.#sweep(old, head);
  }

  /** Deletes, in the background, what `old` named and `head` no longer does. */
  #sweep(old: JournalHead, head: JournalHead): void {
    const keep = new Set([...head.record, ...head.since].map(entryName));
    const gone = [...old.record, ...old.since].map(entryName).filter((k) =>
      !keep.has(k)
    );
    if (old.commit !== null && old.commit !== head.commit) {
      gone.push(old.commit);
    }
    for (const k of new Set(gone)) {
      this.#os.delete(this.#name(k)).catch(() => {});
    }
  }

  #name(key: string): string {
    return `${this.#runId}/${key}`;
  }
}

function entryName([seq, epoch]: EntryRef): string {
  return `e${epoch}/s${seq}`;
}

function isWrongRevision(e: unknown): boolean {
  return /wrong last sequence/i.test(
    e instanceof Error ? e.message : String(e),
  );
}
