import assert from "node:assert/strict";
import type { RowSpec } from "./plan.ts";
import { buildRows, formatTable, markdownTable } from "./report.ts";

const specs: RowSpec[] = [
  {
    group: "train",
    figure: "LoRA step",
    backend: "native (default)",
    biosKey: "train:native",
    biosJob: "train:native",
    peer: "PyTorch",
    peerKey: "torch:train",
    peerJob: "torch:train",
    unit: "tokens/s",
    target: { kind: "ratio", min: 1, text: "≥ 1.0×" },
  },
  {
    group: "matmul",
    figure: "matmul 512³",
    backend: "webgpu",
    biosKey: "mm:webgpu:512",
    biosJob: "mm:webgpu",
    peer: "numpy sgemm",
    peerKey: "numpy:512",
    peerJob: "numpy",
    unit: "GFLOP/s",
    target: { kind: "absolute", min: 25, text: "≥ 25 GFLOP/s" },
  },
];

Deno.test("buildRows: medians, ratios, targets and notes", () => {
  const rows = buildRows(specs, {
    figures: new Map([
      ["train:native", [900, 1100, 1000]],
      ["torch:train", [2000, 1900, 2100]],
      ["numpy:512", [100]],
    ]),
    notes: new Map([["mm:webgpu", ["unavailable: no WebGPU adapter"]]]),
  });
  assert.equal(rows[0].value, 1000);
  assert.equal(rows[0].peerValue, 2000);
  assert.equal(rows[0].ratio, 0.5);
  assert.equal(rows[0].meets, false);
  assert.equal(rows[1].value, null);
  assert.equal(rows[1].ratio, null);
  assert.equal(rows[1].meets, null);
  assert.equal(rows[1].note, "unavailable: no WebGPU adapter");

  const text = formatTable(rows);
  assert.match(
    text,
    /LoRA step .*\| 1000 tok\/s .*\| 0\.50× \| ≥ 1\.0× NOT met/,
  );
  assert.match(text, /— \(unavailable: no WebGPU adapter\)/);
  const md = markdownTable(rows);
  assert.equal(md.split("\n").length, 4);
  assert.match(md, /^\| figure \| Bios backend \|/);
});

Deno.test("buildRows: a latency row's ratio is peer / Bios, shown in ms", () => {
  const [row] = buildRows([{
    group: "nats",
    figure: "actor ask over NATS, 100 B, p50",
    backend: "NatsTransport",
    biosKey: "bios",
    biosJob: "rtt",
    peer: "raw NATS request",
    peerKey: "raw",
    peerJob: "rtt",
    unit: "ms",
    lowerIsBetter: true,
  }], {
    figures: new Map([["bios", [0.4]], ["raw", [0.3]]]),
    notes: new Map(),
  });
  assert.equal(row.ratio, 0.3 / 0.4);
  assert.match(
    markdownTable([row]),
    /\| 0\.400 ms \| raw NATS request \| 0\.300 ms \| 0\.75× \|/,
  );
});
