/**
 * Bad input, end to end: every rejected call gets a named error (the same
 * class the actor threw) whose `field` and message name the field and its
 * limit, and it changes nothing. "Nothing" is checked the strong way: every
 * fixture has gradients pending from one forwardBackward before the bad call;
 * afterwards the forward loss and the step are as before, and the pending
 * optimizer step lands exactly where a run that never saw the bad call lands.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { TINY, TINY2 } from "./_helpers.ts";
import type { Connection } from "../client/connection.ts";
import {
  DATUM,
  type Fixture,
  IDS,
  N,
  rejects,
  RUN,
  withRun,
} from "./_untouched_run.ts";

const { InvalidArgumentError, NotFoundError, ConflictError } = bios.errors;

function rawInput(tokens: number[]): bios.types.ModelInput {
  return { chunks: [{ type: "encoded_text", tokens }] };
}

function withToken(i: number, v: number): bios.types.DatumInput {
  const tokens = IDS.slice(0, -1);
  tokens[i] = v;
  return { modelInput: rawInput(tokens), lossFnInputs: DATUM.lossFnInputs };
}

// ---- training data ----

Deno.test("TrainingClient.forwardBackward rejects a token id outside the vocabulary", async () => {
  await withRun(async ({ tc }) => {
    const field = "data[0].modelInput.tokens[2]";
    await rejects(
      () => tc.forwardBackward([withToken(2, 259)], "cross_entropy"),
      InvalidArgumentError,
      field,
      field,
      "[0, 258]",
      "got 259",
    );
    await rejects(
      () => tc.forward([withToken(2, 259)], "cross_entropy"),
      InvalidArgumentError,
      field,
      "[0, 258]",
    );
    const targets = IDS.slice(1);
    targets[1] = 259;
    const bad = {
      modelInput: DATUM.modelInput,
      lossFnInputs: { targetTokens: targets },
    };
    const tfield = "data[0].lossFnInputs.targetTokens[1]";
    await rejects(
      () => tc.forwardBackward([bad], "cross_entropy"),
      InvalidArgumentError,
      tfield,
      tfield,
      "[0, 258]",
      "got 259",
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects a negative token id", async () => {
  await withRun(async ({ tc }) => {
    const field = "data[0].modelInput.chunks[0].tokens[2]";
    await rejects(
      () => tc.forwardBackward([withToken(2, -1)], "cross_entropy"),
      InvalidArgumentError,
      field,
      field,
      "[0, 2147483647]",
      "got -1",
    );
    // ModelInput.fromInts refuses it before anything is sent.
    assert.throws(
      () => bios.types.ModelInput.fromInts([1, -1]),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.equal(e.field, "tokens[1]");
        return true;
      },
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects an empty batch", async () => {
  await withRun(async ({ tc }) => {
    await rejects(
      () => tc.forwardBackward([], "cross_entropy"),
      InvalidArgumentError,
      "data",
      "data",
      "at least 1 datum",
    );
    await rejects(
      () => tc.forward([], "cross_entropy"),
      InvalidArgumentError,
      "data",
      "at least 1 datum",
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects an empty model input", async () => {
  await withRun(async ({ tc }) => {
    const empty = {
      modelInput: bios.types.ModelInput.empty(),
      lossFnInputs: { targetTokens: [] },
    };
    await rejects(
      () => tc.forwardBackward([DATUM, empty], "cross_entropy"),
      InvalidArgumentError,
      "data[1].modelInput",
      "data[1].modelInput",
      "at least 1 token",
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects targetTokens and weights whose length differs from the input", async () => {
  await withRun(async ({ tc }) => {
    const short = {
      modelInput: DATUM.modelInput,
      lossFnInputs: { targetTokens: IDS.slice(2) },
    };
    const f1 = "data[0].lossFnInputs.targetTokens";
    await rejects(
      () => tc.forwardBackward([short], "cross_entropy"),
      InvalidArgumentError,
      f1,
      f1,
      `(${N})`,
      `length ${N - 1}`,
    );
    const long = {
      modelInput: DATUM.modelInput,
      lossFnInputs: { targetTokens: [...IDS.slice(1), 5] },
    };
    await rejects(
      () => tc.forwardBackward([long], "cross_entropy"),
      InvalidArgumentError,
      f1,
      `(${N})`,
      `length ${N + 1}`,
    );
    const weights = {
      modelInput: DATUM.modelInput,
      lossFnInputs: { targetTokens: IDS.slice(1), weights: [1, 1] },
    };
    const f2 = "data[0].lossFnInputs.weights";
    await rejects(
      () => tc.forwardBackward([DATUM, weights], "cross_entropy"),
      InvalidArgumentError,
      f2.replace("[0]", "[1]"),
      `(${N})`,
      "length 2",
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects an unknown loss function", async () => {
  await withRun(async ({ tc }) => {
    await rejects(
      () => tc.forwardBackward([DATUM], "mse" as bios.types.LossFnType),
      InvalidArgumentError,
      "lossFn",
      "lossFn",
      '"cross_entropy"',
      '"ppo"',
      'got "mse"',
    );
  });
});

Deno.test("TrainingClient.forwardBackward rejects a loss input the loss needs but lacks (ppo without advantages)", async () => {
  await withRun(async ({ tc }) => {
    const noAdv = {
      modelInput: DATUM.modelInput,
      lossFnInputs: {
        targetTokens: IDS.slice(1),
        logprobs: IDS.slice(1).map(() => -1),
      },
    };
    const field = "data[0].lossFnInputs.advantages";
    await rejects(
      () => tc.forwardBackward([noAdv], "ppo"),
      InvalidArgumentError,
      field,
      field,
      "ppo",
    );
  });
});

// ---- optimizer ----

Deno.test("TrainingClient.optimStep rejects a NaN, infinite or negative learning rate", async () => {
  await withRun(async ({ tc }) => {
    for (const lr of [NaN, Infinity, -1e-3, 0]) {
      await rejects(
        () => tc.optimStep({ learningRate: lr }),
        InvalidArgumentError,
        "adamParams.learningRate",
        "adamParams.learningRate",
        "(0, 10]",
        `got ${lr}`,
      );
    }
  });
});

// ---- run creation ----

async function createRejects(
  f: Fixture,
  opts: Record<string, unknown>,
  field: string,
  ...parts: string[]
): Promise<void> {
  await rejects(
    () =>
      f.service.createLoraTrainingClient(
        opts as unknown as bios.types.CreateLoraTrainingClientOptionsInput,
      ),
    InvalidArgumentError,
    field,
    field,
    ...parts,
  );
}

Deno.test("ServiceClient.createLoraTrainingClient rejects rank 0 and a rank above the model width", async () => {
  await withRun(async (f) => {
    await createRejects(
      f,
      { baseModel: TINY, rank: 0 },
      "rank",
      "≥ 1",
      "got 0",
    );
    await createRejects(
      f,
      { baseModel: TINY, rank: 17 },
      "rank",
      "[1, 16]",
      "got 17",
    );
    await createRejects(
      f,
      { baseModel: TINY, rank: 1000 },
      "rank",
      "[1, 16]",
      "got 1000",
    );
    await createRejects(
      f,
      { baseModel: TINY, rank: 2.5 },
      "rank",
      "integer",
      "got 2.5",
    );
  });
});

Deno.test("ServiceClient.createLoraTrainingClient rejects alpha ≤ 0", async () => {
  await withRun(async (f) => {
    await createRejects(
      f,
      { baseModel: TINY, rank: 4, alpha: 0 },
      "alpha",
      "> 0",
      "got 0",
    );
    await createRejects(
      f,
      { baseModel: TINY, rank: 4, alpha: -1 },
      "alpha",
      "> 0",
      "got -1",
    );
  });
});

Deno.test("ServiceClient.createLoraTrainingClient rejects dropout outside [0, 1)", async () => {
  await withRun(async (f) => {
    await createRejects(
      f,
      { baseModel: TINY, rank: 4, dropout: 1 },
      "dropout",
      "[0, 1)",
      "got 1",
    );
    await createRejects(
      f,
      { baseModel: TINY, rank: 4, dropout: -0.1 },
      "dropout",
      "[0, 1)",
      "got -0.1",
    );
  });
});

Deno.test("ServiceClient.createLoraTrainingClient rejects an unknown base model", async () => {
  await withRun(async (f) => {
    await createRejects(
      f,
      { baseModel: "nope/none", rank: 4 },
      "baseModel",
      '"nope/none"',
      TINY,
    );
  });
});

// ---- sampling ----

Deno.test("SamplingClient.sample rejects maxTokens ≤ 0, temperature < 0, topP 0 or 1.5, numSamples 0", async () => {
  await withRun(async ({ service, tc, conn }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const prompt = bios.types.ModelInput.fromInts(IDS.slice(0, 4));
    const cases: [bios.types.SamplingParamsInput, number, string, string[]][] =
      [
        [{ maxTokens: 0 }, 1, "samplingParams.maxTokens", [
          "[1, 4096]",
          "got 0",
        ]],
        [{ maxTokens: -3 }, 1, "samplingParams.maxTokens", [
          "[1, 4096]",
          "got -3",
        ]],
        [{ maxTokens: 2, temperature: -0.5 }, 1, "samplingParams.temperature", [
          "≥ 0",
          "got -0.5",
        ]],
        [{ maxTokens: 2, topP: 0 }, 1, "samplingParams.topP", [
          "(0, 1]",
          "got 0",
        ]],
        [{ maxTokens: 2, topP: 1.5 }, 1, "samplingParams.topP", [
          "(0, 1]",
          "got 1.5",
        ]],
        [{ maxTokens: 2 }, 0, "numSamples", ["[1, 128]", "got 0"]],
      ];
    for (const [samplingParams, numSamples, field, parts] of cases) {
      await rejects(
        () => sc.sample({ prompt, samplingParams, numSamples }),
        InvalidArgumentError,
        field,
        field,
        ...parts,
      );
    }
    // The training client's own sampler says the same.
    await rejects(
      () => tc.sample({ prompt, samplingParams: { maxTokens: 0 } }),
      InvalidArgumentError,
      "samplingParams.maxTokens",
      "[1, 4096]",
    );
    // The sampler lives on and still answers.
    const ok = await sc.sample({
      prompt,
      samplingParams: { maxTokens: 3, temperature: 0 },
      numSamples: 2,
    });
    assert.equal(ok.sequences.length, 2);
    // Samplers were added: take them out of the "no actors left behind" check.
    await stopSamplers(conn);
  });
});

async function stopSamplers(conn: Connection): Promise<void> {
  for (const a of conn.system.liveActors()) {
    if (a.startsWith("samplers.")) await conn.system.stop(a);
  }
}

// ---- checkpoints ----

Deno.test("TrainingClient.loadState rejects a checkpoint made for another base model or another rank", async () => {
  await withRun(async (f) => {
    const other = await f.service.createLoraTrainingClient({
      ...RUN,
      baseModel: TINY2,
    });
    const p2 = (await other.saveState("tiny2")).path;
    await rejects(
      () => f.tc.loadState(p2),
      InvalidArgumentError,
      "path",
      TINY2,
      "trains test/tiny",
    );
    await rejects(
      () => f.tc.loadStateWithOptimizer(p2),
      InvalidArgumentError,
      "path",
      TINY2,
    );
    const r8 = await f.service.createLoraTrainingClient({ ...RUN, rank: 8 });
    const p8 = (await r8.saveState("rank8")).path;
    await rejects(
      () => f.tc.loadStateWithOptimizer(p8),
      InvalidArgumentError,
      "path",
      "rank 8",
      "rank 4",
    );
    await stopRuns(f, [other.runId, r8.runId]);
  });
});

async function stopRuns(f: Fixture, runIds: string[]): Promise<void> {
  for (const a of f.conn.system.liveActors()) {
    if (runIds.some((id) => a.includes(id))) {
      await f.conn.system.stop(a).catch(() => {});
    }
  }
  // Their supervisors too: every address naming the run.
  for (const a of f.conn.system.liveActors()) {
    if (runIds.some((id) => a.includes(id))) {
      await f.conn.system.stop(a).catch(() => {});
    }
  }
}

Deno.test("TrainingClient.loadState rejects a sampler-only checkpoint", async () => {
  await withRun(async (f) => {
    const other = await f.service.createLoraTrainingClient(RUN);
    const path = (await other.saveWeightsForSampler("smp")).path;
    assert.ok(path.includes("/sampler_weights/"));
    await rejects(
      () => f.tc.loadState(path),
      InvalidArgumentError,
      "path",
      "sampler",
      "weights/<name>",
    );
    await rejects(
      () => f.tc.loadStateWithOptimizer(path),
      InvalidArgumentError,
      "path",
      "sampler",
    );
    await rejects(
      () => f.service.createTrainingClientFromState(path),
      InvalidArgumentError,
      "path",
      "sampler",
    );
    await stopRuns(f, [other.runId]);
  });
});

Deno.test("TrainingClient.loadState rejects an unknown checkpoint path with NotFoundError", async () => {
  await withRun(async (f) => {
    const path = `bios://${f.tc.runId}/weights/never-saved`;
    await rejects(() => f.tc.loadState(path), NotFoundError, undefined, path);
    await rejects(
      () => f.service.createTrainingClientFromState(path),
      NotFoundError,
      undefined,
      path,
    );
    await rejects(
      () => f.service.createSamplingClient({ modelPath: path }),
      NotFoundError,
      undefined,
      path,
    );
    await rejects(
      () => f.service.weightsInfo(path),
      NotFoundError,
      undefined,
      path,
    );
    // The message names the checkpoint, not the node's folders.
    await rejects(
      () => f.tc.loadState(path),
      NotFoundError,
      undefined,
      "names no checkpoint",
    );
    await assert.rejects(
      () => f.tc.loadState(path).result(),
      (e: Error) => !e.message.includes(f.ts.checkpointDir),
    );
    // Not a checkpoint path at all (an absolute path names an adapter
    // folder: a file is none).
    await rejects(
      () => f.tc.loadState("etc/passwd"),
      InvalidArgumentError,
      "path",
      "bios://",
    );
    if (f.ts.deployment === "gateway") {
      // An adapter folder on a node's disk does not cross the HTTP gateway:
      // refused by the client, before it takes a seq.
      await rejects(
        () => f.tc.loadState("/etc/passwd"),
        InvalidArgumentError,
        "path",
        "HTTP gateway",
      );
    } else {
      await rejects(
        () => f.tc.loadState("/etc/passwd"),
        NotFoundError,
        undefined,
        "names no adapter folder",
      );
    }
  });
});

Deno.test("TrainingClient.saveState rejects names with '/', '..' and control characters", async () => {
  await withRun(async (f) => {
    for (
      const name of ["a/b", "..", "../escape", "a\u0001b", "line\nbreak", ""]
    ) {
      await rejects(
        () => f.tc.saveState(name),
        InvalidArgumentError,
        "name",
        "name must be 1–128 characters",
      );
      await rejects(
        () => f.tc.saveWeightsForSampler(name),
        InvalidArgumentError,
        "name",
        "name must be",
      );
    }
    // Nothing was written anywhere under the checkpoint folder (but the
    // runs' records, run.json, written when they were created).
    const written: string[] = [];
    for await (const e of Deno.readDir(f.ts.checkpointDir)) {
      for await (
        const inRun of Deno.readDir(`${f.ts.checkpointDir}/${e.name}`)
      ) {
        written.push(`${e.name}/${inRun.name}`);
      }
    }
    assert.deepEqual(
      written,
      f.ts.checkpoints === "files" ? [`${f.tc.runId}/run.json`] : [],
    );
  });
});

Deno.test("TrainingClient.saveState refuses a taken name with ConflictError unless overwrite is set", async () => {
  await withRun(async (f) => {
    const other = await f.service.createLoraTrainingClient(RUN);
    const first = await other.saveState("taken");
    await rejects(
      () => other.saveState("taken"),
      ConflictError,
      undefined,
      '"taken"',
      "overwrite",
    );
    assert.deepEqual(
      await other.saveState("taken", { overwrite: true }),
      first,
    );
    await stopRuns(f, [other.runId]);
  });
});
