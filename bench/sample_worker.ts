/**
 * Worker: sampling throughput of one Bios backend with the KV cache.
 *
 * `deno run -A bench/sample_worker.ts --backend native [--batches 1,8 --prompt 32 --max-tokens 64]`
 * prints one JSON line: `{"backend", "device", "tokensPerSecond": {"1": …, "8": …}}`,
 * or `{"unavailable": reason}`.
 *
 * For each batch size B, `generate()` continues one random prompt into B
 * sequences of exactly `--max-tokens` tokens (no stop tokens; temperature 1,
 * no top-k/top-p), with the LoRA adapter applied as a sampler applies it, and
 * with the Sampler actor's read-back interval (8 steps on WebGPU, else 1).
 * A short warm-up generation (4 tokens) compiles every shape; then one timed
 * generation, and when it took under 4 s, timed generations anew until at
 * least 2 and `--seconds`. Tokens/s = B · max-tokens · runs / seconds,
 * prefill included.
 *
 * @module
 */
import type { Backend } from "../kernels/backend.ts";
import { generate } from "../model/generate.ts";
import { benchTokens, buildBenchStage } from "./bench_model.ts";
import { Flags } from "./flags.ts";
import { closeBackend, openBackend } from "./open_backend.ts";
import { emit, timeRepeated } from "./timing.ts";

/** Tokens/s of `generate` for each batch size; see the module doc. */
export async function measureSampling(
  be: Backend,
  batches: readonly number[],
  promptLen: number,
  maxTokens: number,
  minSeconds: number,
): Promise<Record<string, number>> {
  const { stage } = buildBenchStage(be);
  const prompt = [...benchTokens(promptLen, 7)];
  const out: Record<string, number> = {};
  let seed = 0;
  for (const b of batches) {
    const run = async (tokens = maxTokens) => {
      const seqs = await generate(be, [stage], prompt, {
        numSamples: b,
        maxTokens: tokens,
        seed: seed++,
        stopTokens: [],
        temperature: 1,
        topK: -1,
        topP: 1,
        readEvery: be.name === "webgpu" ? 8 : 1,
      });
      const got = seqs.reduce((a, s) => a + s.tokens.length, 0);
      if (got !== b * tokens) {
        throw new Error(
          `generate returned ${got} tokens, expected ${b * tokens}`,
        );
      }
    };
    // Warm-up: a short generation compiles every shape (prefill and decode).
    await run(Math.min(4, maxTokens));
    const w0 = performance.now();
    await run();
    const slow = performance.now() - w0 > 4000;
    const t0 = performance.now();
    const t = slow
      ? { runs: 1, seconds: (t0 - w0) / 1000 }
      : await timeRepeated(() => run(), {
        warmup: 0,
        minRuns: 2,
        maxRuns: 20,
        minSeconds,
      });
    out[b] = (b * maxTokens * t.runs) / t.seconds;
  }
  return out;
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  const opened = await openBackend(flags.str("backend"));
  if (!opened.ok) {
    emit({ unavailable: opened.reason });
  } else {
    const be = opened.backend;
    const promptTokens = flags.int("prompt", 32);
    const maxTokens = flags.int("max-tokens", 64);
    const tokensPerSecond = await measureSampling(
      be,
      flags.ints("batches", [1, 8]),
      promptTokens,
      maxTokens,
      flags.num("seconds", 1),
    );
    emit({
      backend: be.name,
      device: be.device,
      tokensPerSecond,
      promptTokens,
      maxTokens,
    });
    closeBackend(be);
  }
}
