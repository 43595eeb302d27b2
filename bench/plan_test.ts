import assert from "node:assert/strict";
import {
  type BenchSettings,
  buildPlan,
  defaultSettings,
  GATEWAY_ROUTES,
} from "./plan.ts";

const programs = {
  deno: "deno",
  python: "/usr/bin/python3",
  root: "/repo",
  biosHome: "/tmp/h",
};

function settings(over: Partial<BenchSettings> = {}): BenchSettings {
  return {
    ...defaultSettings(false),
    defaultBackend: "native",
    openblasTuning: [],
    ...over,
  };
}

Deno.test("buildPlan: every row names jobs that exist, and each figure key is produced", () => {
  const { jobs, rows } = buildPlan(settings(), programs);
  const ids = new Set(jobs.map((j) => j.id));
  assert.equal(ids.size, jobs.length, "job ids are unique");
  for (const r of rows) {
    assert.ok(ids.has(r.biosJob), `${r.figure}: ${r.biosJob}`);
    assert.ok(ids.has(r.peerJob), `${r.figure}: ${r.peerJob}`);
  }
  // Feed each job a fake answer of the right shape and check the keys rows read.
  const keys = new Set<string>();
  for (const j of jobs) {
    const fake = {
      gatewayMs: 1,
      embeddedMs: 1,
      overheadMs: 1,
      routes: Object.fromEntries(
        GATEWAY_ROUTES.map((r) => [r, { p50: 1, p99: 1 }]),
      ),
      gflops: Object.fromEntries([256, 512, 1024, 2048].map((n) => [n, 1])),
      tokensPerSecond: j.id.includes("sample") ? { 1: 1, 8: 1 } : 1,
      ...Object.fromEntries(
        ["bios", "raw"].flatMap((w) =>
          ["Small", "Big"].flatMap((z) =>
            ["P50", "P99"].map((p) => [`${w}${z}${p}`, 1])
          )
        ),
      ),
    };
    for (const k of Object.keys(j.figures(fake))) keys.add(k);
  }
  for (const r of rows) {
    assert.ok(keys.has(r.biosKey), r.biosKey);
    assert.ok(keys.has(r.peerKey), r.peerKey);
  }
});

Deno.test("buildPlan: figures, targets and the default backend's label", () => {
  const { jobs, rows } = buildPlan(settings(), programs);
  const mm = rows.filter((r) => r.group === "matmul");
  // 3 sizes × (native, webgpu) + 2 sizes × cpu (2048 is too slow on the TypeScript backend)
  assert.equal(mm.length, 8);
  assert.ok(
    mm.filter((r) => r.backend === "webgpu").every((r) =>
      r.target?.kind === "absolute" && r.target.min === 25
    ),
  );
  const train = rows.filter((r) => r.group === "train");
  assert.deepEqual(train.map((r) => r.backend), [
    "native (default)",
    "webgpu",
    "cpu",
    "native (default)",
    "native (default)",
  ]);
  // The NATS cluster's step is set against the embedded actors, target 0.8×.
  const cluster = train[4];
  assert.equal(cluster.peerKey, "actor:train");
  assert.deepEqual(cluster.target, { kind: "ratio", min: 0.8, text: "≥ 0.8×" });
  const nats = rows.filter((r) => r.group === "nats");
  assert.equal(nats.length, 4);
  assert.ok(nats.every((r) => r.lowerIsBetter && r.unit === "ms"));
  assert.ok(train[0].target && !train[1].target);
  assert.equal(rows.filter((r) => r.group === "sample").length, 6);
  const torch = jobs.find((j) => j.id === "torch:train")!;
  assert.equal(torch.spec.cmd, "/usr/bin/python3");
  assert.deepEqual(torch.spec.args.slice(0, 2), [
    "bench/torch_peer.py",
    "train",
  ]);
  const spec = JSON.parse(
    torch.spec.args[torch.spec.args.indexOf("--spec") + 1],
  );
  assert.equal(spec.hidden_size, 256);
  assert.equal(spec.lora_rank, 16);
  const w = jobs.find((j) => j.id === "train:native")!;
  assert.deepEqual(w.spec.args.slice(0, 3), [
    "run",
    "-A",
    "bench/train_worker.ts",
  ]);
  assert.equal(w.spec.env?.BIOS_HOME, "/tmp/h");
});

Deno.test("buildPlan: OpenBLAS tuning variables add untuned numpy and native rows", () => {
  const { jobs, rows } = buildPlan(
    settings({
      openblasTuning: ["OPENBLAS_CORETYPE"],
      groups: ["matmul"],
      backends: ["native", "cpu"],
    }),
    programs,
  );
  const untuned = jobs.filter((j) => j.id.includes("untuned"));
  assert.deepEqual(untuned.map((j) => j.id), [
    "numpy-untuned",
    "mm-untuned:native",
  ]);
  assert.ok(
    untuned.every((j) => j.spec.unsetEnv?.includes("OPENBLAS_CORETYPE")),
  );
  assert.equal(rows.filter((r) => r.figure.includes("unset")).length, 3);
});

Deno.test("buildPlan: --peer-device cuda sets WebGPU against PyTorch on the GPU, with no targets", () => {
  const { jobs, rows } = buildPlan(
    settings({
      peerDevice: "cuda",
      backends: ["webgpu"],
      defaultBackend: "webgpu",
      matmulSizes: [1024, 4096],
    }),
    programs,
  );
  // Only WebGPU is measured, so numpy has no row and is not run.
  assert.ok(!jobs.some((j) => j.id.startsWith("numpy")));
  const mmPeer = jobs.find((j) => j.id === "torch-mm")!;
  assert.deepEqual(mmPeer.spec.args.slice(0, 3), [
    "bench/torch_matmul_peer.py",
    "--sizes",
    "1024,4096",
  ]);
  const mm = rows.filter((r) => r.group === "matmul");
  assert.deepEqual(mm.map((r) => r.peerKey), [
    "torch-mm:1024",
    "torch-mm:4096",
  ]);
  assert.deepEqual(
    Object.keys(mmPeer.figures({ gflops: { 1024: 1, 4096: 2 } })),
    ["torch-mm:1024", "torch-mm:4096"],
  );
  for (const id of ["torch:train", "torch:sample"]) {
    const args = jobs.find((j) => j.id === id)!.spec.args;
    assert.deepEqual(args.slice(-2), ["--device", "cuda"], id);
  }
  assert.ok(rows.every((r) => r.target === undefined));
  assert.ok(
    rows.filter((r) => r.group !== "matmul").every((r) =>
      r.peer === "PyTorch CUDA"
    ),
  );
});

Deno.test("buildPlan: --peer-device cuda keeps numpy for the CPU backends", () => {
  const { jobs, rows } = buildPlan(
    settings({ peerDevice: "cuda", groups: ["matmul"] }),
    programs,
  );
  assert.ok(jobs.some((j) => j.id === "numpy"));
  for (const r of rows) {
    assert.equal(
      r.peer,
      r.backend.startsWith("webgpu") ? "PyTorch CUDA sgemm" : "numpy sgemm",
    );
  }
});
