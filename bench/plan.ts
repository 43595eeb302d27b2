/**
 * What one `deno task bench` invocation runs: the worker processes (Bios
 * workers and their Python peers) and the table rows made from their figures.
 *
 * @module
 */
import type { ChildSpec } from "./child.ts";
import { peerSpec } from "./bench_model.ts";
import { largePeerSpec } from "./large_model.ts";

/** The three parts of the benchmark. */
export const GROUPS = [
  "matmul",
  "train",
  "sample",
  "nats",
  "gateway",
  "large",
] as const;
/** One part. */
export type Group = typeof GROUPS[number];

/**
 * The gateway routes whose client-side latency under load the table shows
 * (`gateway_worker.ts` times each request by its route).
 */
export const GATEWAY_ROUTES = [
  "create_session",
  "create_model",
  "forward_backward",
  "optim_step",
  "retrieve_future",
  "get_info",
  "session_heartbeat",
  "save_weights_for_sampler",
  "asample",
  "get_server_capabilities",
  "healthz",
] as const;

/** The Bios backends the benchmark knows, in table order. */
export const BIOS_BACKENDS = ["native", "webgpu", "cpu"] as const;

/** OpenBLAS tuning variables that change numpy's (and Bios native's) sgemm speed. */
export const OPENBLAS_TUNING_VARS = [
  "OPENBLAS_CORETYPE",
  "OPENBLAS_L2_SIZE",
] as const;

/** Where the PyTorch peers run: the host CPU, or a CUDA GPU (`--peer-device cuda`). */
export const PEER_DEVICES = ["cpu", "cuda"] as const;
/** One of {@linkcode PEER_DEVICES}. */
export type PeerDevice = typeof PEER_DEVICES[number];

/** Everything that shapes one invocation. */
export interface BenchSettings {
  /** `--quick`: one process per figure, smaller sizes. */
  quick: boolean;
  /** Processes per figure (the median is reported). */
  runs: number;
  /** Bios backends to measure. */
  backends: string[];
  /** Parts to run. */
  groups: Group[];
  /** Matrix sizes n (n×n·n×n). */
  matmulSizes: number[];
  /** Matrix sizes for the TypeScript cpu backend (about 1 GFLOP/s: 2048 takes too long). */
  cpuMatmulSizes: number[];
  /** Seconds each matrix size is timed for, at least. */
  matmulSeconds: number;
  /** Training batch B and length T, and seconds timed at least. */
  train: { batch: number; seq: number; seconds: number };
  /** Sampling batch sizes, prompt length, tokens generated, seconds timed at least. */
  sample: {
    batches: number[];
    prompt: number;
    maxTokens: number;
    seconds: number;
  };
  /** The large model: training batch and length, sampling batches, prompt and tokens. */
  large: {
    batch: number;
    seq: number;
    batches: number[];
    prompt: number;
    maxTokens: number;
  };
  /** What `selectBackend()` picks here ("native", "webgpu" or "cpu"). */
  defaultBackend: string;
  /** The OpenBLAS tuning variables set in this environment (each adds untuned rows). */
  openblasTuning: string[];
  /** Kill a worker after this long. */
  timeoutMs: number;
  /**
   * Where the PyTorch peers run. With "cuda", the WebGPU matmul rows are
   * measured against PyTorch's float32 sgemm on the GPU (TF32 off), the
   * LoRA step and sampling against PyTorch on the GPU, and no row carries
   * a target (the issue sets none for a real GPU).
   */
  peerDevice: PeerDevice;
}

