/**
 * A temporary Bios home holding the benchmark model as a catalog entry, for
 * the workers that go through the actors (embedded, a NATS cluster, the
 * gateway): BIOS_HOME and BIOS_MODELS point at it while `fn` runs, and are
 * put back (and the folder removed) after.
 *
 * @module
 */
import { ByteTokenizer } from "../model/byte_tokenizer.ts";
import { writeModelFolder } from "../model/model_folder.ts";
import { BENCH_CONFIG, BENCH_MODEL_NAME, benchTensors } from "./bench_model.ts";

/** Runs `fn(home, catalog)` with the benchmark model served from a fresh home. */
export async function withBenchHome<T>(
  prefix: string,
  fn: (home: string, catalog: string) => Promise<T>,
): Promise<T> {
  const home = await Deno.makeTempDir({ prefix });
  const prevHome = Deno.env.get("BIOS_HOME");
  const prevModels = Deno.env.get("BIOS_MODELS");
  try {
    await writeModelFolder(
      `${home}/bench-model`,
      BENCH_CONFIG,
      benchTensors(BENCH_CONFIG),
      new ByteTokenizer(),
    );
    const catalog = `${home}/catalog.json`;
    await Deno.writeTextFile(
      catalog,
      JSON.stringify({ models: { [BENCH_MODEL_NAME]: "bench-model" } }),
    );
    Deno.env.set("BIOS_HOME", home);
    Deno.env.set("BIOS_MODELS", catalog);
    return await fn(home, catalog);
  } finally {
    restoreEnv("BIOS_HOME", prevHome);
    restoreEnv("BIOS_MODELS", prevModels);
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

function restoreEnv(key: string, value: string | undefined): void {
  if (value === undefined) Deno.env.delete(key);
  else Deno.env.set(key, value);
}
