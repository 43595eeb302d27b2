/**
 * One training run's operations, in the SDK's `seq_id` order, on Bios's
 * exactly-once machinery: the SDK's `seq_id` *is* the trainer's `seq`. An
 * operation is sent once the one before it has been sent (HTTP requests may
 * arrive out of order), through {@linkcode askResending} (a restarted
 * trainer gets it again, behind its predecessor). A replayed `seq_id` (the
 * SDK retries a submission whose reply was lost) shares the first one's
 * result while this gateway remembers it, and is otherwise answered by the
 * trainer's journal from its record: never applied twice.
 *
 * @module
 */
import type { ActorRef } from "../../runtime/actor_ref.ts";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import { askResending } from "../../client/resend.ts";

/** Time one training operation may take. */
const OP_TIMEOUT_MS = 3_600_000;

/** How many recent operations a run remembers for replays. */
const REMEMBERED = 1024;

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
   * Send `msg` (a trainer request carrying `seq`) once seq − 1 is sent;
   * resolves with the trainer's reply.
   */
  submit<T>(seq: number, msg: Record<string, unknown>): Promise<T> {
    const known = this.#results.get(seq);
    if (known) return known as Promise<T>;
    const p = seq <= this.#sent + 1
      ? this.#send<T>(seq, msg)
      : this.#arrival(seq).then(() => this.#send<T>(seq, msg));
    this.#results.set(seq, p);
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
      }
    }
  }
}
