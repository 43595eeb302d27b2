/**
 * The transformers-written fixture models (`tests/fixtures/hf/<name>/model`)
 * served by Bios under the names `hf/<name>`: each is copied to a temporary
 * folder with a word-level `tokenizer.json` of its 64 ids (`t0` … `t63`;
 * the fixtures have none, and a served model needs one), and a catalog file
 * names them (`BIOS_MODELS`). The copies are the model folders Python loads
 * too, so both sides read the same bytes.
 *
 * @module
 */
import * as bios from "../mod.ts";

const FIXTURES = new URL("./fixtures/hf/", import.meta.url).pathname;

/** A fixture's batch: inputs, next tokens, and transformers' base logprobs. */
export interface FixtureBatch {
  /** Input ids [B][T]. */
  tokens: number[][];
  /** Target ids [B][T]. */
  targets: number[][];
}

/** Served copies of fixture models. */
export interface HfModels {
  /** The catalog file to put in `BIOS_MODELS`. */
  catalogFile: string;
  /** Served names, `hf/<fixture>`. */
  names: string[];
  /** The folder Bios serves a fixture from. */
  modelDir(fixture: string): string;
  /** The fixture's PEFT adapter folder (as PEFT saved it). */
  peftDir(fixture: string): string;
  /** The fixture's batch. */
  batch(fixture: string): Promise<FixtureBatch>;
  /** A fresh temporary folder under this set's root. */
  tempDir(prefix: string): Promise<string>;
  /** Remove the copies. */
  remove(): Promise<void>;
}

function wordLevelTokenizer(vocabSize: number): string {
  const vocab = Object.fromEntries(
    Array.from({ length: vocabSize }, (_, i) => [`t${i}`, i]),
  );
  return JSON.stringify({
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: "t0" },
  });
}

/** Copy `fixtures` (folder names under tests/fixtures/hf) and name them in a catalog. */
export async function serveHfFixtures(
  fixtures: readonly string[],
): Promise<HfModels> {
  const root = await Deno.makeTempDir({ prefix: "bios-hf-models-" });
  const models: Record<string, string> = {};
  for (const f of fixtures) {
    const dir = `${root}/${f}`;
    await Deno.mkdir(dir);
    for await (const e of Deno.readDir(`${FIXTURES}${f}/model`)) {
      await Deno.copyFile(
        `${FIXTURES}${f}/model/${e.name}`,
        `${dir}/${e.name}`,
      );
    }
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    await Deno.writeTextFile(
      `${dir}/tokenizer.json`,
      wordLevelTokenizer(cfg.vocab_size),
    );
    models[`hf/${f}`] = f;
  }
  const catalogFile = `${root}/catalog.json`;
  await Deno.writeTextFile(catalogFile, JSON.stringify({ models }) + "\n");
  return {
    catalogFile,
    names: Object.keys(models),
    modelDir: (f) => `${root}/${f}`,
    peftDir: (f) => `${FIXTURES}${f}/peft`,
    async batch(f) {
      const io = JSON.parse(await Deno.readTextFile(`${FIXTURES}${f}/io.json`));
      return { tokens: io.tokens, targets: io.targets };
    },
    tempDir: (prefix) => Deno.makeTempDir({ dir: root, prefix }),
    remove: () => Deno.remove(root, { recursive: true }).catch(() => {}),
  };
}

/** The largest |a − b| over two equally shaped [B][T] arrays. */
export function maxAbsDiff(
  a: ArrayLike<number>[],
  b: ArrayLike<number>[],
): number {
  if (a.length !== b.length) throw new Error(`${a.length} vs ${b.length} rows`);
  let worst = 0;
  a.forEach((row, i) => {
    if (row.length !== b[i].length) throw new Error(`row ${i} lengths differ`);
    for (let j = 0; j < row.length; j++) {
      worst = Math.max(worst, Math.abs(row[j] - b[i][j]));
    }
  });
  return worst;
}

/** A fixture batch as cross-entropy datums (weights 1). */
export function batchDatums(b: FixtureBatch): bios.types.DatumInput[] {
  return b.tokens.map((row, i) => ({
    modelInput: bios.types.ModelInput.fromInts(row),
    lossFnInputs: {
      targetTokens: b.targets[i],
      weights: b.targets[i].map(() => 1),
    },
  }));
}

/** Bios's log p(target) for a batch, from a training client's `forward`. */
export async function forwardLogprobs(
  tc: bios.TrainingClient,
  b: FixtureBatch,
): Promise<number[][]> {
  const out = await tc.forward(batchDatums(b), "cross_entropy");
  return out.lossFnOutputs.map((o) => [...o.logprobs.data]);
}

/**
 * Bios's log p(target) for a batch from a sampling client: `computeLogprobs`
 * of each row followed by its last target (so that every target is scored).
 */
export async function samplerLogprobs(
  sc: bios.SamplingClient,
  b: FixtureBatch,
): Promise<number[][]> {
  const rows: number[][] = [];
  for (let i = 0; i < b.tokens.length; i++) {
    const ids = [...b.tokens[i], b.targets[i][b.targets[i].length - 1]];
    const lp = await sc.computeLogprobs(bios.types.ModelInput.fromInts(ids));
    rows.push(lp.slice(1) as number[]);
  }
  return rows;
}
