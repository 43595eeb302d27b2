import assert from "node:assert/strict";
import {
  ConfigError,
  type LlamaConfig,
  llamaTensorShapes,
  parseLlamaConfig,
  toHfConfig,
} from "./config.ts";

const base = {
  "model_type": "llama",
  "hidden_size": 128,
  "intermediate_size": 344,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "vocab_size": 259,
};

Deno.test("parseLlamaConfig() applies the transformers defaults", () => {
  assert.deepEqual(parseLlamaConfig(base), {
    hiddenSize: 128,
    intermediateSize: 344,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 32,
    vocabSize: 259,
    rmsNormEps: 1e-6,
    ropeTheta: 10000,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 2048,
    eosTokenIds: [],
  });
});

Deno.test("parseLlamaConfig() reads a full Llama config.json", () => {
  const cfg = parseLlamaConfig({
    ...base,
    architectures: ["LlamaForCausalLM"],
    num_key_value_heads: 2,
    head_dim: 48,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
    max_position_embeddings: 512,
    bos_token_id: 256,
    eos_token_id: [257, 258],
    attention_bias: false,
    rope_scaling: null,
    torch_dtype: "bfloat16",
  });
  assert.equal(cfg.numKvHeads, 2);
  assert.equal(cfg.headDim, 48);
  assert.equal(cfg.rmsNormEps, 1e-5);
  assert.equal(cfg.ropeTheta, 500000);
  assert.equal(cfg.tieWordEmbeddings, true);
  assert.equal(cfg.maxPositionEmbeddings, 512);
  assert.equal(cfg.bosTokenId, 256);
  assert.deepEqual(cfg.eosTokenIds, [257, 258]);
  assert.deepEqual(parseLlamaConfig({ ...base, eos_token_id: 2 }).eosTokenIds, [
    2,
  ]);
});

Deno.test("parseLlamaConfig() accepts mistral and caps the context at its sliding window", () => {
  const cfg = parseLlamaConfig({
    ...base,
    model_type: "mistral",
    sliding_window: 1024,
    max_position_embeddings: 32768,
  });
  assert.equal(cfg.maxPositionEmbeddings, 1024);
  assert.equal(
    parseLlamaConfig({ ...base, model_type: "mistral", sliding_window: null })
      .maxPositionEmbeddings,
    2048,
  );
});

Deno.test("parseLlamaConfig() rejects what Bios cannot run, naming the field", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /config.json must be a JSON object/],
    [
      "missing field",
      { ...base, hidden_size: undefined },
      /hidden_size is required/,
    ],
    [
      "zero",
      { ...base, num_hidden_layers: 0 },
      /num_hidden_layers must be a positive integer: got 0/,
    ],
    [
      "fraction",
      { ...base, vocab_size: 2.5 },
      /vocab_size must be a positive integer: got 2.5/,
    ],
    [
      "gqa",
      { ...base, num_key_value_heads: 3 },
      /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/,
    ],
    [
      "head split",
      { ...base, hidden_size: 130 },
      /hidden_size \(130\) must be a multiple of num_attention_heads \(4\)/,
    ],
    ["odd head_dim", { ...base, head_dim: 33 }, /head_dim must be even/],
    [
      "gemma2",
      { ...base, model_type: "gemma2" },
      /model_type must be one of llama, mistral, qwen2, qwen3: got "gemma2"/,
    ],
    ["gpt2", { ...base, model_type: "gpt2" }, /model_type must be one of/],
    ["bias", { ...base, attention_bias: true }, /attention_bias must be false/],
    ["mlp bias", { ...base, mlp_bias: true }, /mlp_bias must be false/],
    ["act", { ...base, hidden_act: "gelu" }, /hidden_act must be "silu"/],
    ["rope scaling of an unsupported type", {
      ...base,
      rope_scaling: { rope_type: "yarn", factor: 8 },
    }, /rope_scaling.rope_type "yarn" is not supported yet/],
    [
      "llama3 rope scaling without its fields",
      {
        ...base,
        rope_scaling: { rope_type: "llama3", factor: 8 },
      },
      /rope_scaling.low_freq_factor must be a positive finite number for llama3/,
    ],
    [
      "eps",
      { ...base, rms_norm_eps: 0 },
      /rms_norm_eps must be a positive finite number: got 0/,
    ],
    [
      "tie",
      { ...base, tie_word_embeddings: "yes" },
      /tie_word_embeddings must be a boolean/,
    ],
    [
      "bos range",
      { ...base, bos_token_id: 259 },
      /bos_token_id must be an integer in \[0, 258\]: got 259/,
    ],
    [
      "eos range",
      { ...base, eos_token_id: [1, -1] },
      /eos_token_id\[1\] must be an integer in \[0, 258\]: got -1/,
    ],
  ];
  for (const [name, json, pattern] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseLlamaConfig(json), (e: Error) => {
        assert.ok(e instanceof ConfigError, `${e}`);
        assert.match(e.message, pattern);
        return true;
      });
    });
  }
});

