import assert from "node:assert/strict";
import { ConflictError } from "../../runtime/errors.ts";
import type { ActorRef } from "../../runtime/actor_ref.ts";
import { MAX_SEQ_AHEAD, RunSequence } from "./run_sequence.ts";

/** A trainer that answers each request with its seq, recording what came. */
function echoTrainer(): { ref: ActorRef; got: number[] } {
  const got: number[] = [];
  const ref = {
    address: "trainer.r",
    ask(msg: { seq: number }) {
      got.push(msg.seq);
      return Promise.resolve({ seq: msg.seq });
    },
  } as unknown as ActorRef;
  return { ref, got };
}

Deno.test("RunSequence: a retry shares the first result; another operation at a used seq, or a seq far ahead, is a ConflictError and sends nothing", async () => {
  const { ref, got } = echoTrainer();
  const s = new RunSequence(ref, 0);
  const op = (seq: number, lr = 1) => ({
    type: "optim_step",
    runId: "r",
    seq,
    adam: { learningRate: lr },
    tokens: new Int32Array([1, 2, 3]),
  });
  assert.deepEqual(await s.submit(1, op(1)), { seq: 1 });
  // The same operation again (the SDK's retry): answered, not sent again.
  assert.deepEqual(await s.submit(1, op(1)), { seq: 1 });
  assert.throws(() => s.check(1, op(1, 2)), ConflictError);
  await assert.rejects(
    () => s.submit(1, { ...op(1), tokens: new Int32Array([1, 2, 4]) }),
    (e: unknown) => e instanceof ConflictError && /seq_id 1/.test(e.message),
  );
  assert.throws(
    () => s.check(2 + MAX_SEQ_AHEAD, op(2 + MAX_SEQ_AHEAD)),
    (e: unknown) =>
      e instanceof ConflictError && /expects seq_id 2 next/.test(e.message),
  );
  // Within the window a seq may still come before the one it follows.
  s.check(1 + MAX_SEQ_AHEAD, op(1 + MAX_SEQ_AHEAD));
  const third = s.submit(3, op(3));
  assert.deepEqual(await s.submit(2, op(2)), { seq: 2 });
  assert.deepEqual(await third, { seq: 3 });
  assert.deepEqual(got, [1, 2, 3]);
});
