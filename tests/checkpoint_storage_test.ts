/**
 * Disk faults in the checkpoint store fail the one operation that met them,
 * with a StorageError (or a CorruptCheckpointError / NotFoundError for a
 * damaged or missing checkpoint) in `bios://` terms; the store never crashes
 * on them, and the rest of the node keeps working.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { CorruptCheckpointError } from "../actors/checkpoint_files.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import {
  mountTmpfs,
  REQUIRE_ALL,
  tmpfsUnavailableReason,
  unmountTmpfs,
} from "./_tmpfs.ts";

const { StorageError } = bios.errors;
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 5 } as const;
const DATUM = nextTokenDatum(textIds(SAMPLE_TEXTS[0]));

/** The node answers: a list, a new run that trains, a sampler from `path`. */
async function nodeWorks(ts: TestService, path: string): Promise<void> {
  const conn = await ts.connection();
  const caps = await ts.service.getServerCapabilities();
  assert.ok(caps.supportedModels.length > 0);
  const tc = await ts.service.createLoraTrainingClient(RUN);
  assert.ok(
    Number.isFinite((await tc.train([DATUM], { learningRate: 1e-2 })).loss),
  );
  await conn.registry.ask({ type: "list_checkpoints", runId: tc.runId });
  const sc = await ts.service.createSamplingClient({ modelPath: path });
  const out = await sc.sample({
    prompt: bios.types.ModelInput.fromInts([256, 81]),
    samplingParams: { maxTokens: 3, temperature: 0 },
    numSamples: 1,
  });
  assert.equal(out.sequences.length, 1);
}

async function listed(ts: TestService, runId: string): Promise<string[]> {
  const conn = await ts.connection();
  const entries = await conn.registry.ask<{ kind: string; name: string }[]>({
    type: "list_checkpoints",
    runId,
  });
  return entries.map((e) => `${e.kind}/${e.name}`);
}

function storageError(path: string, code: string, retryable: boolean) {
  return (e: unknown) => {
    assert.ok(
      e instanceof StorageError,
      `${(e as Error).name}: ${(e as Error).message}`,
    );
    assert.equal(e.code, "storage");
    assert.equal(e.retryable, retryable);
    assert.ok(
      e.message.startsWith(`saving ${path} failed: `),
      e.message,
    );
    assert.ok(e.message.includes(`(${code}); nothing was saved`), e.message);
    assert.ok(!e.message.includes("/tmp"), `no node folder: ${e.message}`);
    return true;
  };
}

const noTmpfs = await tmpfsUnavailableReason();
if (noTmpfs !== null && !REQUIRE_ALL) {
  console.log(`skipping the full-disk test: cannot mount a tmpfs (${noTmpfs})`);
}

Deno.test({
  name:
    "a full checkpoint disk fails that save with a retryable StorageError; the node keeps working and saves again once space is freed",
  ignore: noTmpfs !== null && !REQUIRE_ALL,
  async fn() {
    assert.equal(noTmpfs, null, `BIOS_REQUIRE_ALL=1: ${noTmpfs}`);
    const ts = await startTestService({ checkpointFolder: true });
    // The node starts on the first call, so the store sees only the tmpfs.
    const why = await mountTmpfs(ts.checkpointDir, "256k");
    assert.equal(why, null, `mount: ${why}`);
    try {
      const tc = await ts.service.createLoraTrainingClient(RUN);
      await tc.train([DATUM], { learningRate: 1e-2 });
      let full = -1;
      for (let i = 0; i < 40 && full < 0; i++) {
        const path = `bios://${tc.runId}/weights/c${i}`;
        await tc.saveState(`c${i}`).result().then(
          (r) => assert.equal(r.path, path),
          (e) => {
            storageError(path, "ENOSPC", true)(e);
            assert.match(
              (e as Error).message,
              /no space left on the checkpoint disk \(ENOSPC\); nothing was saved — free space and save again$/,
            );
            full = i;
          },
        );
      }
      assert.ok(full >= 1, `the disk filled at save ${full}`);
      const names = await listed(ts, tc.runId);
      assert.deepEqual(
        names,
        Array.from({ length: full }, (_, i) => `weights/c${i}`),
      );
      const left = await Array.fromAsync(
        Deno.readDir(`${ts.checkpointDir}/${tc.runId}/weights`),
      );
      assert.ok(
        left.every((e) => !e.name.startsWith(".")),
        `no partial save is left: ${left.map((e) => e.name)}`,
      );

      await tc.train([DATUM], { learningRate: 1e-2 });
      await nodeWorks(ts, `bios://${tc.runId}/weights/c0`);

      // Free space: delete a checkpoint's files; the same name saves now.
      await Deno.remove(`${ts.checkpointDir}/${tc.runId}/weights/c0`, {
        recursive: true,
      });
      const again = await tc.saveState(`c${full}`);
      assert.equal(again.path, `bios://${tc.runId}/weights/c${full}`);
      const back = await ts.service.createTrainingClientFromState(again.path, {
        withOptimizer: true,
      });
      assert.equal((await back.getInfo()).step, 2);
    } finally {
      await ts.close();
      await unmountTmpfs(ts.checkpointDir);
      await Deno.remove(ts.checkpointDir, { recursive: true });
    }
  },
});

