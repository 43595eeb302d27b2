/**
 * Checkpoints end to end: a resume with the optimizer replays bit-exactly,
 * a load without it restores the weights but starts Adam fresh, the files
 * are PEFT's layout with a hashed manifest covered by the completion record,
 * a save is written whole or not at all (even when the process is killed
 * mid-save), and damage is detected.
 */
import assert from "node:assert/strict";
import type * as bios from "../mod.ts";
import type { TrainingClient } from "../client/training_client.ts";
import { NotFoundError } from "../runtime/errors.ts";
import {
  type CheckpointData,
  type CheckpointManifest,
  CorruptCheckpointError,
  listCheckpoints,
  readCheckpoint,
  sha256Hex,
  writeCheckpoint,
} from "../actors/checkpoint_files.ts";
import { readSafetensorsFile } from "../model/safetensors.ts";
import {
  ensureTinyModels,
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const LR = 1e-2;
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 11 } as const;
const BATCHES: bios.types.DatumInput[][] = [
  ...SAMPLE_TEXTS.map((t) => [nextTokenDatum(textIds(t))]),
  SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t.toUpperCase()))),
  [nextTokenDatum(textIds("Q: 1+1?\nA: 2"))],
  [
    nextTokenDatum(textIds("Q: sky?\nA: blue")),
    nextTokenDatum(textIds("hello")),
  ],
];
const PROBE = [nextTokenDatum(textIds("Q: 5-1?\nA: 4"))];

async function trainSteps(
  tc: TrainingClient,
  batches: bios.types.DatumInput[][],
): Promise<number[]> {
  const losses: number[] = [];
  for (const b of batches) {
    losses.push((await tc.train(b, { learningRate: LR })).loss);
  }
  return losses;
}

async function probeLoss(tc: TrainingClient): Promise<number> {
  return (await tc.forward(PROBE, "cross_entropy")).loss;
}

async function withService(
  body: (ts: TestService) => Promise<void>,
  opts: { checkpointFolder?: boolean } = {},
): Promise<void> {
  const ts = await startTestService(opts);
  try {
    await body(ts);
  } finally {
    await ts.close();
  }
}

function folderOf(ts: TestService, path: string): string {
  const m = /^bios:\/\/([^/]+)\/(weights|sampler_weights)\/([^/]+)$/.exec(path);
  assert.ok(m, `not a checkpoint path: ${path}`);
  return `${ts.checkpointDir}/${m[1]}/${m[2]}/${m[3]}`;
}

Deno.test("TrainingClient resumed from saveState with its optimizer trains bit-identically", async () => {
  await withService(async ({ service }) => {
    const a = await service.createLoraTrainingClient(RUN);
    await trainSteps(a, BATCHES.slice(0, 3));
    const { path } = await a.saveState("mid");
    const probeAtSave = await probeLoss(a);
    const lossesA = await trainSteps(a, BATCHES.slice(3));
    const probeA = await probeLoss(a);

    const b = await service.createTrainingClientFromState(path, {
      withOptimizer: true,
    });
    assert.notEqual(b.runId, a.runId);
    assert.equal((await b.getInfo()).step, 3);
    assert.equal(await probeLoss(b), probeAtSave);
    const lossesB = await trainSteps(b, BATCHES.slice(3));
    for (let i = 0; i < lossesA.length; i++) {
      assert.ok(
        lossesB[i] === lossesA[i],
        `step ${i + 4}: ${lossesB[i]} !== ${lossesA[i]}`,
      );
    }
    assert.equal(await probeLoss(b), probeA);
    assert.equal((await b.getInfo()).step, 6);
  });
});

