import assert from "node:assert/strict";
import { parseOrThrow } from "../parse.ts";
import {
  CreateLoraTrainingClientOptionsSchema,
  LoraConfigSchema,
  resolveTargetModules,
} from "./lora_config.ts";

const parse = (v: unknown) => parseOrThrow(LoraConfigSchema, v, "lora");
const create = (v: unknown) =>
  parseOrThrow(CreateLoraTrainingClientOptionsSchema, v, "options");

Deno.test("LoRA defaults: rank 32, alpha 32, no dropout, every group trained", () => {
  assert.deepEqual(parse({}), {
    rank: 32,
    alpha: 32,
    dropout: 0,
    trainAttn: true,
    trainMlp: true,
    trainUnembed: true,
  });
  const o = create({ baseModel: "ultrasafe/usf-finance", rank: 16 });
  assert.equal(o.baseModel, "ultrasafe/usf-finance");
  assert.equal(o.rank, 16);
  assert.equal(o.alpha, 32);
});

Deno.test("bad LoRA settings name their field", () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ rank: 0 }, "lora.rank", /^lora\.rank must be an integer ≥ 1: got 0$/],
    [{ rank: -4 }, "lora.rank", /got -4$/],
    [{ rank: 2.5 }, "lora.rank", /got 2\.5$/],
    [{ alpha: 0 }, "lora.alpha", /> 0: got 0$/],
    [{ alpha: -1 }, "lora.alpha", /> 0: got -1$/],
    [{ dropout: 1 }, "lora.dropout", /in \[0, 1\): got 1$/],
    [
      { targetModules: ["q_proj", "wq"] },
      "lora.targetModules[1]",
      /must be one of "q_proj"/,
    ],
    [{ targetModules: [] }, "lora.targetModules", /at least 1 module/],
    [{ targetModules: ["q_proj", "q_proj"] }, "lora.targetModules", /twice/],
    [
      { trainAttn: false, trainMlp: false, trainUnembed: false },
      "lora.trainAttn",
      /at least one module group/,
    ],
    [
      { trainAttn: false, targetModules: ["q_proj"] },
      "lora.targetModules",
      /train flag is on/,
    ],
    [{ seed: 0.5 }, "lora.seed", /integer/],
  ];
  for (const [v, field, message] of cases) {
    assert.throws(() => parse(v), {
      name: "InvalidArgumentError",
      field,
      message,
    }, JSON.stringify(v));
  }
  assert.throws(() => create({ rank: 8 }), {
    field: "options.baseModel",
    message: /is required/,
  });
  assert.throws(() => create({ baseModel: "" }), {
    field: "options.baseModel",
  });
  assert.throws(() => create({ baseModel: "m", rank: 0 }), {
    field: "options.rank",
  });
});

Deno.test("flags pick module groups and targetModules narrows them", () => {
  assert.deepEqual(resolveTargetModules(parse({})), [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "lm_head",
  ]);
  assert.deepEqual(
    resolveTargetModules(parse({ trainUnembed: false, trainAttn: false })),
    [
      "gate_proj",
      "up_proj",
      "down_proj",
    ],
  );
  assert.deepEqual(
    resolveTargetModules(
      parse({
        targetModules: ["v_proj", "q_proj", "lm_head"],
        trainUnembed: false,
      }),
    ),
    ["q_proj", "v_proj"],
  );
});
