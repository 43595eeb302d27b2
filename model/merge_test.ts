/**
 * `mergeLora` on 16-bit bases: a BF16 (and an F16) model stays in its
 * dtype; an adapted weight is `W + (alpha/r)·B·A` rounded to float32 and
 * then once to the dtype, every other weight is copied bit for bit.
 */
import assert from "node:assert/strict";
import { mergeLora } from "./merge.ts";
import { writeModelFolder } from "./model_folder.ts";
import { llamaTensorShapes, parseLlamaConfig } from "./config.ts";
import { ByteTokenizer } from "./byte_tokenizer.ts";
import { readSafetensorsFile } from "./safetensors.ts";
import { type HalfBits, halfToF32, narrowToHalf } from "../kernels/half.ts";
import { Prng } from "./prng.ts";

for (const format of ["bf16", "f16"] as const) {
  Deno.test(`mergeLora keeps a ${format} base in ${format}, rounding the merged weights once`, async () => {
    const config = parseLlamaConfig({
      hidden_size: 8,
      intermediate_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      vocab_size: 259,
      tie_word_embeddings: false,
    });
    const rng = Prng.fromString(`merge-${format}`);
    const tensors = new Map(
      llamaTensorShapes(config).map(([name, shape]) => {
        const f = new Float32Array(shape.reduce((a, d) => a * d, 1));
        rng.fillNormal(f, 0, 0.5);
        return [name, { shape, data: narrowToHalf(f, format) }];
      }),
    );
    const root = await Deno.makeTempDir();
    try {
      await writeModelFolder(
        `${root}/base`,
        config,
        tensors,
        new ByteTokenizer(),
      );
      const a = new Float32Array(2 * 8), b = new Float32Array(8 * 2);
      rng.fillNormal(a, 0, 1);
      rng.fillNormal(b, 0, 1);
      const q = "model.layers.0.self_attn.q_proj";
      const params = new Map([
        [`base_model.model.${q}.lora_A.weight`, { shape: [2, 8], data: a }],
        [`base_model.model.${q}.lora_B.weight`, { shape: [8, 2], data: b }],
      ]);
      const r = await mergeLora(
        `${root}/base`,
        { rank: 2, alpha: 3, params },
        `${root}/out`,
      );
      assert.deepEqual(r.merged, [`${q}.weight`]);
      const out = (await readSafetensorsFile(`${root}/out/model.safetensors`, {
        keepHalf: true,
      })).tensors;
      const dtype = format === "bf16" ? "BF16" : "F16";
      for (const [name, t] of tensors) {
        const got = out.get(name)!;
        assert.equal(got.dtype, dtype, name);
        const bits = (got.data as HalfBits).bits;
        if (name !== `${q}.weight`) {
          assert.deepEqual(bits, t.data.bits, `${name} copied bit for bit`);
          continue;
        }
        const w = halfToF32(t.data);
        const want = new Float32Array(64);
        for (let i = 0; i < 8; i++) {
          for (let j = 0; j < 8; j++) {
            let s = 0;
            for (let k = 0; k < 2; k++) s += b[i * 2 + k] * a[k * 8 + j];
            want[i * 8 + j] = w[i * 8 + j] + 1.5 * s;
          }
        }
        assert.deepEqual(bits, narrowToHalf(want, format).bits);
        assert.notDeepEqual(bits, t.data.bits);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  });
}