/** The defaults of a full or a `--quick` invocation. */
export function defaultSettings(
  quick: boolean,
): Omit<BenchSettings, "defaultBackend" | "openblasTuning"> {
  return quick
    ? {
      quick,
      runs: 1,
      backends: [...BIOS_BACKENDS],
      groups: [...GROUPS],
      matmulSizes: [256, 512],
      cpuMatmulSizes: [256, 512],
      matmulSeconds: 0.2,
      train: { batch: 2, seq: 64, seconds: 0.5 },
      sample: { batches: [1, 8], prompt: 8, maxTokens: 16, seconds: 0.3 },
      large: { batch: 1, seq: 64, batches: [1], prompt: 8, maxTokens: 4 },
      timeoutMs: 180_000,
      peerDevice: "cpu",
    }
    : {
      quick,
      runs: 3,
      backends: [...BIOS_BACKENDS],
      groups: [...GROUPS],
      matmulSizes: [512, 1024, 2048],
      cpuMatmulSizes: [512, 1024],
      matmulSeconds: 0.5,
      train: { batch: 8, seq: 128, seconds: 2 },
      sample: { batches: [1, 8], prompt: 32, maxTokens: 64, seconds: 1 },
      large: { batch: 4, seq: 256, batches: [1, 8], prompt: 32, maxTokens: 16 },
      timeoutMs: 300_000,
      peerDevice: "cpu",
    };
}

/** One worker process to run once per round. */
export interface Job {
  /** Stable id, e.g. "train:native". */
  id: string;
  /** What the progress line calls it. */
  label: string;
  /** Its part. */
  group: Group;
  /** The Bios backend it measures (none for peers and the actor path). */
  backend?: string;
  /** How to start it. */
  spec: ChildSpec;
  /** Figure key → value, read from the worker's JSON answer. */
  figures(json: Record<string, unknown>): Record<string, number>;
  /** Run in the first round only (the large model's minutes-long jobs). */
  once?: boolean;
}

/** A goal a row is checked against. */
export interface Target {
  /** "ratio": Bios / peer ≥ min; "absolute": the Bios value ≥ min. */
  kind: "ratio" | "absolute";
  /** The bound. */
  min: number;
  /** How the table writes it, e.g. "≥ 1.0×". */
  text: string;
}

/** One table row, before the figures are in. */
export interface RowSpec {
  /** Its part. */
  group: Group;
  /** What is measured, e.g. "matmul 1024³". */
  figure: string;
  /** Bios side, e.g. "native (default)". */
  backend: string;
  /** Figure key of the Bios value. */
  biosKey: string;
  /** Id of the job that measures it. */
  biosJob: string;
  /** The peer, e.g. "PyTorch 1.13". */
  peer: string;
  /** Figure key of the peer value. */
  peerKey: string;
  /** Id of the job that measures it. */
  peerJob: string;
  /** "GFLOP/s", "tokens/s", "ms" or "GiB". */
  unit: string;
  /** A latency: the ratio is peer / Bios, so above 1 is still Bios better. */
  lowerIsBetter?: boolean;
  /** The goal, if the issue sets one. */
  target?: Target;
}

/** Where the programs are. */
export interface Programs {
  /** The deno binary. */
  deno: string;
  /** Python with numpy and torch (Debian's /usr/bin/python3). */
  python: string;
  /**
   * Python with the wheelhouse's newer PyTorch, transformers and PEFT (a
   * venv): the second peer of the small-model rows and the peers of the
   * large model. Without it those rows are left out.
   */
  venvPython?: string;
  /** Repository root (workers run there). */
  root: string;
  /** A BIOS_HOME every Deno worker shares (so WebGPU's autotune is done once). */
  biosHome: string;
}

const num = (v: unknown): number => {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new Error(
      `expected a finite number in the worker's answer: got ${
        JSON.stringify(v)
      }`,
    );
  }
  return v;
};

function perKey(
  json: Record<string, unknown>,
  field: string,
  prefix: string,
): Record<string, number> {
  const src = json[field] as Record<string, unknown> | undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(src ?? {})) {
    out[`${prefix}:${k}`] = num(v);
  }
  return out;
}

