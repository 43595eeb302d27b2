/**
 * Samplers are resources with a lifetime: a SamplingClient's close (or its
 * collection) stops its sampler, samplers of one base model share its
 * uploaded weights, concurrent first `TrainingClient.sample` calls share one
 * sampler, memory stays flat over many snapshot cycles, and a closed
 * ServiceClient refuses further calls instead of starting a new node.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { sharedBackend } from "../actors/compute.ts";
import type { Backend } from "../kernels/backend.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const PROMPT = bios.types.ModelInput.fromInts(
  textIds("Q: 2+2?\nA:").slice(0, -1),
);
const PARAMS = { maxTokens: 2, temperature: 0, seed: 1 };

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

/** Running samplers of the service's node (children of its `samplers` supervisor). */
async function samplerCount(service: bios.ServiceClient): Promise<number> {
  const c = await service.connection();
  const counts = await c.system.ref("samplers").ask<{ active: number }>({
    op: "count_children",
  });
  return counts.active;
}

/** A training client of TINY with one optimizer step taken. */
async function trainedClient(service: bios.ServiceClient) {
  const tc = await service.createLoraTrainingClient({
    baseModel: TINY,
    rank: 4,
    seed: 7,
  });
  await tc.train(SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t))), {
    learningRate: 1e-2,
  });
  return tc;
}

Deno.test("SamplingClient.close stops its sampler and later samples are refused", async () => {
  await withService(async ({ service }) => {
    const sc = await service.createSamplingClient({ baseModel: TINY });
    await sc.sample({ prompt: PROMPT, samplingParams: PARAMS });
    assert.equal(await samplerCount(service), 1);
    await sc.close();
    assert.equal(await samplerCount(service), 0);
    await sc.close(); // idempotent
    await assert.rejects(
      () => sc.sample({ prompt: PROMPT, samplingParams: PARAMS }).result(),
      (e: Error) =>
        e instanceof bios.ClientClosedError &&
        /SamplingClient is closed/.test(e.message),
    );
    await assert.rejects(
      () => sc.computeLogprobs(PROMPT).result(),
      bios.ClientClosedError,
    );
    {
      await using scoped = await service.createSamplingClient({
        baseModel: TINY,
      });
      assert.equal(scoped.getBaseModel(), TINY);
      assert.equal(await samplerCount(service), 1);
    }
    assert.equal(await samplerCount(service), 0);
  });
});

Deno.test("a snapshot's sampler is stopped when its SamplingClient is collected without close", async () => {
  await withService(async ({ service }) => {
    const tc = await trainedClient(service);
    await (async () => {
      // The client is reachable only inside this function.
      const sc = await tc.saveWeightsAndGetSamplingClient();
      await sc.sample({ prompt: PROMPT, samplingParams: PARAMS });
    })();
    assert.equal(await samplerCount(service), 1);
    // `deno task test` exposes gc(); elsewhere, old-generation garbage makes
    // V8 run full collections.
    const gc = (globalThis as { gc?: () => void }).gc;
    let n = 1;
    for (let i = 0; i < 400 && n > 0; i++) {
      if (gc) gc();
      else {
        let junk: number[][] | undefined = [];
        for (let j = 0; j < 20; j++) junk.push(new Array(100_000).fill(i));
        junk = undefined;
      }
      await new Promise((r) => setTimeout(r, 5));
      n = await samplerCount(service);
    }
    assert.equal(n, 0, "the sampler of a collected client is still running");
  });
});

/**
 * Count the f32 elements the shared backend uploads (`fromArray`, `write`)
 * and frees while `body` runs.
 */
async function countTraffic<T>(
  body: () => Promise<T>,
): Promise<{ uploaded: number; freed: number; value: T }> {
  const be: Backend = (await sharedBackend()).backend;
  const own = be as unknown as Record<string, unknown>;
  let uploaded = 0;
  let freed = 0;
  const fromArray = be.fromArray;
  const write = be.write;
  const free = be.free;
  own.fromArray = (d: Float32Array, s: readonly number[]) => {
    uploaded += d.length;
    return fromArray.call(be, d, s);
  };
  own.write = (t: never, d: Float32Array) => {
    uploaded += d.length;
    return write.call(be, t, d);
  };
  own.free = (t: { size: number }) => {
    freed += t.size;
    return free.call(be, t as never);
  };
  try {
    const value = await body();
    return { uploaded, freed, value };
  } finally {
    delete own.fromArray;
    delete own.write;
    delete own.free;
  }
}

