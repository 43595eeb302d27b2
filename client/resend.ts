/**
 * Sending a run's operations so that a restart of its trainer loses none:
 * an operation whose trainer crashed or stopped before answering is sent
 * again under the same seq, once the operations before it have settled (so
 * the trainer still sees seqs in order). The trainer's journal answers a
 * seq it already applied from its record, so a resend never applies twice.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import {
  ActorCrashedError,
  ActorStoppedError,
  OutOfOrderError,
  UnavailableError,
  UnknownActorError,
} from "../runtime/errors.ts";

/** How long a resend waits for the trainer to come back, in all. */
export const RESEND_WINDOW_MS = 60_000;

/** Whether `e` says the trainer went away before answering (not a refusal). */
export function isTrainerGone(e: unknown, address: string): boolean {
  return (e instanceof ActorCrashedError || e instanceof ActorStoppedError ||
    e instanceof UnknownActorError) && e.address === address;
}

/**
 * Ask `ref` with `msg`; while the answer is that its actor went away (or
 * that this came before an operation still in flight), wait for `before`
 * (the previous operation, resends included) and ask again, with a growing
 * pause, within {@link RESEND_WINDOW_MS}.
 *
 * @throws {UnavailableError} when the trainer stays away past the window
 */
export async function askResending<T>(
  ref: ActorRef,
  msg: unknown,
  before: Promise<unknown>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + RESEND_WINDOW_MS;
  let settled = false;
  const previous = before.then(() => {}, () => {}).then(() => {
    settled = true;
  });
  for (let attempt = 0;; attempt++) {
    try {
      return await ref.ask<T>(msg, { timeoutMs, resend: true });
    } catch (e) {
      // Ahead of an earlier operation that is itself being resent (a restarted
      // trainer saw this one first): wait for it, then send this again.
      const overtook = e instanceof OutOfOrderError && !settled;
      if (!overtook && !isTrainerGone(e, ref.address)) throw e;
      if (Date.now() > deadline) {
        throw new UnavailableError(
          `the run's trainer did not come back within ${RESEND_WINDOW_MS} ms (${
            (e as Error).message
          }); the operation was not applied and may be sent again`,
          { cause: e },
        );
      }
      await previous;
      await new Promise((r) => setTimeout(r, Math.min(500, 5 * 2 ** attempt)));
    }
  }
}
