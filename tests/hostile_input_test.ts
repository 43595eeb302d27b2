/**
 * Hostile input: keys that name Object.prototype's members, values the wire
 * cannot carry, and numbers that would make a loss or a gradient overflow.
 * Each is refused with a named error, changes nothing (the strong check of
 * `_untouched_run.ts`), takes no sequence number when the client refuses it,
 * and leaves the next operation on the same client working.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { trainerAddress } from "../actors/trainer.ts";
import { packMicroBatches } from "../actors/micro_batch.ts";
import { normalizeDatum } from "../protocol/types/datum.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY_LOUD,
} from "./_helpers.ts";
import { DATUM, IDS, rejects, withRun } from "./_untouched_run.ts";

const { InvalidArgumentError } = bios.errors;

const TARGETS = IDS.slice(1);

/** DATUM with `extra` added to its loss inputs. */
function withInputs(extra: Record<string, unknown>): bios.types.DatumInput {
  return {
    modelInput: DATUM.modelInput,
    lossFnInputs: { ...DATUM.lossFnInputs, ...extra } as Record<
      string,
      bios.types.LossInputValue
    >,
  };
}

Deno.test("loss-input keys named after Object.prototype's members are refused as unknown, not crashing the trainer", async () => {
  await withRun(async ({ tc }) => {
    for (const key of ["constructor", "toString", "hasOwnProperty"]) {
      await rejects(
        () =>
          tc.forwardBackward([withInputs({ [key]: TARGETS })], "cross_entropy"),
        InvalidArgumentError,
        `data[0].lossFnInputs.${key}`,
        "is not a known loss input",
      );
    }
    // An own __proto__ key, as JSON.parse makes one.
    const proto = JSON.parse(
      `{"__proto__": ${JSON.stringify(TARGETS)}}`,
    ) as Record<string, unknown>;
    assert.ok(Object.hasOwn(proto, "__proto__"));
    await rejects(
      () => tc.forwardBackward([withInputs(proto)], "cross_entropy"),
      InvalidArgumentError,
      "data[0].lossFnInputs.__proto__",
      "is not a known loss input",
    );
  });
});

Deno.test("a raw trainer request with a `constructor` loss input takes its seq as an error and the trainer lives on", async () => {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient({
      baseModel: "test/tiny",
      rank: 4,
      seed: 1,
    });
    const conn = await ts.connection();
    const trainer = conn.system.ref(trainerAddress(tc.runId));
    const bad = {
      type: "forward_backward",
      runId: tc.runId,
      seq: 1,
      lossFn: "cross_entropy",
      data: [withInputs({ constructor: TARGETS })],
    };
    for (let i = 0; i < 2; i++) { // the replay gets the same error
      await assert.rejects(() => trainer.ask(bad), (e: Error) => {
        assert.ok(e instanceof InvalidArgumentError, `${e.name}: ${e.message}`);
        assert.equal(e.field, "data[0].lossFnInputs.constructor");
        return true;
      });
    }
    const info = await tc.getInfo();
    assert.equal(info.lastSeq, 1);
    const ok = await trainer.ask<bios.types.ForwardBackwardOutput>({
      type: "forward_backward",
      runId: tc.runId,
      seq: 2,
      lossFn: "cross_entropy",
      data: [DATUM],
    });
    assert.ok(Number.isFinite(ok.loss));
  } finally {
    await ts.close();
  }
});

Deno.test("lossFnConfig keys named after Object.prototype's members are named as given", async () => {
  await withRun(async ({ tc }) => {
    await rejects(
      () => tc.forwardBackward([DATUM], "cross_entropy", { constructor: 1 }),
      InvalidArgumentError,
      "lossFnConfig.constructor",
      "lossFnConfig.constructor is not a setting of cross_entropy",
    );
  });
});

Deno.test("values the wire cannot carry are refused by the client and take no seq", async () => {
  await withRun(async ({ tc }) => {
    const cyclic: Record<string, unknown> = { data: [1], dtype: "float32" };
    cyclic.self = cyclic;
    const fields: [string, unknown][] = [
      ["weights", () => 1],
      ["weights", Symbol("w")],
      ["weights", cyclic],
      ["weights", TARGETS.map((_, i) => i === 2 ? (() => 1) : 1)],
    ];
    const before = (await tc.getInfo()).lastSeq;
    for (const [key, value] of fields) {
      await rejects(
        () =>
          tc.forwardBackward([withInputs({ [key]: value })], "cross_entropy"),
        InvalidArgumentError,
        undefined,
        `data[0].lossFnInputs.${key}`,
      );
    }
    await rejects(
      () =>
        tc.forwardBackward(
          [{ ...DATUM, extra: () => 1 } as bios.types.DatumInput],
          "cross_entropy",
        ),
      InvalidArgumentError,
      "data[0].extra",
    );
    assert.equal((await tc.getInfo()).lastSeq, before, "a seq was used up");
  });
});