/** The jobs and rows of an invocation. */
export function buildPlan(
  s: BenchSettings,
  p: Programs,
): { jobs: Job[]; rows: RowSpec[] } {
  const jobs: Job[] = [];
  const rows: RowSpec[] = [];
  const deno = (
    worker: string,
    args: string[],
    extra: Partial<ChildSpec> = {},
  ): ChildSpec => ({
    cmd: p.deno,
    args: ["run", "-A", `bench/${worker}`, ...args],
    cwd: p.root,
    env: { BIOS_HOME: p.biosHome, ...extra.env },
    unsetEnv: extra.unsetEnv,
    timeoutMs: s.timeoutMs,
  });
  const python = (
    script: string,
    args: string[],
    unsetEnv?: string[],
  ): ChildSpec => ({
    cmd: p.python,
    args: [`bench/${script}`, ...args],
    cwd: p.root,
    unsetEnv,
    timeoutMs: s.timeoutMs,
  });
  const label = (be: string) =>
    be === s.defaultBackend ? `${be} (default)` : be;
  const has = (g: Group) => s.groups.includes(g);
  const spec = JSON.stringify(peerSpec());
  const cuda = s.peerDevice === "cuda";
  const torchName = cuda ? "PyTorch CUDA" : "PyTorch";
  const torchArgs = cuda ? ["--device", "cuda"] : [];
  const venv = (script: string, args: string[]): ChildSpec => ({
    cmd: p.venvPython!,
    args: [`bench/${script}`, ...args],
    cwd: p.root,
    timeoutMs: Math.max(s.timeoutMs, 1_200_000),
  });
  const venvTorch = p.venvPython !== undefined && !cuda;
  const ratioTarget: Target | undefined = cuda
    ? undefined
    : { kind: "ratio", min: 1, text: "≥ 1.0×" };

  if (has("matmul")) {
    const variants: { tag: string; note: string; unset?: string[] }[] = [{
      tag: "",
      note: "",
    }];
    if (s.openblasTuning.length > 0) {
      variants.push({
        tag: "-untuned",
        note: ` (${s.openblasTuning.join(", ")} unset)`,
        unset: s.openblasTuning,
      });
    }
    const sizes = s.matmulSizes.join(",");
    const secs = String(s.matmulSeconds);
    // On a GPU, WebGPU's products are set against cuBLAS's on the same card.
    const gpuPeer = cuda && s.backends.includes("webgpu");
    if (gpuPeer) {
      jobs.push({
        id: "torch-mm",
        label: "PyTorch CUDA sgemm",
        group: "matmul",
        spec: python("torch_matmul_peer.py", [
          "--sizes",
          sizes,
          "--seconds",
          secs,
        ]),
        figures: (j) => perKey(j, "gflops", "torch-mm"),
      });
    }
    const numpyRows = s.backends.some((be) => !(gpuPeer && be === "webgpu"));
    for (const v of variants) {
      if (numpyRows) {
        jobs.push({
          id: `numpy${v.tag}`,
          label: `numpy sgemm${v.note}`,
          group: "matmul",
          spec: python(
            "numpy_peer.py",
            ["--sizes", sizes, "--seconds", secs],
            v.unset,
          ),
          figures: (j) => perKey(j, "gflops", `numpy${v.tag}`),
        });
      }
      const backends = v.tag === ""
        ? s.backends
        : s.backends.filter((b) => b === "native");
      for (const be of backends) {
        const beSizes = be === "cpu" ? s.cpuMatmulSizes : s.matmulSizes;
        jobs.push({
          id: `mm${v.tag}:${be}`,
          label: `matmul ${be}${v.note}`,
          group: "matmul",
          backend: be,
          spec: deno("matmul_worker.ts", [
            "--backend",
            be,
            "--sizes",
            beSizes.join(","),
            "--seconds",
            secs,
          ], {
            unsetEnv: v.unset,
          }),
          figures: (j) => perKey(j, "gflops", `mm${v.tag}:${be}`),
        });
      }
      for (const n of s.matmulSizes) {
        for (const be of backends) {
          if (be === "cpu" && !s.cpuMatmulSizes.includes(n)) continue;
          const vsGpu = gpuPeer && be === "webgpu";
          rows.push({
            group: "matmul",
            figure: `matmul ${n}³${v.note}`,
            backend: label(be),
            biosKey: `mm${v.tag}:${be}:${n}`,
            biosJob: `mm${v.tag}:${be}`,
            peer: vsGpu ? "PyTorch CUDA sgemm" : "numpy sgemm",
            peerKey: vsGpu ? `torch-mm:${n}` : `numpy${v.tag}:${n}`,
            peerJob: vsGpu ? "torch-mm" : `numpy${v.tag}`,
            unit: "GFLOP/s",
            target: be === "webgpu" && v.tag === "" && !cuda
              ? { kind: "absolute", min: 25, text: "≥ 25 GFLOP/s" }
              : undefined,
          });
        }
      }
    }
  }

  if (has("train")) {
    const t = s.train;
    const args = [
      "--batch",
      String(t.batch),
      "--seq",
      String(t.seq),
      "--seconds",
      String(t.seconds),
    ];
    jobs.push({
      id: "torch:train",
      label: `${torchName} LoRA step`,
      group: "train",
      spec: python("torch_peer.py", [
        "train",
        "--spec",
        spec,
        ...args,
        ...torchArgs,
      ]),
      figures: (j) => ({ "torch:train": num(j.tokensPerSecond) }),
    });
    for (const be of s.backends) {
      jobs.push({
        id: `train:${be}`,
        label: `LoRA step ${be}`,
        group: "train",
        backend: be,
        spec: deno("train_worker.ts", ["--backend", be, ...args]),
        figures: (j) => ({ [`train:${be}`]: num(j.tokensPerSecond) }),
      });
    }
    if (venvTorch) {
      jobs.push({
        id: "torch2:train",
        label: "PyTorch (venv) LoRA step",
        group: "train",
        spec: venv("torch_peer.py", ["train", "--spec", spec, ...args]),
        figures: (j) => ({ "torch2:train": num(j.tokensPerSecond) }),
      });
      rows.push({
        group: "train",
        figure: `LoRA step B${t.batch}×T${t.seq}`,
        backend: label(s.defaultBackend),
        biosKey: `train:${s.defaultBackend}`,
        biosJob: `train:${s.defaultBackend}`,
        peer: "PyTorch (venv)",
        peerKey: "torch2:train",
        peerJob: "torch2:train",
        unit: "tokens/s",
        target: ratioTarget,
      });
    }
    jobs.push({
      id: "actor:train",
      label: "LoRA step via ServiceClient",
      group: "train",
      spec: deno("actor_train_worker.ts", args),
      figures: (j) => ({ "actor:train": num(j.tokensPerSecond) }),
    });
    const figure = `LoRA step B${t.batch}×T${t.seq}`;
    for (const be of s.backends) {
      rows.push({
        group: "train",
        figure,
        backend: label(be),
        biosKey: `train:${be}`,
        biosJob: `train:${be}`,
        peer: torchName,
        peerKey: "torch:train",
        peerJob: "torch:train",
        unit: "tokens/s",
        target: be === s.defaultBackend ? ratioTarget : undefined,
      });
    }
    rows.push({
      group: "train",
      figure: `${figure}, ServiceClient (actors)`,
      backend: label(s.defaultBackend),
      biosKey: "actor:train",
      biosJob: "actor:train",
      peer: torchName,
      peerKey: "torch:train",
      peerJob: "torch:train",
      unit: "tokens/s",
      target: ratioTarget,
    });
    if (!cuda) {
      jobs.push({
        id: "cluster:train",
        label: "LoRA step over NATS (2 node processes)",
        group: "train",
        spec: deno("actor_train_worker.ts", [...args, "--nats-nodes", "2"]),
        figures: (j) => ({ "cluster:train": num(j.tokensPerSecond) }),
      });
      rows.push({
        group: "train",
        figure: `${figure}, NATS cluster of 2 node processes`,
        backend: label(s.defaultBackend),
        biosKey: "cluster:train",
        biosJob: "cluster:train",
        peer: "embedded (actors)",
        peerKey: "actor:train",
        peerJob: "actor:train",
        unit: "tokens/s",
        target: { kind: "ratio", min: 0.8, text: "≥ 0.8×" },
      });
    }
  }

  if (has("nats") && !cuda) {
    jobs.push({
      id: "nats:rtt",
      label: "actor round trips over NATS, and raw NATS",
      group: "nats",
      spec: deno("nats_rtt_worker.ts", ["--rounds", s.quick ? "100" : "400"]),
      figures: (j) => ({
        "nats:bios:small:p50": num(j.biosSmallP50),
        "nats:bios:small:p99": num(j.biosSmallP99),
        "nats:bios:big:p50": num(j.biosBigP50),
        "nats:bios:big:p99": num(j.biosBigP99),
        "nats:raw:small:p50": num(j.rawSmallP50),
        "nats:raw:small:p99": num(j.rawSmallP99),
        "nats:raw:big:p50": num(j.rawBigP50),
        "nats:raw:big:p99": num(j.rawBigP99),
      }),
    });
    for (const [size, what] of [["small", "100 B"], ["big", "4 MiB"]]) {
      for (const p of ["p50", "p99"]) {
        rows.push({
          group: "nats",
          figure: `actor ask over NATS, ${what}, ${p}`,
          backend: "NatsTransport",
          biosKey: `nats:bios:${size}:${p}`,
          biosJob: "nats:rtt",
          peer: "raw NATS request",
          peerKey: `nats:raw:${size}:${p}`,
          peerJob: "nats:rtt",
          unit: "ms",
          lowerIsBetter: true,
        });
      }
    }
  }

  if (has("gateway") && !cuda) gatewayJobs(s, { jobs, rows, deno, label });

  if (has("sample")) {
    const c = s.sample;
    const args = [
      "--batches",
      c.batches.join(","),
      "--prompt",
      String(c.prompt),
      "--max-tokens",
      String(c.maxTokens),
      "--seconds",
      String(c.seconds),
    ];
    jobs.push({
      id: "torch:sample",
      label: `${torchName} sampling`,
      group: "sample",
      spec: python("torch_peer.py", [
        "sample",
        "--spec",
        spec,
        ...args,
        ...torchArgs,
      ]),
      figures: (j) => perKey(j, "tokensPerSecond", "torch:sample"),
    });
    for (const be of s.backends) {
      jobs.push({
        id: `sample:${be}`,
        label: `sampling ${be}`,
        group: "sample",
        backend: be,
        spec: deno("sample_worker.ts", ["--backend", be, ...args]),
        figures: (j) => perKey(j, "tokensPerSecond", `sample:${be}`),
      });
    }
    if (venvTorch) {
      jobs.push({
        id: "torch2:sample",
        label: "PyTorch (venv) sampling",
        group: "sample",
        spec: venv("torch_peer.py", ["sample", "--spec", spec, ...args]),
        figures: (j) => perKey(j, "tokensPerSecond", "torch2:sample"),
      });
      for (const b of c.batches) {
        rows.push({
          group: "sample",
          figure: `sample B${b}, ${c.prompt}-token prompt + ${c.maxTokens}`,
          backend: label(s.defaultBackend),
          biosKey: `sample:${s.defaultBackend}:${b}`,
          biosJob: `sample:${s.defaultBackend}`,
          peer: "PyTorch (venv)",
          peerKey: `torch2:sample:${b}`,
          peerJob: "torch2:sample",
          unit: "tokens/s",
          target: ratioTarget,
        });
      }
    }
    for (const b of c.batches) {
      for (const be of s.backends) {
        rows.push({
          group: "sample",
          figure: `sample B${b}, ${c.prompt}-token prompt + ${c.maxTokens}`,
          backend: label(be),
          biosKey: `sample:${be}:${b}`,
          biosJob: `sample:${be}`,
          peer: torchName,
          peerKey: `torch:sample:${b}`,
          peerJob: "torch:sample",
          unit: "tokens/s",
          target: be === s.defaultBackend ? ratioTarget : undefined,
        });
      }
    }
  }
  if (has("large") && p.venvPython !== undefined) {
    largeJobs(s, { jobs, rows, deno, venv, label, ratioTarget });
  }
  return { jobs, rows };
}

