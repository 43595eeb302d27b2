/**
 * Exactly-once training operations: the trainer applies each sequence number
 * once, answers a replay from its record (the same reply, or the same error),
 * refuses gaps and requests for another run, and handles pipelined requests
 * in order.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { trainerAddress } from "../actors/trainer.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import type { TrainingClient } from "../client/training_client.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const { InvalidArgumentError, ConflictError } = bios.errors;

const LR = 1e-2;
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 5 } as const;
const DATA = [nextTokenDatum(textIds(SAMPLE_TEXTS[0]))];

interface RawRun {
  ts: TestService;
  tc: TrainingClient;
  /** Ask the trainer with this run's id. */
  ask<T = unknown>(msg: Record<string, unknown>): Promise<T>;
  trainer: ActorRef;
  info(): Promise<bios.TrainingRunInfo>;
}

/** A run driven by hand: the training client is only used for getInfo, which takes no seq. */
async function withRawRun(body: (r: RawRun) => Promise<void>): Promise<void> {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    const conn = await ts.connection();
    const trainer = conn.system.ref(trainerAddress(tc.runId));
    await body({
      ts,
      tc,
      trainer,
      ask: <T>(msg: Record<string, unknown>) =>
        trainer.ask<T>({ runId: tc.runId, ...msg }),
      info: () => tc.getInfo(),
    });
  } finally {
    await ts.close();
  }
}

type Fb = bios.types.ForwardBackwardOutput;
const fb = (seq: number, data: unknown = DATA) => ({
  type: "forward_backward",
  seq,
  data,
  lossFn: "cross_entropy",
});
const fwd = (seq: number) => ({
  type: "forward",
  seq,
  data: DATA,
  lossFn: "cross_entropy",
});
const step = (seq: number, learningRate = LR) => ({
  type: "optim_step",
  seq,
  adamParams: { learningRate },
});

/** The error a rejected promise gives. */
async function errorOf(
  p: Promise<unknown>,
): Promise<Error & { field?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { field?: string };
  }
  assert.fail("expected a rejection");
}

Deno.test("Trainer applies a replayed optim_step seq once and answers it with the identical reply", async () => {
  await withRawRun(async ({ ask, info }) => {
    const fb1 = await ask<Fb>(fb(1));
    const first = await ask(step(2));
    assert.equal((await info()).step, 1);
    const again = await ask(step(2));
    assert.deepEqual(again, first);
    const alsoFb = await ask<Fb>(fb(1));
    assert.deepEqual(alsoFb, fb1);
    assert.equal((await info()).step, 1);
    assert.equal((await info()).lastSeq, 2);

    // The replayed forward_backward accumulated nothing: there is nothing to step on.
    const noGrads = await errorOf(ask(step(3)));
    assert.ok(noGrads instanceof ConflictError, noGrads.message);
    assert.match(noGrads.message, /forwardBackward first/);

    // A forward after the replays sees the weights of exactly one step.
    const after = await ask<Fb>(fwd(4));
    assert.notEqual(after.loss, fb1.loss);
    assert.deepEqual(await ask<Fb>(fwd(4)), after);
    assert.equal((await info()).step, 1);
  });
});

Deno.test("Trainer answers a replayed seq whose original was rejected with the same error", async () => {
  await withRawRun(async ({ ask, info }) => {
    await ask(fb(1));
    // Rejected inside the trainer (the vocabulary check), so the error is recorded under seq 2.
    const bad = [{
      ...DATA[0],
      modelInput: bios.types.ModelInput.fromInts([1, 2, 300]),
      lossFnInputs: { targetTokens: [2, 3, 4] },
    }];
    const e1 = await errorOf(ask(fb(2, bad)));
    assert.ok(e1 instanceof InvalidArgumentError);
    assert.equal(e1.field, "data[0].modelInput.tokens[2]");
    const e2 = await errorOf(ask(fb(2, bad)));
    assert.ok(e2 instanceof InvalidArgumentError);
    assert.equal(e2.field, e1.field);
    assert.equal(e2.message, e1.message);
    // Even a valid body under that seq gets the recorded error: it is never applied.
    const e3 = await errorOf(ask(fb(2)));
    assert.ok(e3 instanceof InvalidArgumentError);
    assert.equal(e3.message, e1.message);

    // Rejected by validation (bad learning rate): also recorded, and the next seq follows on.
    const e4 = await errorOf(ask(step(3, Number.NaN)));
    assert.ok(e4 instanceof InvalidArgumentError);
    assert.equal(e4.field, "adamParams.learningRate");
    const e5 = await errorOf(ask(step(3)));
    assert.ok(
      e5 instanceof InvalidArgumentError,
      "a valid replay of a rejected seq is not applied",
    );
    assert.equal(e5.message, e4.message);
    assert.equal((await info()).step, 0);
    assert.equal((await info()).lastSeq, 3);

    // The gradients of seq 1 are still pending, and only those.
    await ask(step(4));
    assert.equal((await info()).step, 1);
  });
});

