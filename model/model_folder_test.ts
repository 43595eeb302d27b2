import assert from "node:assert/strict";
import {
  type LlamaConfig,
  llamaTensorShapes,
  parseLlamaConfig,
} from "./config.ts";
import { ByteTokenizer } from "./byte_tokenizer.ts";
import {
  checkLlamaTensors,
  loadModelFolder,
  ModelFolderError,
  type ModelTensor,
  writeModelFolder,
} from "./model_folder.ts";
import { writeSafetensors } from "./safetensors.ts";
import { type HalfBits, narrowToHalf } from "../kernels/half.ts";

const config: LlamaConfig = parseLlamaConfig({
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 259,
  bos_token_id: 256,
  eos_token_id: 257,
});

/** Every tensor filled with a distinct, recognisable ramp. */
function tensorsFor(cfg: LlamaConfig): Map<string, ModelTensor> {
  return new Map(
    llamaTensorShapes(cfg).map(([name, shape], k) => {
      const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
      for (let i = 0; i < data.length; i++) data[i] = k + i / 1024;
      return [name, { shape, data }];
    }),
  );
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("writeModelFolder() then loadModelFolder() round-trips config, tensors and tokenizer", async () => {
  await withTempDir(async (root) => {
    const dir = `${root}/nested/model`;
    const tensors = tensorsFor(config);
    assert.equal(
      await writeModelFolder(dir, config, tensors, new ByteTokenizer()),
      "written",
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
      ],
    );
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/nested`)].map((e) => e.name),
      ["model"],
    );
    const loaded = await loadModelFolder(dir);
    assert.deepEqual(loaded.config, config);
    assert.equal(loaded.dir, dir);
    assert.ok(loaded.tokenizer instanceof ByteTokenizer);
    assert.equal(loaded.tensors.size, tensors.size);
    for (const [name, t] of tensors) {
      assert.deepEqual(loaded.tensors.get(name), t, name);
    }
  });
});

Deno.test("writeModelFolder() keeps an existing folder and loses parallel races cleanly", async () => {
  await withTempDir(async (root) => {
    const dir = `${root}/m`;
    const results = await Promise.all(
      [0, 1, 2].map(() =>
        writeModelFolder(dir, config, tensorsFor(config), new ByteTokenizer())
      ),
    );
    assert.deepEqual(results.filter((r) => r === "written").length, 1);
    assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["m"]);
    assert.equal(
      await writeModelFolder(
        dir,
        config,
        tensorsFor(config),
        new ByteTokenizer(),
      ),
      "existed",
    );
    await loadModelFolder(dir);
  });
});

Deno.test("loadModelFolder() reads shards listed in model.safetensors.index.json", async () => {
  await withTempDir(async (dir) => {
    const tied = { ...config, tieWordEmbeddings: true };
    const tensors = tensorsFor(tied);
    assert.equal(
      await writeModelFolder(`${dir}/m`, tied, tensors, new ByteTokenizer()),
      "written",
    );
    await Deno.remove(`${dir}/m/model.safetensors`);
    const names = [...tensors.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [s, group] of shards.entries()) {
      const file = `model-0000${s + 1}-of-00002.safetensors`;
      await Deno.writeFile(
        `${dir}/m/${file}`,
        writeSafetensors(new Map(group.map((n) => [n, tensors.get(n)!]))),
      );
      for (const n of group) weightMap[n] = file;
    }
    // A stray file the index does not list is ignored.
    await Deno.writeFile(
      `${dir}/m/consolidated.safetensors`,
      new Uint8Array([1, 2, 3]),
    );
    await Deno.writeTextFile(
      `${dir}/m/model.safetensors.index.json`,
      JSON.stringify({ weight_map: weightMap }),
    );
    const loaded = await loadModelFolder(`${dir}/m`);
    assert.equal(loaded.tensors.size, names.length);
    assert.deepEqual(
      loaded.tensors.get("model.norm.weight"),
      tensors.get("model.norm.weight"),
    );
    assert.equal(loaded.tensors.has("lm_head.weight"), false);
  });
});

Deno.test("loadModelFolder() names the missing or misshapen tensor", async () => {
  await withTempDir(async (dir) => {
    await writeModelFolder(
      `${dir}/m`,
      config,
      tensorsFor(config),
      new ByteTokenizer(),
    );
    const write = (tensors: Map<string, ModelTensor>) =>
      Deno.writeFile(`${dir}/m/model.safetensors`, writeSafetensors(tensors));

    const missing = tensorsFor(config);
    missing.delete("model.layers.1.mlp.up_proj.weight");
    await write(missing);
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      (e: Error) =>
        e instanceof ModelFolderError &&
        e.message ===
          `${dir}/m: tensor model.layers.1.mlp.up_proj.weight is missing (expected shape [12,8])`,
    );

    const misshapen = tensorsFor(config);
    misshapen.set("model.layers.0.self_attn.k_proj.weight", {
      shape: [8, 8],
      data: new Float32Array(64),
    });
    await write(misshapen);
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      /tensor model.layers.0.self_attn.k_proj.weight has shape \[8,8\], expected \[4,8\]/,
    );

    const untied = tensorsFor(config);
    untied.delete("lm_head.weight");
    await write(untied);
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      /tensor lm_head.weight is missing/,
    );
  });
});

Deno.test("loadModelFolder() rejects missing files and duplicate tensors", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      () => loadModelFolder(dir),
      new RegExp(`${dir}/config.json does not exist`),
    );
    await writeModelFolder(
      `${dir}/m`,
      config,
      tensorsFor(config),
      new ByteTokenizer(),
    );
    const norm = tensorsFor(config).get("model.norm.weight")!;
    await Deno.writeFile(
      `${dir}/m/extra.safetensors`,
      writeSafetensors({ "model.norm.weight": norm }),
    );
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      /tensor model.norm.weight is in both extra.safetensors and model.safetensors/,
    );
    await Deno.remove(`${dir}/m/extra.safetensors`);
    await Deno.writeTextFile(
      `${dir}/m/model.safetensors.index.json`,
      JSON.stringify({
        weight_map: { "model.norm.weight": "gone.safetensors" },
      }),
    );
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      /gone.safetensors does not exist/,
    );
    await Deno.remove(`${dir}/m/model.safetensors.index.json`);
    await Deno.remove(`${dir}/m/tokenizer.json`);
    await assert.rejects(
      () => loadModelFolder(`${dir}/m`),
      /tokenizer.json does not exist/,
    );
  });
});

Deno.test("checkLlamaTensors() and writeModelFolder() refuse incomplete tensors", async () => {
  const t = tensorsFor(config);
  t.delete("model.embed_tokens.weight");
  assert.throws(
    () => checkLlamaTensors(config, t),
    /tensor model.embed_tokens.weight is missing/,
  );
  await withTempDir(async (dir) => {
    await assert.rejects(
      () => writeModelFolder(`${dir}/m`, config, t, new ByteTokenizer()),
      ModelFolderError,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("a BF16 or F16 folder loads with its matrices kept in 16 bits, bit for bit", async () => {
  await withTempDir(async (root) => {
    for (const format of ["bf16", "f16"] as const) {
      const dir = `${root}/${format}`;
      const half = new Map(
        [...tensorsFor(config)].map(([name, t]) => [
          name,
          {
            shape: t.shape,
            data: narrowToHalf(t.data as Float32Array, format),
          },
        ]),
      );
      await writeModelFolder(dir, config, half, new ByteTokenizer());
      const header = new TextDecoder().decode(
        (await Deno.readFile(`${dir}/model.safetensors`)).subarray(8, 400),
      );
      assert.match(header, format === "bf16" ? /"BF16"/ : /"F16"/);
      const m = await loadModelFolder(dir);
      for (const [name, want] of half) {
        const got = m.tensors.get(name)!.data as HalfBits;
        assert.equal(got.format, format, name);
        assert.deepEqual(got.bits, want.data.bits, name);
      }
    }
  });
});