/**
 * The HTTP gateway's job and rows: the training group's LoRA step through a
 * gateway process against the embedded ServiceClient in the same worker
 * (alternated), the paired overhead per step, and each route's p50 and p99
 * under a short load of 8 clients.
 */
function gatewayJobs(
  s: BenchSettings,
  ctx: {
    jobs: Job[];
    rows: RowSpec[];
    deno: (w: string, a: string[]) => ChildSpec;
    label: (be: string) => string;
  },
): void {
  const t = s.train;
  const clients = 8;
  ctx.jobs.push({
    id: "gateway",
    label: "LoRA step via the HTTP gateway, and a load on its routes",
    group: "gateway",
    spec: ctx.deno("gateway_worker.ts", [
      "--batch",
      String(t.batch),
      "--seq",
      String(t.seq),
      "--seconds",
      String(t.seconds),
      "--clients",
      String(clients),
      "--load-seconds",
      s.quick ? "1" : "3",
    ]),
    figures: (j) => {
      const routes = (j.routes ?? {}) as Record<
        string,
        Record<string, unknown>
      >;
      const out: Record<string, number> = {
        "gateway:step": num(j.gatewayMs),
        "gateway:embedded": num(j.embeddedMs),
        "gateway:overhead": num(j.overheadMs),
      };
      for (const r of GATEWAY_ROUTES) {
        out[`gateway:${r}:p50`] = num(routes[r]?.p50);
        out[`gateway:${r}:p99`] = num(routes[r]?.p99);
      }
      return out;
    },
  });
  const be = ctx.label(s.defaultBackend);
  const step = `LoRA step B${t.batch}×T${t.seq}`;
  ctx.rows.push({
    group: "gateway",
    figure: `${step} through the HTTP gateway`,
    backend: be,
    biosKey: "gateway:step",
    biosJob: "gateway",
    peer: "embedded ServiceClient",
    peerKey: "gateway:embedded",
    peerJob: "gateway",
    unit: "ms",
    lowerIsBetter: true,
  }, {
    group: "gateway",
    figure: `${step}: the gateway's overhead (paired)`,
    backend: be,
    biosKey: "gateway:overhead",
    biosJob: "gateway",
    peer: "embedded step",
    peerKey: "gateway:embedded",
    peerJob: "gateway",
    unit: "ms",
    lowerIsBetter: true,
  });
  for (const r of GATEWAY_ROUTES) {
    ctx.rows.push({
      group: "gateway",
      figure: `gateway ${r}, ${clients} clients: p50 (peer: p99)`,
      backend: be,
      biosKey: `gateway:${r}:p50`,
      biosJob: "gateway",
      peer: "same route, p99",
      peerKey: `gateway:${r}:p99`,
      peerJob: "gateway",
      unit: "ms",
      lowerIsBetter: true,
    });
  }
}

