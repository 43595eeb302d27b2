/**
 * A checkpoint is verified as a whole before it is used: an edited manifest
 * (with or without a matching completion record), a file entry outside the
 * checkpoint, a missing completion record, adapter tensors that are not the
 * run's adapter, or an adapter of another alpha are each refused with a clear
 * error naming the `bios://` path; the refused load changes nothing, and the
 * node keeps working.
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import type { TrainingClient } from "../client/training_client.ts";
import {
  CorruptCheckpointError,
  sha256Hex,
} from "../actors/checkpoint_files.ts";
import { parseSafetensors, writeSafetensors } from "../model/safetensors.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  type TestService,
  textIds,
  TINY,
  TINY2,
} from "./_helpers.ts";

const { InvalidArgumentError, NotFoundError } = bios.errors;
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 13 } as const;
const DATUM = nextTokenDatum(textIds(SAMPLE_TEXTS[1]));
const PROBE = [nextTokenDatum(textIds("Q: 5-1?\nA: 4"))];

type Json = Record<string, unknown>;

/** Rewrite a checkpoint's manifest; `reseal` also rewrites the completion record to match. */
async function editManifest(
  dir: string,
  edit: (m: Json) => void,
  reseal: boolean,
): Promise<void> {
  const m = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
  edit(m);
  const bytes = new TextEncoder().encode(JSON.stringify(m, null, 2) + "\n");
  await Deno.writeFile(`${dir}/manifest.json`, bytes);
  if (reseal) {
    await Deno.writeTextFile(
      `${dir}/checkpoint_complete`,
      JSON.stringify({ manifest_sha256: await sha256Hex(bytes) }),
    );
  }
}

/** Rewrite a safetensors file of a checkpoint, rehash it and reseal. */
async function editTensors(
  dir: string,
  file: string,
  edit: (t: Map<string, { shape: number[]; data: Float32Array }>) => void,
): Promise<void> {
  const c = parseSafetensors(await Deno.readFile(`${dir}/${file}`));
  const t = new Map(
    [...c.tensors].map((
      [k, v],
    ) => [k, { shape: v.shape, data: v.data as Float32Array }]),
  );
  edit(t);
  const bytes = writeSafetensors(t, c.metadata);
  await Deno.writeFile(`${dir}/${file}`, bytes);
  const hash = await sha256Hex(bytes);
  await editManifest(dir, (m) => {
    (m.files as Json)[file] = hash;
  }, true);
}

interface Case {
  name: string;
  /** Damage the checkpoint at `dir` (saved by a rank-4, alpha-8 run of TINY). */
  tamper(dir: string, ts: TestService): Promise<void>;
  /** Whether it is still listed (its completion record and manifest verify). */
  listed: boolean;
  /** What every load's error must say. */
  error: RegExp;
  /** The error class of every load. */
  cls?: typeof CorruptCheckpointError | typeof NotFoundError;
}

