/**
 * One training run's operations, in the SDK's `seq_id` order, on Bios's
 * exactly-once machinery: the SDK's `seq_id` *is* the trainer's `seq`. An
 * operation is sent once the one before it has been sent (HTTP requests may
 * arrive out of order), through {@linkcode askResending} (a restarted
 * trainer gets it again, behind its predecessor). A replayed `seq_id` (the
 * SDK retries a submission whose reply was lost) shares the first one's
 * result while this gateway remembers it, and is otherwise answered by the
 * trainer's journal from its record: never applied twice. A remembered
 * `seq_id` sent again with another operation, and a `seq_id` more than
 * {@linkcode MAX_SEQ_AHEAD} past the last one sent, are refused at once
 * ({@linkcode RunSequence.check}, a 409): neither may change the run.
 *
 * @module
 */
import type { ActorRef } from "../../runtime/actor_ref.ts";
import { ConflictError, InvalidArgumentError } from "../../runtime/errors.ts";
import { askResending } from "../../client/resend.ts";

/** Time one training operation may take. */
const OP_TIMEOUT_MS = 3_600_000;

/** How many recent operations a run remembers for replays. */
const REMEMBERED = 1024;

/**
 * How far past the last `seq_id` sent an operation may come and wait for
 * the ones between (HTTP requests of one client overtake each other only
 * while they are in flight together).
 */
export const MAX_SEQ_AHEAD = 1024;

/** How long an operation waits for the ones before it to arrive. */
export const DEFAULT_ARRIVAL_TIMEOUT_MS = 300_000;

/** The operations of one run, sent to its trainer in `seq` order. */
export class RunSequence {
  /** Highest seq sent, with every seq below it sent too. */
  #sent: number;
  /** Each remembered seq's result. */
  readonly #results = new Map<number, Promise<unknown>>();
  /** Each remembered seq's result, settled either way. */
  readonly #settled = new Map<number, Promise<void>>();
  /** Operations waiting for their predecessor to be sent, by seq. */
  readonly #waiting = new Map<number, () => void>();
  /** Each remembered seq's operation, as a fingerprint. */
  readonly #prints = new Map<number, string>();

  /**
   * The sequence of a run whose trainer has applied up to `lastSeq`.
   *
   * @param trainer the run's trainer
   * @param lastSeq the last seq it applied (0 for a new run)
   * @param arrivalTimeoutMs how long an operation waits for a missing predecessor
   */
  constructor(
    readonly trainer: ActorRef,
    lastSeq: number,
    readonly arrivalTimeoutMs = DEFAULT_ARRIVAL_TIMEOUT_MS,
  ) {
    this.#sent = lastSeq;
  }

  /**
   * Whether `msg` may go at `seq`: a remembered seq must come with the same
   * operation (a retry shares the first's result), and a new one no more
   * than {@linkcode MAX_SEQ_AHEAD} past the last sent.
   *
   * @throws {ConflictError} naming the seq_id when it may not
   */
  check(seq: number, msg: Record<string, unknown>): void {
    const print = this.#prints.get(seq);
    if (print !== undefined && print !== fingerprint(msg)) {
      throw new ConflictError(
        `seq_id ${seq} was already used by another operation (${
          String(msg.type)
        } is not a retry of it): send the next seq_id, ${this.#sent + 1}`,
      );
    }
    if (!this.#results.has(seq) && seq > this.#sent + MAX_SEQ_AHEAD) {
      throw new ConflictError(
        `seq_id ${seq} skips ahead: this run expects seq_id ${
          this.#sent + 1
        } next (at most ${MAX_SEQ_AHEAD} ahead may wait for the ones between)`,
      );
    }
  }

  /**
   * Send `msg` (a trainer request carrying `seq`) once seq − 1 is sent;
   * resolves with the trainer's reply. A `msg` that {@linkcode check}
   * refuses rejects.
   */
  submit<T>(seq: number, msg: Record<string, unknown>): Promise<T> {
    try {
      this.check(seq, msg);
    } catch (e) {
      return Promise.reject(e);
    }
    const known = this.#results.get(seq);
    if (known) return known as Promise<T>;
    const p = seq <= this.#sent + 1
      ? this.#send<T>(seq, msg)
      : this.#arrival(seq).then(() => this.#send<T>(seq, msg));
    this.#results.set(seq, p);
    this.#prints.set(seq, fingerprint(msg));
    p.catch(() => {});
    return p;
  }

  /** Resolves once seq − 1 has been sent; rejects past the arrival timeout. */
  #arrival(seq: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(seq);
        reject(
          new InvalidArgumentError(
            "seq_id",
            `seq_id ${seq} came, but seq_id ${
              this.#sent + 1
            } (the next this run expects) did not within ${this.arrivalTimeoutMs} ms`,
          ),
        );
      }, this.arrivalTimeoutMs);
      this.#waiting.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #send<T>(seq: number, msg: Record<string, unknown>): Promise<T> {
    const before = this.#settled.get(seq - 1) ?? Promise.resolve();
    const p = askResending<T>(this.trainer, msg, before, OP_TIMEOUT_MS);
    this.#settled.set(seq, p.then(() => {}, () => {}));
    if (seq > this.#sent) this.#sent = seq;
    this.#forget(seq - REMEMBERED);
    const next = this.#waiting.get(seq + 1);
    if (next) {
      this.#waiting.delete(seq + 1);
      next();
    }
    return p;
  }

  #forget(below: number): void {
    for (const s of this.#results.keys()) {
      if (s < below) {
        this.#results.delete(s);
        this.#settled.delete(s);
        this.#prints.delete(s);
      }
    }
  }
}

/**
 * A short fingerprint of a trainer request (two 32-bit FNV-1a hashes of its
 * JSON, typed arrays and bigints as text), to tell a retry from another
 * operation at the same seq without keeping the body.
 */
function fingerprint(msg: Record<string, unknown>): string {
  const text = JSON.stringify(
    msg,
    (_k, v) =>
      typeof v === "bigint"
        ? String(v)
        : ArrayBuffer.isView(v) && !(v instanceof DataView)
        ? Array.from(v as unknown as ArrayLike<unknown>, String)
        : v,
  );
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x85ebca6b) ^ (h2 >>> 13);
  }
  return `${(h1 >>> 0).toString(16)}${(h2 >>> 0).toString(16)}:${text.length}`;
}
