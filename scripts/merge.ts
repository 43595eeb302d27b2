/**
 * `deno task merge`: merge a LoRA adapter into its base model and write a
 * full Hugging Face folder (transformers, vLLM and llama.cpp's converter
 * load it as a plain model).
 *
 * ```sh
 * deno task merge --adapter bios://<run>/weights/<name> --out ./merged
 * deno task merge --adapter ./my-peft-adapter --base my-org/my-llama --out ./merged
 * # options: --base <model name or folder>, --max-shard-size <bytes>,
 * #          --checkpoint-dir <folder of bios:// checkpoints>
 * ```
 *
 * Prints one JSON line: the folder, its weight files, the merged weights,
 * and whether a tied head was untied.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { mergeAdapter } from "../actors/merge_adapter.ts";

const USAGE =
  "usage: deno task merge --adapter <bios://… or adapter folder> --out <folder> [--base <model name or folder>] [--max-shard-size <bytes>] [--checkpoint-dir <folder>]";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    adapter: { type: "string" },
    out: { type: "string" },
    base: { type: "string" },
    "max-shard-size": { type: "string" },
    "checkpoint-dir": { type: "string" },
    help: { type: "boolean" },
  },
});
if (values.help || !values.adapter || !values.out) {
  console.error(USAGE);
  Deno.exit(values.help ? 0 : 2);
}
const shard = values["max-shard-size"];
if (shard !== undefined && !(Number(shard) > 0)) {
  console.error(`--max-shard-size must be a number of bytes > 0: got ${shard}`);
  Deno.exit(2);
}
try {
  const r = await mergeAdapter({
    adapter: values.adapter,
    out: values.out,
    base: values.base,
    checkpointRoot: values["checkpoint-dir"],
    maxShardBytes: shard === undefined ? undefined : Number(shard),
  });
  console.log(JSON.stringify(r));
} catch (e) {
  console.error(`merge failed: ${(e as Error).message}`);
  Deno.exit(1);
}