const CASES: Case[] = [
  {
    name: "a manifest step edited to 999",
    tamper: (d) => editManifest(d, (m) => m.step = 999, false),
    listed: false,
    error: /manifest\.json does not match the sha256 in checkpoint_complete/,
  },
  {
    name: "a manifest step edited to 999, completion record rewritten",
    tamper: (d) => editManifest(d, (m) => m.step = 999, true),
    listed: true,
    error: /optimizer\.safetensors records step 1, but manifest\.json says 999/,
  },
  {
    name: "a manifest alpha edited to 256",
    tamper: (d) => editManifest(d, (m) => (m.lora as Json).alpha = 256, false),
    listed: false,
    error: /manifest\.json does not match the sha256/,
  },
  {
    name: "a manifest alpha edited to 256, completion record rewritten",
    tamper: (d) => editManifest(d, (m) => (m.lora as Json).alpha = 256, true),
    listed: true,
    error: /adapter_config\.json has lora_alpha 8, but manifest\.json says 256/,
  },
  {
    name: "a swapped base model, completion record rewritten",
    tamper: (d) => editManifest(d, (m) => m.baseModel = TINY2, true),
    listed: true,
    error:
      /adapter_config\.json has base_model_name_or_path "test\/tiny", but manifest\.json says "test\/tiny2"/,
  },
  {
    name: "files: null",
    tamper: (d) => editManifest(d, (m) => m.files = null, true),
    listed: false,
    error:
      /manifest\.json: files must be an object of file name → sha256: got null/,
  },
  {
    name: "no lora",
    tamper: (d) => editManifest(d, (m) => delete m.lora, true),
    listed: false,
    error: /manifest\.json: lora is required/,
  },
  {
    name: "a file entry outside the checkpoint",
    async tamper(d, ts) {
      // A file there, hashed right: nothing outside the checkpoint is read.
      const outside = new TextEncoder().encode("x");
      await Deno.writeFile(`${ts.checkpointDir}/x`, outside);
      const hash = await sha256Hex(outside);
      await editManifest(d, (m) => {
        (m.files as Json)["../../../x"] = hash;
      }, true);
    },
    listed: false,
    error:
      /manifest\.json: files\["\.\.\/\.\.\/\.\.\/x"\] is not a known field/,
  },
  {
    name: "a missing completion record",
    tamper: (d) => Deno.remove(`${d}/checkpoint_complete`),
    listed: false,
    error: /names no checkpoint \(its save never completed/,
    cls: NotFoundError,
  },
  {
    name: "an extra adapter tensor",
    tamper: (d) =>
      editTensors(d, "adapter_model.safetensors", (t) => {
        t.set(
          "base_model.model.model.layers.0.self_attn.q_proj.lora_C.weight",
          {
            shape: [4, 32],
            data: new Float32Array(128),
          },
        );
      }),
    listed: true,
    error:
      /holds tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_C\.weight, which is no adapter/,
  },
  {
    name: "a missing adapter tensor",
    tamper: (d) =>
      editTensors(d, "adapter_model.safetensors", (t) => {
        t.delete("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
      }),
    listed: true,
    error:
      /lacks tensor base_model\.model\.model\.layers\.1\.mlp\.up_proj\.lora_B\.weight/,
  },
  {
    name: "an adapter (and its Adam moments) for a deeper model",
    async tamper(d) {
      const deeper = (t: Map<string, unknown>) => {
        for (const [k, v] of [...t]) {
          if (k.includes(".layers.1.")) {
            t.set(k.replace(".layers.1.", ".layers.2."), v);
          }
        }
      };
      await editTensors(d, "adapter_model.safetensors", deeper);
      await editTensors(d, "optimizer.safetensors", deeper);
    },
    listed: true,
    error:
      /does not fit baseModel test\/tiny: tensor base_model\.model\.model\.layers\.2\.\S+ has no place in the model/,
  },
  {
    name: "a missing Adam moment",
    tamper: (d) =>
      editTensors(d, "optimizer.safetensors", (t) => {
        t.delete("v.base_model.model.lm_head.lora_A.weight");
      }),
    listed: true,
    error:
      /optimizer\.safetensors lacks tensor v\.base_model\.model\.lm_head\.lora_A\.weight/,
  },
];

async function probe(tc: TrainingClient): Promise<number> {
  return (await tc.forward(PROBE, "cross_entropy")).loss;
}

for (const c of CASES) {
  Deno.test(`a checkpoint with ${c.name} is refused; nothing changes and the node keeps working`, async () => {
    const ts = await startTestService({ checkpointFolder: true });
    try {
      const conn = await ts.connection();
      const tc = await ts.service.createLoraTrainingClient(RUN);
      await tc.train([DATUM], { learningRate: 1e-2 });
      const { path } = await tc.saveState("t");
      const good = (await tc.saveState("good")).path;
      await tc.train([DATUM], { learningRate: 1e-2 });
      await c.tamper(`${ts.checkpointDir}/${tc.runId}/weights/t`, ts);
      const before = await probe(tc);

      const refused = (e: unknown) => {
        const cls = c.cls ?? CorruptCheckpointError;
        assert.ok(
          e instanceof cls,
          `${(e as Error).name}: ${(e as Error).message}`,
        );
        assert.ok((e as Error).message.includes(path), (e as Error).message);
        assert.match((e as Error).message, c.error);
        return true;
      };
      const list = async () =>
        (await conn.registry.ask<{ name: string }[]>({
          type: "list_checkpoints",
          runId: tc.runId,
        })).map((e) => e.name);
      for (let i = 0; i < 2; i++) {
        await assert.rejects(tc.loadStateWithOptimizer(path).result(), refused);
        await assert.rejects(tc.loadState(path).result(), refused);
        await assert.rejects(
          ts.service.createSamplingClient({ modelPath: path }),
          refused,
        );
        await assert.rejects(
          ts.service.createTrainingClientFromState(path, {
            withOptimizer: true,
          }),
          refused,
        );
        assert.deepEqual(await list(), c.listed ? ["t", "good"] : ["good"]);
      }
      // The refused loads changed nothing; the run and the node work on.
      assert.equal(await probe(tc), before);
      assert.equal((await tc.getInfo()).step, 2);
      await tc.train([DATUM], { learningRate: 1e-2 });
      await tc.loadStateWithOptimizer(good);
      assert.equal((await tc.getInfo()).step, 1);
      await ts.service.createSamplingClient({ modelPath: good });
      await ts.service.createLoraTrainingClient(RUN);
    } finally {
      await ts.close();
    }
  });
}

Deno.test("an adapter saved with alpha 32 is refused by an alpha-8 run, naming both; nothing changes", async () => {
  const ts = await startTestService();
  try {
    const a32 = await ts.service.createLoraTrainingClient({
      ...RUN,
      alpha: 32,
    });
    await a32.train([DATUM], { learningRate: 1e-2 });
    const { path } = await a32.saveState("a32");
    const a8 = await ts.service.createLoraTrainingClient(RUN);
    await a8.train([DATUM], { learningRate: 1e-2 });
    const before = await probe(a8);
    for (
      const load of [
        () => a8.loadState(path),
        () => a8.loadStateWithOptimizer(path),
      ]
    ) {
      await assert.rejects(load().result(), (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, String(e));
        assert.equal(e.field, "path");
        assert.match(
          e.message,
          /path holds an adapter with alpha 32, but this run has alpha 8/,
        );
        return true;
      });
    }
    assert.equal(await probe(a8), before);
    assert.equal((await a8.getInfo()).step, 1);
    // A run made from the checkpoint takes its alpha, so it loads.
    const again = await ts.service.createTrainingClientFromState(path);
    assert.equal(await probe(again), await probe(a32));
  } finally {
    await ts.close();
  }
});
