import assert from "node:assert/strict";
import { CpuBackend } from "../kernels/cpu/backend.ts";
import { calibrateBatch, measureGemm } from "./matmul_worker.ts";
import { measureSampling } from "./sample_worker.ts";
import { measureTraining } from "./train_worker.ts";
import { peerSpec } from "./bench_model.ts";

// The loss of an untrained model whose logits are all near 0: ln(vocabulary).
const UNIFORM_LOSS = Math.log(259);

Deno.test("workers: gemm, training and sampling give finite positive throughput (cpu, tiny sizes)", async () => {
  const be = new CpuBackend();
  const g = await measureGemm(be, 32, 0);
  assert.ok(Number.isFinite(g.gflops) && g.gflops > 0, `gemm ${g.gflops}`);
  assert.ok(g.batch > 1, `tiny products are batched: ${g.batch}`);
  const t = await measureTraining(be, 1, 8, 0);
  assert.ok(t.tokensPerSecond > 0 && t.steps >= 2, JSON.stringify(t));
  assert.ok(Math.abs(t.loss - UNIFORM_LOSS) < 0.2, `loss ${t.loss}`);
  const s = await measureSampling(be, [1, 2], 4, 3, 0);
  assert.deepEqual(Object.keys(s), ["1", "2"]);
  assert.ok(s[1] > 0 && s[2] > 0);
});

Deno.test("calibrateBatch grows the batch until the sync is amortised", async () => {
  const seen: number[] = [];
  // 10 ms a product, 11 ms a sync: a batch must reach 0.25 s
  const k = await calibrateBatch((k) => {
    seen.push(k);
    return Promise.resolve(k * 0.01 + 0.011);
  });
  assert.ok(k * 0.01 + 0.011 >= 0.25 && (k - 1) * 0.01 + 0.011 < 0.3, `${k}`);
  assert.equal(seen[0], 1);
  // a slow product needs no batching; the cap holds for instant ones
  assert.equal(await calibrateBatch(() => Promise.resolve(2)), 1);
  assert.equal(await calibrateBatch(() => Promise.resolve(0), 0.25, 64), 64);
});

const PYTHON = "/usr/bin/python3";
const hasTorch = (() => {
  try {
    return new Deno.Command(PYTHON, {
      args: ["-c", "import torch, numpy"],
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
})();

const required = Deno.env.get("BIOS_REQUIRE_ALL") === "1";
if (!hasTorch && !required) {
  console.log(
    "peer test skipped: no PyTorch for /usr/bin/python3 (apt-get install python3-torch)",
  );
}

async function py(args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(PYTHON, {
    args,
    cwd: new URL("..", import.meta.url),
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines.at(-1)!);
}

Deno.test({
  name:
    "peers: the PyTorch model starts at the same loss as Bios's, and numpy reports GFLOP/s",
  ignore: !hasTorch && !required,
  fn: async () => {
    if (!hasTorch) {
      throw new Error(
        "no PyTorch for /usr/bin/python3 (apt-get install python3-torch)",
      );
    }
    const spec = JSON.stringify(peerSpec());
    const train = await py([
      "bench/torch_peer.py",
      "train",
      "--spec",
      spec,
      "--batch",
      "1",
      "--seq",
      "8",
      "--seconds",
      "0",
    ]);
    assert.ok(
      Math.abs((train.loss as number) - UNIFORM_LOSS) < 0.2,
      `torch loss ${train.loss}`,
    );
    assert.ok((train.tokensPerSecond as number) > 0);
    const sample = await py([
      "bench/torch_peer.py",
      "sample",
      "--spec",
      spec,
      "--batches",
      "1,2",
      "--prompt",
      "4",
      "--max-tokens",
      "3",
      "--seconds",
      "0",
    ]);
    assert.deepEqual(Object.keys(sample.tokensPerSecond as object), ["1", "2"]);
    const np = await py([
      "bench/numpy_peer.py",
      "--sizes",
      "64",
      "--seconds",
      "0",
    ]);
    assert.ok(((np.gflops as Record<string, number>)["64"]) > 0);
  },
});