Deno.test("a file in the way of a checkpoint folder (EEXIST, ENOTDIR) fails that save with a StorageError, and the node keeps working", async () => {
  const ts = await startTestService({ checkpointFolder: true });
  try {
    const a = await ts.service.createLoraTrainingClient(RUN);
    const b = await ts.service.createLoraTrainingClient(RUN);
    await a.train([DATUM], { learningRate: 1e-2 });
    const smp = await a.saveWeightsForSampler("s");
    // `<root>/<run>/weights` is a file: mkdir says "File exists".
    await Deno.writeTextFile(`${ts.checkpointDir}/${a.runId}/weights`, "x");
    // `<root>/<run>` is a file: mkdir says "Not a directory". (The run's
    // record, run.json, made it a folder: it goes first.)
    await Deno.remove(`${ts.checkpointDir}/${b.runId}`, { recursive: true });
    await Deno.writeTextFile(`${ts.checkpointDir}/${b.runId}`, "x");
    for (let i = 0; i < 5; i++) { // more than the store's restart intensity
      await assert.rejects(
        a.saveState("w").result(),
        storageError(`bios://${a.runId}/weights/w`, "EEXIST", false),
      );
      await assert.rejects(
        b.saveState("w").result(),
        storageError(`bios://${b.runId}/weights/w`, "ENOTDIR", false),
      );
    }
    await assert.rejects(
      b.saveState("w").result(),
      /a file is in the way of a checkpoint folder \(ENOTDIR\); nothing was saved — the node's operator must fix its checkpoint folder first$/,
    );
    // Loading and listing there: no checkpoint, not a crash.
    await assert.rejects(
      ts.service.createSamplingClient({
        modelPath: `bios://${a.runId}/weights/w`,
      }),
      bios.errors.NotFoundError,
    );
    assert.deepEqual(await listed(ts, a.runId), ["sampler_weights/s"]);
    assert.deepEqual(await listed(ts, b.runId), []);
    await a.saveWeightsForSampler("s2");
    await nodeWorks(ts, smp.path);

    // Once the file is gone, the same run saves under the same name.
    await Deno.remove(`${ts.checkpointDir}/${a.runId}/weights`);
    const { path } = await a.saveState("w");
    await a.loadStateWithOptimizer(path);
  } finally {
    await ts.close();
  }
});

Deno.test("a checkpoint with a file missing or a damaged manifest is refused by name; the others and the node keep working", async () => {
  const ts = await startTestService({ checkpointFolder: true });
  try {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    await tc.train([DATUM], { learningRate: 1e-2 });
    const missing = (await tc.saveState("missing")).path;
    const damaged = (await tc.saveState("damaged")).path;
    const good = (await tc.saveState("good")).path;
    const dir = `${ts.checkpointDir}/${tc.runId}/weights`;
    await Deno.remove(`${dir}/missing/adapter_model.safetensors`);
    await Deno.writeTextFile(`${dir}/damaged/manifest.json`, "{ not json");

    const corrupt = (path: string, what: string) => (e: unknown) => {
      assert.ok(
        e instanceof CorruptCheckpointError,
        `${(e as Error).name}: ${(e as Error).message}`,
      );
      assert.ok(
        e.message.startsWith(`checkpoint ${path} is damaged: `),
        e.message,
      );
      assert.ok(e.message.includes(what), e.message);
      assert.ok(!e.message.includes(ts.checkpointDir), e.message);
      return true;
    };
    for (let i = 0; i < 5; i++) { // more than the store's restart intensity
      assert.deepEqual(await listed(ts, tc.runId), [
        "weights/missing",
        "weights/good",
      ]);
      await assert.rejects(
        tc.loadState(missing).result(),
        corrupt(missing, "file adapter_model.safetensors is missing"),
      );
      await assert.rejects(
        ts.service.createSamplingClient({ modelPath: missing }),
        corrupt(missing, "adapter_model.safetensors is missing"),
      );
      await assert.rejects(
        ts.service.weightsInfo(damaged),
        corrupt(damaged, "manifest.json does not match the sha256"),
      );
      await assert.rejects(
        tc.loadStateWithOptimizer(damaged).result(),
        corrupt(damaged, "manifest.json"),
      );
    }
    await tc.loadStateWithOptimizer(good);
    assert.equal((await tc.getInfo()).step, 1);
    await nodeWorks(ts, good);
  } finally {
    await ts.close();
  }
});