Deno.test("TrainingClient.loadState restores the weights but starts Adam fresh", async () => {
  await withService(async ({ service }) => {
    const a = await service.createLoraTrainingClient(RUN);
    await trainSteps(a, BATCHES.slice(0, 3));
    const probeAtSave = await probeLoss(a);
    const { path } = await a.saveState("mid");
    const withOpt = await trainSteps(a, BATCHES.slice(3, 5));

    // A fresh run (other seed, so other initial weights) loading weights only.
    const b = await service.createLoraTrainingClient({ ...RUN, seed: 99 });
    assert.notEqual(await probeLoss(b), probeAtSave);
    await b.loadState(path);
    assert.equal(await probeLoss(b), probeAtSave);
    assert.equal((await b.getInfo()).step, 0);
    const fresh = await trainSteps(b, BATCHES.slice(3, 5));
    // Same weights, so the first forward agrees; the update differs (fresh moments, step 1).
    assert.equal(fresh[0], withOpt[0]);
    assert.notEqual(fresh[1], withOpt[1]);

    // The same through the service, which makes the run from the checkpoint's config.
    const c = await service.createTrainingClientFromState(path);
    assert.equal(await probeLoss(c), probeAtSave);
    assert.equal((await c.getInfo()).step, 0);
    assert.deepEqual(await trainSteps(c, BATCHES.slice(3, 5)), fresh);
  });
});

