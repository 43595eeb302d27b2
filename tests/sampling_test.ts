/**
 * Sampling end to end: a fixed seed reproduces its samples, temperature 0 is
 * the argmax, and a fresh (untrained) adapter leaves the model's output as
 * the base model's.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { loadBaseModel } from "../actors/base_models.ts";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { Stage } from "../model/stage.ts";
import { splitLayers, uploadStage } from "../model/stage_weights.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
  TINY_VOCAB,
} from "./_helpers.ts";

const PROMPT_IDS = textIds("Q: 2+2?\nA:").slice(0, -1); // no EOS
const PROMPT = bios.types.ModelInput.fromInts(PROMPT_IDS);

async function withService(
  body: (ts: TestService) => Promise<void>,
): Promise<void> {
  const ts = await startTestService();
  try {
    await body(ts);
  } finally {
    await ts.close();
  }
}

Deno.test("SamplingClient.sample with a fixed seed gives the same samples twice", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const params = { maxTokens: 12, temperature: 1, seed: 42 };
    const a = await sc.sample({
      prompt: PROMPT,
      samplingParams: params,
      numSamples: 3,
    });
    const b = await sc.sample({
      prompt: PROMPT,
      samplingParams: params,
      numSamples: 3,
    });
    assert.deepEqual(b.sequences, a.sequences);
    // Another sampler of the same model agrees too.
    const other = await service.createSamplingClient({ baseModel: TINY });
    assert.deepEqual(
      (await other.sample({
        prompt: PROMPT,
        samplingParams: params,
        numSamples: 3,
      })).sequences,
      a.sequences,
    );
    // The samples of one request are not copies of each other, and another seed gives others.
    const tokens = a.sequences.map((s) => s.tokens.join(","));
    assert.ok(new Set(tokens).size > 1, `all samples equal: ${tokens}`);
    const c = await sc.sample({
      prompt: PROMPT,
      samplingParams: { ...params, seed: 43 },
      numSamples: 3,
    });
    assert.notDeepEqual(
      c.sequences.map((s) => s.tokens),
      a.sequences.map((s) => s.tokens),
    );
  });
});

Deno.test("SamplingClient.sample at temperature 0 picks the most likely token", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const out = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 3, temperature: 0, seed: 1 },
      numSamples: 2,
    });
    const again = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 3, temperature: 0, seed: 2 },
      numSamples: 1,
    });
    const greedy = out.sequences[0].tokens;
    assert.deepEqual(out.sequences[1].tokens, greedy);
    assert.deepEqual(again.sequences[0].tokens, greedy);
    assert.ok(greedy.length >= 1);

    // Score every vocabulary token after the prompt (and after the first greedy token).
    for (let j = 0; j < Math.min(2, greedy.length); j++) {
      const context = [...PROMPT_IDS, ...greedy.slice(0, j)];
      const scores = await Promise.all(
        Array.from({ length: TINY_VOCAB }, async (_, v) => {
          const lps = await sc.computeLogprobs(
            bios.types.ModelInput.fromInts([...context, v]),
          );
          return lps.at(-1) as number;
        }),
      );
      let best = 0;
      for (let v = 1; v < TINY_VOCAB; v++) {
        if (scores[v] > scores[best]) best = v;
      }
      assert.equal(
        greedy[j],
        best,
        `position ${j}: sampled ${greedy[j]}, argmax ${best}`,
      );
      // The reported logprob is the model's.
      assert.ok(
        Math.abs(out.sequences[0].logprobs[j] - scores[best]) < 1e-4,
        `${out.sequences[0].logprobs[j]} vs ${scores[best]}`,
      );
    }
  });
});

Deno.test("an untrained LoRA adapter leaves the base model's logprobs unchanged", async () => {
  await withService(async ({ service }) => {
    const base = await service.createSamplingClient({ baseModel: TINY });
    const tc = await service.createLoraTrainingClient({
      baseModel: TINY,
      rank: 8,
      alpha: 32,
      seed: 3,
    });
    for (const text of SAMPLE_TEXTS) {
      const ids = textIds(text);
      const baseLps =
        (await base.computeLogprobs(bios.types.ModelInput.fromInts(ids))).slice(
          1,
        ) as number[];
      const out = await tc.forward([nextTokenDatum(ids)], "cross_entropy");
      const runLps = Array.from(
        out.lossFnOutputs[0].logprobs.data as ArrayLike<number>,
      );
      assert.equal(runLps.length, baseLps.length);
      for (let i = 0; i < runLps.length; i++) {
        assert.ok(
          Math.abs(runLps[i] - baseLps[i]) <= 1e-5,
          `${text} position ${i}: ${runLps[i]} vs ${baseLps[i]}`,
        );
      }
    }
    // The comparison can tell: one step moves the run away from the base model.
    const ids = textIds(SAMPLE_TEXTS[0]);
    await tc.train([nextTokenDatum(ids)], { learningRate: 5e-2 });
    const baseLps =
      (await base.computeLogprobs(bios.types.ModelInput.fromInts(ids))).slice(
        1,
      ) as number[];
    const trained = Array.from(
      (await tc.forward([nextTokenDatum(ids)], "cross_entropy"))
        .lossFnOutputs[0].logprobs.data as ArrayLike<number>,
    );
    assert.ok(
      trained.some((x, i) => Math.abs(x - baseLps[i]) > 1e-3),
      "training changed nothing",
    );
    // And the training client's own sampler sees the trained weights.
    const mine = await tc.saveWeightsAndGetSamplingClient();
    const mineLps =
      (await mine.computeLogprobs(bios.types.ModelInput.fromInts(ids))).slice(
        1,
      ) as number[];
    for (let i = 0; i < trained.length; i++) {
      assert.ok(Math.abs(mineLps[i] - trained[i]) <= 1e-5);
    }
  });
});

Deno.test("SamplingClient.sample with minP 1 at temperature 1 is greedy", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const greedy = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 8, temperature: 0, seed: 1 },
    });
    const minP = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 8, temperature: 1, minP: 1, seed: 9 },
      numSamples: 3,
    });
    for (const s of minP.sequences) {
      assert.deepEqual(s.tokens, greedy.sequences[0].tokens);
      // one token kept: the distribution sampled from gives it probability 1
      assert.deepEqual(s.logprobs, s.logprobs.map(() => 0));
    }
    // and a small minP still samples (several tokens kept)
    const loose = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 8, temperature: 1, minP: 1e-4, seed: 9 },
      numSamples: 3,
    });
    assert.ok(
      loose.sequences.some((s) =>
        s.tokens.join() !== greedy.sequences[0].tokens.join()
      ),
      "minP 1e-4 gave the greedy tokens every time",
    );
  });
});

/** log p(v | ids[0..i]) for every position i and token v, on the CPU backend, in float64. */
async function cpuPromptLogSoftmax(ids: number[]): Promise<Float64Array[]> {
  const base = await loadBaseModel(TINY);
  const be = new CpuBackend();
  const range = splitLayers(base.config.numLayers, 1)[0];
  const stage = new Stage(
    be,
    base.config,
    range,
    uploadStage(be, base.config, base.tensors, range),
  );
  const T = ids.length - 1, V = base.config.vocabSize;
  const { ctx } = stage.forward(
    be.fromInts(Int32Array.from(ids.slice(0, T)), [T]),
    { batch: 1, seqLen: T },
    be.fromInts(Int32Array.from(ids.slice(1)), [T]),
  );
  const logits = await be.read(ctx.head!.logits.y);
  return Array.from({ length: T }, (_, i) => {
    const row = logits.subarray(i * V, (i + 1) * V);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    return Float64Array.from(row, (x) => x - lse);
  });
}

