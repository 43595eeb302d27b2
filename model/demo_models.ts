/**
 * The built-in demo models: small Llama-layout models named after the seed's
 * five models, generated deterministically from their names. All use the byte
 * tokenizer (vocabulary 259), RoPE θ 10000, RMSNorm ε 1e-5 and a 512-token
 * context. Weights follow Hugging Face's Llama init: N(0, 0.02) for every linear
 * and embedding matrix, ones for the norms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildDemoModel, DEMO_MODEL_NAMES } from "./demo_models.ts";
 * assert.ok(DEMO_MODEL_NAMES.includes("ultrasafe/usf-code"));
 * const m = buildDemoModel("ultrasafe/usf-code");
 * assert.equal(m.config.tieWordEmbeddings, true);
 * ```
 *
 * @module
 */

import { type LlamaConfig, llamaTensorShapes } from "./config.ts";
import {
  BYTE_BOS_ID,
  BYTE_EOS_ID,
  BYTE_VOCAB_SIZE,
  ByteTokenizer,
} from "./byte_tokenizer.ts";
import type { ModelTensor } from "./model_folder.ts";
import { Prng } from "./prng.ts";

/** Thrown for a name that is not a demo model. */
export class UnknownDemoModelError extends Error {
  /** @param name the name asked for */
  constructor(name: string) {
    super(
      `${JSON.stringify(name)} is not a built-in demo model (known: ${
        DEMO_MODEL_NAMES.join(", ")
      })`,
    );
    this.name = "UnknownDemoModelError";
  }
}

/** The shape of one demo model. */
interface DemoShape {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  tieWordEmbeddings: boolean;
}

const SHAPES: Record<string, DemoShape> = {
  "ultrasafe/usf-finance": {
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    intermediateSize: 344,
    tieWordEmbeddings: false,
  },
  "ultrasafe/usf-healthcare": {
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    intermediateSize: 344,
    tieWordEmbeddings: false,
  },
  "ultrasafe/usf-code": {
    hiddenSize: 128,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 4,
    headDim: 32,
    intermediateSize: 344,
    tieWordEmbeddings: true,
  },
  "ultrasafe/usf-conversation": {
    hiddenSize: 96,
    numLayers: 3,
    numHeads: 3,
    numKvHeads: 1,
    headDim: 32,
    intermediateSize: 256,
    tieWordEmbeddings: false,
  },
  "ultrasafe/usf-general": {
    hiddenSize: 160,
    numLayers: 6,
    numHeads: 5,
    numKvHeads: 5,
    headDim: 32,
    intermediateSize: 432,
    tieWordEmbeddings: false,
  },
};

/** The names of the built-in demo models. */
export const DEMO_MODEL_NAMES: readonly string[] = Object.keys(SHAPES);

/** Context length of every demo model. */
export const DEMO_MAX_CONTEXT = 512;

/** Standard deviation of the weight init (HF `initializer_range`). */
const INIT_STD = 0.02;

/**
 * The config of a demo model.
 *
 * @param name one of `DEMO_MODEL_NAMES`
 * @returns its config
 * @throws {UnknownDemoModelError} for any other name
 */
export function demoModelConfig(name: string): LlamaConfig {
  const shape = Object.hasOwn(SHAPES, name) ? SHAPES[name] : undefined;
  if (shape === undefined) throw new UnknownDemoModelError(name);
  return {
    ...shape,
    vocabSize: BYTE_VOCAB_SIZE,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    maxPositionEmbeddings: DEMO_MAX_CONTEXT,
    bosTokenId: BYTE_BOS_ID,
    eosTokenIds: [BYTE_EOS_ID],
  };
}

/**
 * Generates a demo model in memory. The generator is seeded from the name and
 * fills tensors in `llamaTensorShapes` order, so a name always gives the same
 * weights.
 *
 * @param name one of `DEMO_MODEL_NAMES`
 * @returns config, tensors and the byte tokenizer
 * @throws {UnknownDemoModelError} for any other name
 */
export function buildDemoModel(
  name: string,
): {
  config: LlamaConfig;
  tensors: Map<string, ModelTensor>;
  tokenizer: ByteTokenizer;
} {
  const config = demoModelConfig(name);
  const rng = Prng.fromString(`bios-demo-model:${name}`);
  const tensors = new Map<string, ModelTensor>();
  for (const [tensorName, shape] of llamaTensorShapes(config)) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (shape.length === 1) data.fill(1); // RMSNorm gains
    else rng.fillNormal(data, 0, INIT_STD);
    tensors.set(tensorName, { shape, data });
  }
  return { config, tensors, tokenizer: new ByteTokenizer() };
}