Deno.test("toHfConfig() round-trips through parseLlamaConfig()", () => {
  const cfgs: LlamaConfig[] = [
    parseLlamaConfig({
      ...base,
      bos_token_id: 256,
      eos_token_id: 257,
      num_key_value_heads: 2,
      tie_word_embeddings: true,
    }),
    parseLlamaConfig({ ...base, eos_token_id: [1, 2] }),
    parseLlamaConfig(base),
  ];
  for (const cfg of cfgs) {
    const hf = toHfConfig(cfg);
    assert.equal(hf.model_type, "llama");
    assert.deepEqual(parseLlamaConfig(JSON.parse(JSON.stringify(hf))), cfg);
  }
});

Deno.test("llamaTensorShapes() lists every HF Llama tensor with [out, in] shapes", () => {
  const cfg = parseLlamaConfig({
    ...base,
    num_key_value_heads: 2,
    head_dim: 16,
  });
  const shapes = new Map(llamaTensorShapes(cfg));
  assert.equal(shapes.size, 1 + 2 * 9 + 2);
  assert.deepEqual(shapes.get("model.embed_tokens.weight"), [259, 128]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.q_proj.weight"), [
    64,
    128,
  ]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.k_proj.weight"), [
    32,
    128,
  ]);
  assert.deepEqual(shapes.get("model.layers.0.self_attn.o_proj.weight"), [
    128,
    64,
  ]);
  assert.deepEqual(shapes.get("model.layers.0.mlp.down_proj.weight"), [
    128,
    344,
  ]);
  assert.deepEqual(shapes.get("lm_head.weight"), [259, 128]);
  const tied = new Map(llamaTensorShapes({ ...cfg, tieWordEmbeddings: true }));
  assert.equal(tied.has("lm_head.weight"), false);
});

Deno.test("parseLlamaConfig: llama3 rope scaling from rope_parameters (transformers 5) or rope_scaling (4)", () => {
  const fields = {
    "factor": 8,
    "low_freq_factor": 1,
    "high_freq_factor": 4,
    "original_max_position_embeddings": 8192,
  };
  const want = {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  };
  const small = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 100,
  };
  const t5 = parseLlamaConfig({
    ...small,
    "rope_parameters": {
      "rope_theta": 500000,
      "rope_type": "llama3",
      ...fields,
    },
  });
  assert.equal(t5.ropeTheta, 500000);
  assert.deepEqual(t5.ropeScaling, want);
  const t4 = parseLlamaConfig({
    ...small,
    "rope_theta": 500000,
    "rope_scaling": { "rope_type": "llama3", ...fields },
  });
  assert.deepEqual(t4.ropeScaling, want);
});

Deno.test("parseLlamaConfig: rope_theta from transformers 5's rope_parameters; other rope types refused by name", () => {
  const base = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 100,
  };
  const t5 = parseLlamaConfig({
    ...base,
    "rope_parameters": { "rope_theta": 500000, "rope_type": "default" },
  });
  assert.equal(t5.ropeTheta, 500000);
  assert.equal(
    parseLlamaConfig({ ...base, "rope_theta": 250000 }).ropeTheta,
    250000,
  );
  assert.equal(parseLlamaConfig(base).ropeTheta, 10000);
  assert.throws(
    () =>
      parseLlamaConfig({
        ...base,
        "rope_parameters": {
          "rope_theta": 500000,
          "rope_type": "yarn",
          factor: 8,
        },
      }),
    /rope_parameters.rope_type "yarn" is not supported yet/,
  );
  assert.throws(
    () =>
      parseLlamaConfig({
        ...base,
        "rope_theta": 10000,
        "rope_parameters": { "rope_theta": 500000 },
      }),
    /disagree/,
  );
});