Deno.test("advantages given to cross_entropy are refused, not ignored", async () => {
  await withRun(async ({ tc }) => {
    await rejects(
      () =>
        tc.forwardBackward(
          [withInputs({ advantages: TARGETS.map(() => 1) })],
          "cross_entropy",
        ),
      InvalidArgumentError,
      "data[0].lossFnInputs.advantages",
      "is not an input of cross_entropy",
    );
  });
});

Deno.test("loss weights past the bound (3e38 is finite as float32) are refused before any compute", async () => {
  await withRun(async ({ tc }) => {
    const weights = TARGETS.map((_, i) => i === 3 ? 3e38 : 1);
    await rejects(
      () => tc.forwardBackward([withInputs({ weights })], "cross_entropy"),
      InvalidArgumentError,
      "data[0].lossFnInputs.weights[3]",
      "must be a weight in [-1000000, 1000000]: got 3e+38",
    );
  });
});

Deno.test("importance_sampling whose ratio overflows fails, naming the token, and accumulates nothing", async () => {
  await withRun(async ({ tc }) => {
    const logprobs = TARGETS.map((_, i) => i === 4 ? -100 : -1);
    const advantages = TARGETS.map(() => 1);
    const datum = {
      modelInput: DATUM.modelInput,
      lossFnInputs: { targetTokens: TARGETS, logprobs, advantages },
    };
    await rejects(
      () => tc.forwardBackward([datum], "importance_sampling"),
      InvalidArgumentError,
      "data[0].lossFnInputs",
      "overflow float32 at token 4",
      "sampling logprob -100",
      "nothing was accumulated",
    );
    // The same with the bad datum in a later micro-batch than good ones:
    // the earlier micro-batches' gradients are taken back too.
    const good = {
      modelInput: DATUM.modelInput,
      lossFnInputs: {
        targetTokens: TARGETS,
        logprobs: TARGETS.map(() => -1),
        advantages: TARGETS.map(() => 0.5),
      },
    };
    const batch = [...Array.from({ length: 400 }, () => good), datum];
    const mbs = packMicroBatches(
      batch.map((d) => normalizeDatum(d)),
      4096, // the test service's micro-batch size
    );
    assert.ok(mbs.length > 1 && !mbs[0].datums.includes(400));
    await rejects(
      () => tc.forwardBackward(batch, "importance_sampling"),
      InvalidArgumentError,
      "data[400].lossFnInputs",
    );
  });
});

Deno.test("a step never makes the weights non-finite: learningRate · weightDecay above 1 is refused", async () => {
  await withRun(async ({ tc }) => {
    await rejects(
      () => tc.optimStep({ learningRate: 5, weightDecay: 1 }),
      InvalidArgumentError,
      "adamParams.weightDecay",
      "must be at most 1 / learningRate (0.2)",
    );
  });
});

Deno.test("a forwardBackward whose gradients overflow float32 with a finite loss fails and accumulates nothing", async () => {
  const ts = await startTestService();
  try {
    const run = { baseModel: TINY_LOUD, rank: 4, alpha: 8, seed: 3 } as const;
    const ids = textIds(SAMPLE_TEXTS[1]);
    const good = nextTokenDatum(ids);
    const loud = {
      modelInput: good.modelInput,
      lossFnInputs: {
        targetTokens: ids.slice(1),
        weights: ids.slice(1).map(() => 1e6),
      },
    };
    const lossAfter = async (disturb: boolean) => {
      const tc = await ts.service.createLoraTrainingClient(run);
      await tc.forwardBackward([good], "cross_entropy");
      if (disturb) {
        const fwd = await tc.forward([loud], "cross_entropy");
        assert.ok(Number.isFinite(fwd.loss), "the loss itself is finite");
        await rejects(
          () => tc.forwardBackward([loud], "cross_entropy"),
          InvalidArgumentError,
          "data",
          "gradients that overflow float32",
          "nothing was accumulated",
        );
      }
      await tc.optimStep({ learningRate: 1e-2 });
      const after = (await tc.forward([good], "cross_entropy")).loss;
      assert.ok(Number.isFinite(after));
      return after;
    };
    assert.equal(await lossAfter(true), await lossAfter(false));
  } finally {
    await ts.close();
  }
});