Deno.test("TrainingClient.saveState writes PEFT adapter files, optimizer state and a manifest of sha256 hashes", async () => {
  await withService(async (ts) => {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    await trainSteps(tc, BATCHES.slice(0, 2));
    const { path } = await tc.saveState("files");
    assert.equal(path, `bios://${tc.runId}/weights/files`);
    const dir = folderOf(ts, path);
    assert.equal(dir, `${ts.checkpointDir}/${tc.runId}/weights/files`);

    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    for (
      const f of [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "manifest.json",
      ]
    ) {
      assert.ok(names.includes(f), `${f} missing from ${names}`);
    }

    const cfg = JSON.parse(
      await Deno.readTextFile(`${dir}/adapter_config.json`),
    );
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.r, RUN.rank);
    assert.equal(cfg.lora_alpha, RUN.alpha);
    assert.deepEqual(
      [...cfg.target_modules].sort(),
      [
        "down_proj",
        "gate_proj",
        "k_proj",
        "lm_head",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
      ],
    );

    const adapter = await readSafetensorsFile(
      `${dir}/adapter_model.safetensors`,
    );
    const qa = adapter.tensors.get(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
    );
    const qb = adapter.tensors.get(
      "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
    );
    assert.deepEqual(qa?.shape, [RUN.rank, 32]);
    assert.deepEqual(qb?.shape, [32, RUN.rank]);
    assert.ok(
      adapter.tensors.has(
        "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
      ),
    );
    assert.ok(adapter.tensors.has("base_model.model.lm_head.lora_A.weight"));
    // Two adapted matrices per module: 7 per layer × 2 layers, plus lm_head.
    assert.equal(adapter.tensors.size, 2 * (7 * 2 + 1));
    // Trained: B is no longer zero.
    assert.ok(qb!.data.some((x) => x !== 0));

    const opt = await readSafetensorsFile(`${dir}/optimizer.safetensors`);
    for (const k of adapter.tensors.keys()) {
      assert.deepEqual(
        opt.tensors.get(`m.${k}`)?.shape,
        adapter.tensors.get(k)!.shape,
      );
      assert.deepEqual(
        opt.tensors.get(`v.${k}`)?.shape,
        adapter.tensors.get(k)!.shape,
      );
    }
    assert.equal(opt.metadata.step, "2");

    const manifest: CheckpointManifest = JSON.parse(
      await Deno.readTextFile(`${dir}/manifest.json`),
    );
    assert.equal(manifest.baseModel, TINY);
    assert.equal(manifest.step, 2);
    assert.equal(manifest.kind, "weights");
    assert.deepEqual(
      Object.keys(manifest.files).sort(),
      [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
      ],
    );
    // The completion record, written last, covers the manifest.
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${dir}/checkpoint_complete`)),
      {
        manifest_sha256: await sha256Hex(
          await Deno.readFile(`${dir}/manifest.json`),
        ),
      },
    );
    for (const [file, hash] of Object.entries(manifest.files)) {
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.equal(
        await sha256Hex(await Deno.readFile(`${dir}/${file}`)),
        hash,
        `${file} hash`,
      );
    }

    // A sampler copy has the adapter but no optimizer state.
    const smp = folderOf(ts, (await tc.saveWeightsForSampler("files")).path);
    const smpManifest: CheckpointManifest = JSON.parse(
      await Deno.readTextFile(`${smp}/manifest.json`),
    );
    assert.equal(smpManifest.kind, "sampler_weights");
    assert.ok(!("optimizer.safetensors" in smpManifest.files));
    await assert.rejects(
      () => Deno.stat(`${smp}/optimizer.safetensors`),
      Deno.errors.NotFound,
    );
  }, { checkpointFolder: true });
});

Deno.test("writeCheckpoint is atomic: a crash mid-save leaves no checkpoint and the previous one intact", async () => {
  await withService(async (ts) => {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    await trainSteps(tc, BATCHES.slice(0, 1));
    const { path } = await tc.saveState("good");
    const probeGood = await probeLoss(tc);
    await trainSteps(tc, BATCHES.slice(1, 2));
    const goodDir = folderOf(ts, path);
    const goodManifest = await Deno.readTextFile(`${goodDir}/manifest.json`);

    const ck = await readCheckpoint(goodDir, true);
    const crash = (after: string) => (file: string) => {
      if (file === after) throw new Error(`simulated crash after ${file}`);
    };
    const data = (name: string): CheckpointData => ({
      manifest: { ...ck.manifest, name },
      params: ck.params,
      optimizer: ck.optimizer,
    });
    const root = ts.checkpointDir;
    await assert.rejects(
      () =>
        writeCheckpoint(root, data("bad"), {
          fault: crash("adapter_model.safetensors"),
        }),
      /simulated crash after adapter_model.safetensors/,
    );
    // An overwrite of the good one that dies just before its rename.
    await assert.rejects(
      () =>
        writeCheckpoint(root, data("good"), {
          overwrite: true,
          fault: crash("manifest.json"),
        }),
      /simulated crash/,
    );

    const listed = await listCheckpoints(root, tc.runId);
    assert.deepEqual(listed.map((e) => e.name), ["good"]);
    const left: string[] = [];
    for await (const e of Deno.readDir(`${root}/${tc.runId}/weights`)) {
      left.push(e.name);
    }
    assert.deepEqual(left, ["good"], "no partial or temporary folder is left");
    await assert.rejects(
      () => Deno.stat(`${root}/${tc.runId}/weights/bad`),
      Deno.errors.NotFound,
    );
    assert.equal(
      await Deno.readTextFile(`${goodDir}/manifest.json`),
      goodManifest,
    );

    // The service lists and loads the previous checkpoint as before.
    const conn = await ts.connection();
    const fromNode = await conn.registry.ask<{ name: string }[]>({
      type: "list_checkpoints",
      runId: tc.runId,
    });
    assert.deepEqual(fromNode.map((e) => e.name), ["good"]);
    await tc.loadStateWithOptimizer(path);
    assert.equal(await probeLoss(tc), probeGood);
  }, { checkpointFolder: true });
});

Deno.test("TrainingClient.loadState refuses a corrupted checkpoint with CorruptCheckpointError", async () => {
  await withService(async (ts) => {
    const tc = await ts.service.createLoraTrainingClient(RUN);
    await trainSteps(tc, BATCHES.slice(0, 1));
    const probe = await probeLoss(tc);
    const flipped = (await tc.saveState("flipped")).path;
    const missing = (await tc.saveState("missing")).path;

    const file = `${folderOf(ts, flipped)}/adapter_model.safetensors`;
    const bytes = await Deno.readFile(file);
    bytes[bytes.length - 3] ^= 0x01; // one bit of one weight: still a valid safetensors file
    await Deno.writeFile(file, bytes);
    await Deno.remove(`${folderOf(ts, missing)}/optimizer.safetensors`);

    const isCorrupt = (what: string) => (e: unknown) => {
      assert.ok(
        e instanceof CorruptCheckpointError,
        `${(e as Error).name}: ${(e as Error).message}`,
      );
      assert.equal(e.name, "CorruptCheckpointError");
      assert.ok(e.message.includes(what), e.message);
      return true;
    };
    await assert.rejects(
      () => tc.loadState(flipped).result(),
      isCorrupt("adapter_model.safetensors"),
    );
    await assert.rejects(
      () => tc.loadStateWithOptimizer(flipped).result(),
      isCorrupt("sha256"),
    );
    await assert.rejects(
      () => ts.service.createSamplingClient({ modelPath: flipped }),
      isCorrupt("adapter_model"),
    );
    await assert.rejects(
      () => tc.loadStateWithOptimizer(missing).result(),
      isCorrupt("optimizer.safetensors"),
    );
    await assert.rejects(
      () => readCheckpoint(folderOf(ts, flipped), false),
      isCorrupt("sha256"),
    );
    // Nothing was loaded.
    assert.equal(await probeLoss(tc), probe);
  }, { checkpointFolder: true });
});

Deno.test("a process killed with SIGKILL while saving leaves only complete, valid checkpoints", async () => {
  // The saver owns the folder until it is killed; the service's node starts
  // only then (on every deployment), so its store's start-up recovery sees
  // what the kill left, as a node restarted over a crashed one's folder does.
  const catalogFile = await ensureTinyModels();
  const checkpointDir = await Deno.makeTempDir({ prefix: "bios-test-ckpt-" });
  let ts: TestService | undefined;
  try {
    const script = new URL("./_crash_saver.ts", import.meta.url).pathname;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", config, script, checkpointDir],
      env: { BIOS_MODELS: catalogFile },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let runId = "";
    let buf = "";
    let rounds = 0;
    // Wait for the first complete round, then let it save for ~1–2 s more.
    const deadline = Date.now() + 30_000;
    while (rounds === 0 && Date.now() < deadline) {
      const { value, done } = await lines.read();
      if (done) break;
      buf += value;
      for (const m of buf.matchAll(/saved (\S+) (\d+)\n/g)) {
        runId = m[1];
        rounds++;
      }
    }
    if (rounds === 0) {
      child.kill("SIGKILL");
      await child.status;
      await lines.cancel();
      const err = new TextDecoder().decode(
        await new Response(child.stderr).arrayBuffer(),
      );
      assert.fail(`the saver never completed a round: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 1000 + Math.random() * 1000));
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    await lines.cancel();
    await child.stderr.cancel();

    const listed = await listCheckpoints(checkpointDir, runId);
    const weights = listed.filter((e) => e.kind === "weights");
    assert.ok(
      weights.some((e) => e.name === "c0"),
      `listed: ${listed.map((e) => e.path)}`,
    );
    for (const e of listed) {
      const dir = `${checkpointDir}/${runId}/${e.kind}/${e.name}`;
      const ck = await readCheckpoint(dir, e.kind === "weights"); // verifies every sha256
      assert.equal(ck.manifest.name, e.name);
      assert.equal(ck.manifest.runId, runId);
    }
    // The service's node starts only now: its store's recovery puts back an
    // overwrite the kill interrupted, so the overwritten names exist.
    ts = await startTestService({ checkpointDir });
    const { service } = ts;
    const names = (await ts.connection().then((c) =>
      c.registry.ask<{ name: string; kind: string }[]>({
        type: "list_checkpoints",
        runId,
      })
    )).map((e) =>
      `${e.kind}/${e.name}`
    );
    assert.ok(names.includes("weights/latest"), `listed: ${names}`);
    assert.ok(names.includes("sampler_weights/latest-sampler"), `${names}`);
    if (ts.deployment === "gateway") {
      // Through the gateway a run is its tenant's only when it was made
      // there: this one was made by another process on the node's store, so
      // the gateway's tenant does not own it, and it is not found.
      await assert.rejects(
        () =>
          service.createTrainingClientFromState(
            `bios://${runId}/weights/latest`,
          ),
        NotFoundError,
      );
      return;
    }
    const latest = await ts.service.createTrainingClientFromState(
      `bios://${runId}/weights/latest`,
      { withOptimizer: true },
    );
    assert.ok((await latest.getInfo()).step >= 1);
    // The newest one loads into a new run through the service.
    const newest = weights.filter((e) => /^c\d+$/.test(e.name)).sort((x, y) =>
      Number(y.name.slice(1)) - Number(x.name.slice(1))
    )[0];
    const tc = await ts.service.createTrainingClientFromState(newest.path, {
      withOptimizer: true,
    });
    assert.equal((await tc.getInfo()).step, Number(newest.name.slice(1)) + 1);
  } finally {
    if (ts) await ts.close();
    else await Deno.remove(checkpointDir, { recursive: true });
  }
});