Deno.test("SamplingClient.sample's topkPromptLogprobs are the raw model's k likeliest tokens at each prompt position", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const full = await cpuPromptLogSoftmax(PROMPT_IDS);
    let targetsSeen = 0;
    for (const k of [1, 7, 100]) {
      const out = await sc.sample({
        prompt: PROMPT,
        // tempered and filtered sampling leaves the prompt's numbers alone
        samplingParams: { maxTokens: 2, temperature: 0.5, topK: 3, seed: 4 },
        includePromptLogprobs: true,
        topkPromptLogprobs: k,
      });
      const top = out.topkPromptLogprobs!, lps = out.promptLogprobs!;
      assert.equal(top.length, PROMPT_IDS.length);
      assert.equal(top[0], null);
      for (let i = 1; i < PROMPT_IDS.length; i++) {
        const row = top[i]!, want = full[i - 1];
        assert.equal(row.length, k);
        for (let j = 1; j < k; j++) {
          const [a, b] = [row[j - 1], row[j]];
          assert.ok(a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]), "order");
        }
        // the CPU's full log-softmax agrees on the values, and nothing left
        // out beats the last one kept
        for (const [id, lp] of row) {
          assert.ok(Math.abs(lp - want[id]) < 1e-4, `${i} ${id}`);
        }
        const kept = new Set(row.map(([id]) => id));
        const last = row[k - 1][1];
        for (let v = 0; v < want.length; v++) {
          if (!kept.has(v)) assert.ok(want[v] <= last + 1e-4, `${i} ${v}`);
        }
        // the prompt token itself, when in the top k: its promptLogprob
        const hit = row.find(([id]) => id === PROMPT_IDS[i]);
        if (hit) {
          targetsSeen++;
          assert.ok(
            Math.abs(hit[1] - (lps[i] as number)) <= 1e-6,
            `${hit[1]} vs ${lps[i]}`,
          );
        }
      }
    }
    assert.ok(targetsSeen > 0, "no prompt token was in its top k");
    // without includePromptLogprobs, the top k come alone; without either, neither
    const alone = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 1 },
      topkPromptLogprobs: 2,
    });
    assert.equal(alone.promptLogprobs, undefined);
    assert.equal(alone.topkPromptLogprobs!.length, PROMPT_IDS.length);
    const none = await sc.sample({
      prompt: PROMPT,
      samplingParams: { maxTokens: 1 },
    });
    assert.equal(none.topkPromptLogprobs, undefined);
    // a one-token prompt: only the null
    const one = await sc.sample({
      prompt: bios.types.ModelInput.fromInts([PROMPT_IDS[0]]),
      samplingParams: { maxTokens: 1 },
      topkPromptLogprobs: 3,
    });
    assert.deepEqual(one.topkPromptLogprobs, [null]);
  });
});

