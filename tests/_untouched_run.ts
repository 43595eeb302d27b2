/**
 * The strong form of "a rejected request changes no state", shared by the
 * bad-input tests: a fixture run with gradients pending from one
 * forwardBackward; after the test's body the forward loss and the step are
 * as before, no checkpoint or actor was added, and the pending optimizer
 * step lands exactly where a run that never saw the body lands.
 *
 * @module
 */
import assert from "node:assert/strict";
import type * as bios from "../mod.ts";
import type { TrainingClient } from "../client/training_client.ts";
import type { Connection } from "../client/connection.ts";
import type { CheckpointEntry } from "../actors/checkpoint_files.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
} from "./_helpers.ts";

/** Learning rate of the fixture's step. */
export const LR = 1e-2;
/** The fixture run. */
export const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 7 } as const;
/** Token ids of the fixture datum. */
export const IDS = textIds(SAMPLE_TEXTS[0]);
/** The fixture datum. */
export const DATUM = nextTokenDatum(IDS);
/** Model-input tokens of DATUM. */
export const N = IDS.length - 1; // model-input tokens of DATUM

/** Losses of an undisturbed run: before, and after one forwardBackward + optimStep. */
let reference: Promise<{ before: number; after: number }> | undefined;
function referenceLosses(): Promise<{ before: number; after: number }> {
  reference ??= (async () => {
    const ts = await startTestService();
    try {
      const tc = await ts.service.createLoraTrainingClient(RUN);
      const before = (await tc.forward([DATUM], "cross_entropy")).loss;
      await tc.forwardBackward([DATUM], "cross_entropy");
      await tc.optimStep({ learningRate: LR });
      const after = (await tc.forward([DATUM], "cross_entropy")).loss;
      assert.notEqual(after, before, "one optimizer step must move the loss");
      return { before, after };
    } finally {
      await ts.close();
    }
  })();
  return reference;
}

/** What a test body gets. */
export interface Fixture {
  ts: TestService;
  service: bios.ServiceClient;
  conn: Connection;
  tc: TrainingClient;
}

/** The checkpoints the node lists for a run. */
export async function checkpoints(
  f: Fixture,
  runId = f.tc.runId,
): Promise<CheckpointEntry[]> {
  return await f.conn.registry.ask<CheckpointEntry[]>({
    type: "list_checkpoints",
    runId,
  });
}

/**
 * Run `body` against a fresh run with gradients pending, then check the run
 * is exactly as if `body` had never happened.
 */
export async function withRun(
  body: (f: Fixture) => Promise<void>,
): Promise<void> {
  const ref = await referenceLosses();
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    const conn = await ts.connection();
    const f = { ts, service: ts.service, conn, tc };
    assert.equal((await tc.forward([DATUM], "cross_entropy")).loss, ref.before);
    await tc.forwardBackward([DATUM], "cross_entropy");
    const stepBefore = (await tc.getInfo()).step;
    const ckptsBefore = await checkpoints(f);
    // The node's actors are visible only when it runs in this process.
    const actors = () =>
      ts.deployment === "embedded" ? conn.system.liveActors().sort() : [];
    const actorsBefore = actors();

    await body(f);

    assert.equal(
      (await tc.forward([DATUM], "cross_entropy")).loss,
      ref.before,
      "weights changed",
    );
    assert.equal((await tc.getInfo()).step, stepBefore, "step changed");
    assert.deepEqual(await checkpoints(f), ckptsBefore, "checkpoints changed");
    assert.deepEqual(
      actors(),
      actorsBefore,
      "actors left behind",
    );
    await tc.optimStep({ learningRate: LR });
    assert.equal(
      (await tc.forward([DATUM], "cross_entropy")).loss,
      ref.after,
      "pending gradients changed",
    );
  } finally {
    await ts.close();
  }
}

/** An error class to expect. */
export type ErrorClass = new (...args: never[]) => Error;

/** `call` rejects with `cls`, `field` (when given), and a message holding every part. */
export async function rejects(
  call: () => PromiseLike<unknown> | unknown,
  cls: ErrorClass,
  field: string | undefined,
  ...parts: string[]
): Promise<void> {
  await assert.rejects(async () => await call(), (e: unknown) => {
    assert.ok(
      e instanceof cls,
      `expected ${cls.name}, got ${(e as Error)?.name}: ${
        (e as Error)?.message
      }`,
    );
    assert.equal(e.name, cls.name);
    if (field !== undefined) {
      assert.equal((e as { field?: string }).field, field);
    }
    for (const p of parts) {
      assert.ok(
        e.message.includes(p),
        `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`,
      );
    }
    return true;
  });
}