Deno.test("Trainer refuses a seq gap with ConflictError and consumes nothing", async () => {
  await withRawRun(async ({ ask, info }) => {
    await ask(fb(1));
    const gap = await errorOf(ask(step(5)));
    assert.ok(gap instanceof ConflictError, gap.message);
    assert.match(gap.message, /seq must be 2/);
    assert.match(gap.message, /got 5/);
    assert.equal((await info()).lastSeq, 1);
    assert.equal((await info()).step, 0);
    // The expected seq still works.
    await ask(step(2));
    assert.equal((await info()).step, 1);

    for (const seq of [0, -1, 2.5, "3"]) {
      const e = await errorOf(ask({ ...step(3), seq }));
      assert.ok(e instanceof InvalidArgumentError, `seq ${seq}: ${e.name}`);
      assert.equal(e.field, "seq");
      assert.match(e.message, /seq must be an integer ≥ 1/);
    }
    assert.equal((await info()).lastSeq, 2);
  });
});

Deno.test("Trainer refuses a request for another run", async () => {
  await withRawRun(async ({ trainer, tc, info }) => {
    await trainer.ask({ ...fb(1), runId: tc.runId });
    const e = await errorOf(
      trainer.ask({ ...step(2), runId: "run-someoneelse" }),
    );
    assert.ok(e instanceof ConflictError, `${e.name}: ${e.message}`);
    assert.match(e.message, /does not match this run/);
    const none = await errorOf(trainer.ask({ ...step(2), runId: undefined }));
    assert.ok(
      none instanceof InvalidArgumentError,
      `${none.name}: ${none.message}`,
    );
    assert.equal(none.field, "runId");
    assert.equal((await info()).lastSeq, 1);
    assert.equal((await info()).step, 0);
    await trainer.ask({ ...step(2), runId: tc.runId });
    assert.equal((await info()).step, 1);
  });
});

Deno.test("TrainingClient.forwardBackward then optimStep submitted before awaiting either run in order", async () => {
  const ts = await startTestService();
  try {
    const batches = SAMPLE_TEXTS.map((t) => [nextTokenDatum(textIds(t))]);
    // Sequential reference: await every operation.
    const seqRun = await ts.service.createLoraTrainingClient(RUN);
    const expected: number[] = [];
    for (const b of batches) {
      expected.push((await seqRun.forwardBackward(b, "cross_entropy")).loss);
      await seqRun.optimStep({ learningRate: LR });
    }

    const tc = await ts.service.createLoraTrainingClient(RUN);
    const fb1 = tc.forwardBackward(batches[0], "cross_entropy");
    const opt1 = tc.optimStep({ learningRate: LR });
    const o1 = await opt1; // awaited out of order
    assert.equal(o1.metrics["step:max"], 1);
    assert.equal(o1.metrics["learning_rate:mean"], LR);
    // without gradClipNorm the norm is not computed (it would cost a read-back)
    assert.equal(o1.metrics["grad_norm:mean"], undefined);
    assert.equal((await fb1).loss, expected[0]);
    assert.equal((await tc.getInfo()).step, 1);

    // Everything else at once.
    const futures = batches.slice(1).flatMap((
      b,
    ) => [
      tc.forwardBackward(b, "cross_entropy"),
      tc.optimStep({ learningRate: LR }),
    ]);
    const results = await Promise.all(futures.map((f) => f.result()));
    const losses = results.filter((_, i) => i % 2 === 0).map((r) =>
      (r as bios.types.ForwardBackwardOutput).loss
    );
    const steps = results.filter((_, i) => i % 2 === 1).map((r) =>
      (r as bios.types.OptimStepResponse).metrics["step:max"]
    );
    assert.deepEqual(losses, expected.slice(1));
    assert.deepEqual(steps, [2, 3]);
    assert.equal((await tc.getInfo()).step, 3);
  } finally {
    await ts.close();
  }
});