Deno.test("SamplingClient.sample refuses bad topkPromptLogprobs, minP and repetitionPenalty by name", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        { topkPromptLogprobs: -1 },
        "topkPromptLogprobs",
        /^topkPromptLogprobs must be an integer in \[0, 100\] \(0 is off\): got -1$/,
      ],
      [{ topkPromptLogprobs: 101 }, "topkPromptLogprobs", /got 101$/],
      [{ topkPromptLogprobs: 2.5 }, "topkPromptLogprobs", /got 2\.5$/],
      [{ topkPromptLogprobs: "3" }, "topkPromptLogprobs", /\[0, 100\]/],
      [
        { samplingParams: { maxTokens: 2, minP: 2 } },
        "samplingParams.minP",
        /must be in \[0, 1\]/,
      ],
      [
        { samplingParams: { maxTokens: 2, repetitionPenalty: -1 } },
        "samplingParams.repetitionPenalty",
        /must be in \(0, 10\]/,
      ],
    ];
    for (const [extra, field, message] of cases) {
      await assert.rejects(
        async () =>
          await sc.sample({
            prompt: PROMPT,
            samplingParams: { maxTokens: 2 },
            ...extra,
          } as bios.SampleArgs),
        { name: "InvalidArgumentError", field, message },
        JSON.stringify(extra),
      );
    }
  });
});

Deno.test("SamplingClient.sample with a large repetitionPenalty keeps a greedy generation from repeating tokens", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const params = { maxTokens: 16, temperature: 0, seed: 1 };
    const plain = (await sc.sample({ prompt: PROMPT, samplingParams: params }))
      .sequences[0].tokens;
    const repeats = (t: number[]) => t.length - new Set(t).size;
    assert.ok(repeats(plain) > 0, `plain greedy does not repeat: ${plain}`);
    const out = await sc.sample({
      prompt: PROMPT,
      samplingParams: { ...params, repetitionPenalty: 10 },
      numSamples: 2,
    });
    for (const s of out.sequences) {
      assert.equal(s.tokens.length, 16);
      assert.equal(repeats(s.tokens), 0, `${s.tokens}`);
      assert.ok(s.tokens.every((t) => !PROMPT_IDS.includes(t)), `${s.tokens}`);
    }
    // 1 is off: the plain greedy tokens
    const off = await sc.sample({
      prompt: PROMPT,
      samplingParams: { ...params, repetitionPenalty: 1 },
    });
    assert.deepEqual(off.sequences[0].tokens, plain);
  });
});

Deno.test("SamplingClient.sample's onTokens passes on each sequence's tokens as they are drawn, once each and in order", async () => {
  await withService(async ({ service, deployment }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    const params = { maxTokens: 24, temperature: 1, seed: 7 };
    const args = { prompt: PROMPT, samplingParams: params, numSamples: 2 };
    const plain = await sc.sample(args);
    const got = [0, 1].map(() => ({
      tokens: [] as number[],
      logprobs: [] as number[],
    }));
    const sizes: number[] = [];
    const out = await sc.sample({
      ...args,
      onTokens: (p) => {
        assert.equal(p.sequences.length, 2);
        p.sequences.forEach((s, b) => {
          assert.equal(s.from, got[b].tokens.length, `sequence ${b}`);
          got[b].tokens.push(...s.tokens);
          got[b].logprobs.push(...s.logprobs);
        });
        sizes.push(got[0].tokens.length + got[1].tokens.length);
      },
    });
    // Streaming changes nothing drawn, and every token came through it.
    assert.deepEqual(out.sequences, plain.sequences);
    assert.deepEqual(
      got,
      out.sequences.map((s) => ({ tokens: s.tokens, logprobs: s.logprobs })),
    );
    const total = out.sequences.reduce((a, s) => a + s.tokens.length, 0);
    if (deployment === "gateway") {
      // The Tinker wire has no stream: all of them at once, with the reply.
      assert.deepEqual(sizes, [total]);
    } else {
      assert.ok(sizes.length >= 2 && sizes[0] < total, `${sizes} of ${total}`);
    }

    // An error of the callback's fails the sample; a callback that is not
    // a function is refused by name.
    await assert.rejects(
      async () =>
        await sc.sample({
          ...args,
          onTokens: () => {
            throw new Error("the caller's own");
          },
        }),
      /the caller's own/,
    );
    await assert.rejects(
      async () =>
        await sc.sample({
          ...args,
          onTokens: 3 as unknown as () => void,
        }),
      (e: Error) =>
        e.name === "InvalidArgumentError" && /onTokens/.test(e.message),
    );
  });
});