/**
 * The large model's jobs and rows (Qwen2.5-0.5B's shape, bf16 base weights):
 * a LoRA step and sampling on the default backend, against plain PyTorch
 * and transformers + PEFT from the venv, in tokens/s and peak memory. Each
 * job runs once per invocation (a step takes tens of seconds here).
 */
function largeJobs(
  s: BenchSettings,
  ctx: {
    jobs: Job[];
    rows: RowSpec[];
    deno: (w: string, a: string[]) => ChildSpec;
    venv: (script: string, args: string[]) => ChildSpec;
    label: (be: string) => string;
    ratioTarget: Target | undefined;
  },
): void {
  const { jobs, rows } = ctx;
  const l = s.large;
  const spec = JSON.stringify(largePeerSpec());
  const be = s.defaultBackend;
  const trainArgs = ["--batch", String(l.batch), "--seq", String(l.seq)];
  const sampleArgs = [
    "--batches",
    l.batches.join(","),
    "--prompt",
    String(l.prompt),
    "--max-tokens",
    String(l.maxTokens),
  ];
  const gib = (v: unknown) => num(v) / 2 ** 30;
  const peers = [["torch", "PyTorch (venv)"], [
    "hf",
    "transformers + PEFT",
  ]] as const;
  jobs.push({
    id: `large:train:${be}`,
    label: `large model LoRA step ${be}`,
    group: "large",
    backend: be,
    once: true,
    spec: {
      ...ctx.deno("large_worker.ts", ["train", "--backend", be, ...trainArgs]),
      timeoutMs: 1_200_000,
    },
    figures: (j) => ({
      [`large:train:${be}`]: num(j.tokensPerSecond),
      [`large:train:${be}:mem`]: gib(j.peakRssBytes),
    }),
  });
  jobs.push({
    id: `large:sample:${be}`,
    label: `large model sampling ${be}`,
    group: "large",
    backend: be,
    once: true,
    spec: {
      ...ctx.deno("large_worker.ts", [
        "sample",
        "--backend",
        be,
        ...sampleArgs,
      ]),
      timeoutMs: 1_200_000,
    },
    figures: (j) => ({
      ...perKey(j, "tokensPerSecond", `large:sample:${be}`),
      [`large:sample:${be}:mem`]: gib(j.peakRssBytes),
    }),
  });
  const trainFigure =
    `Qwen2.5-0.5B shape (bf16) LoRA r16 step B${l.batch}×T${l.seq}`;
  for (const [impl, name] of peers) {
    jobs.push({
      id: `large:${impl}:train`,
      label: `large model LoRA step, ${name}`,
      group: "large",
      once: true,
      spec: ctx.venv("large_peer.py", [
        "train",
        "--impl",
        impl,
        "--spec",
        spec,
        ...trainArgs,
      ]),
      figures: (j) => ({
        [`large:${impl}:train`]: num(j.tokensPerSecond),
        [`large:${impl}:train:mem`]: gib(j.peakRssBytes),
      }),
    });
    jobs.push({
      id: `large:${impl}:sample`,
      label: `large model sampling, ${name}`,
      group: "large",
      once: true,
      spec: ctx.venv("large_peer.py", [
        "sample",
        "--impl",
        impl,
        "--spec",
        spec,
        ...sampleArgs,
      ]),
      figures: (j) => ({
        ...perKey(j, "tokensPerSecond", `large:${impl}:sample`),
        [`large:${impl}:sample:mem`]: gib(j.peakRssBytes),
      }),
    });
    rows.push({
      group: "large",
      figure: trainFigure,
      backend: ctx.label(be),
      biosKey: `large:train:${be}`,
      biosJob: `large:train:${be}`,
      peer: name,
      peerKey: `large:${impl}:train`,
      peerJob: `large:${impl}:train`,
      unit: "tokens/s",
      target: ctx.ratioTarget,
    }, {
      group: "large",
      figure: `${trainFigure}, peak memory`,
      backend: ctx.label(be),
      biosKey: `large:train:${be}:mem`,
      biosJob: `large:train:${be}`,
      peer: name,
      peerKey: `large:${impl}:train:mem`,
      peerJob: `large:${impl}:train`,
      unit: "GiB",
      lowerIsBetter: true,
      target: ctx.ratioTarget,
    });
    for (const b of l.batches) {
      rows.push({
        group: "large",
        figure:
          `Qwen2.5-0.5B shape (bf16) sample B${b}, ${l.prompt}-token prompt + ${l.maxTokens}`,
        backend: ctx.label(be),
        biosKey: `large:sample:${be}:${b}`,
        biosJob: `large:sample:${be}`,
        peer: name,
        peerKey: `large:${impl}:sample:${b}`,
        peerJob: `large:${impl}:sample`,
        unit: "tokens/s",
        target: ctx.ratioTarget,
      });
    }
    rows.push({
      group: "large",
      figure: `Qwen2.5-0.5B shape (bf16) sampling, peak memory`,
      backend: ctx.label(be),
      biosKey: `large:sample:${be}:mem`,
      biosJob: `large:sample:${be}`,
      peer: name,
      peerKey: `large:${impl}:sample:mem`,
      peerJob: `large:${impl}:sample`,
      unit: "GiB",
      lowerIsBetter: true,
      target: ctx.ratioTarget,
    });
  }
}