Deno.test("samplers of one base model share its uploaded weights, freed with the last one", async () => {
  await withService(async ({ service }) => {
    const tc = await trainedClient(service);
    const first = await countTraffic(() =>
      tc.saveWeightsAndGetSamplingClient()
    );
    const second = await countTraffic(() =>
      tc.saveWeightsAndGetSamplingClient()
    );
    const third = await countTraffic(() =>
      service.createSamplingClient({ baseModel: TINY })
    );
    // The first uploads the model; the others only their adapters.
    assert.ok(
      second.uploaded * 4 < first.uploaded,
      `second sampler uploaded ${second.uploaded} elements, the first ${first.uploaded}`,
    );
    assert.ok(third.uploaded * 4 < first.uploaded, `${third.uploaded}`);
    const closeTwo = await countTraffic(async () => {
      await second.value.close();
      await third.value.close();
    });
    assert.ok(
      closeTwo.freed * 4 < first.uploaded,
      `closing two of three samplers freed ${closeTwo.freed} elements`,
    );
    const closeLast = await countTraffic(() => first.value.close());
    assert.ok(
      closeLast.freed >= first.uploaded - second.uploaded,
      `the last sampler freed ${closeLast.freed} of ${first.uploaded} elements`,
    );
    assert.equal(await samplerCount(service), 0);
  });
});

Deno.test("concurrent first TrainingClient.sample calls share one sampler; a newer version replaces it", async () => {
  await withService(async ({ service }) => {
    const tc = await trainedClient(service);
    const outs = await Promise.all(
      Array.from(
        { length: 16 },
        () => tc.sample({ prompt: PROMPT, samplingParams: PARAMS }).result(),
      ),
    );
    assert.equal(outs.length, 16);
    for (const o of outs) assert.deepEqual(o.sequences, outs[0].sequences);
    assert.equal(await samplerCount(service), 1);
    // Samples still queued on the old sampler when newer weights replace it
    // finish there; then the old sampler stops.
    const slow = Array.from(
      { length: 8 },
      () =>
        tc.sample({
          prompt: PROMPT,
          samplingParams: { maxTokens: 100, temperature: 1, seed: 3 },
          numSamples: 16,
        }).result(),
    );
    await tc.train(SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t))), {
      learningRate: 1e-2,
    });
    const fresh = await Promise.all(
      Array.from(
        { length: 4 },
        () => tc.sample({ prompt: PROMPT, samplingParams: PARAMS }).result(),
      ),
    );
    assert.notDeepEqual(fresh[0].sequences, outs[0].sequences);
    for (const o of await Promise.all(slow)) {
      assert.equal(o.sequences.length, 16);
    }
    assert.equal(await samplerCount(service), 1);
  });
});

Deno.test("a closed ServiceClient refuses further calls and starts no node", async () => {
  const ts = await startTestService();
  try {
    const { service } = ts;
    await service.getServerCapabilities();
    await service.close();
    await service.close(); // idempotent
    const refused = (e: Error) =>
      e instanceof bios.ClientClosedError &&
      /ServiceClient is closed/.test(e.message);
    await assert.rejects(() => service.getServerCapabilities(), refused);
    await assert.rejects(
      () => service.createLoraTrainingClient({ baseModel: TINY, rank: 4 }),
      refused,
    );
    await assert.rejects(
      () => service.createSamplingClient({ baseModel: TINY }),
      refused,
    );
    await assert.rejects(
      () => service.weightsInfo("bios://run-x/weights/a"),
      refused,
    );
    await assert.rejects(() => service.connection(), refused);
  } finally {
    await ts.close();
  }
});
