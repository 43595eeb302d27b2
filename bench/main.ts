/**
 * `deno task bench`: Bios's throughput against its peers, measured in one
 * invocation. (a) matmul GFLOP/s per backend against numpy/OpenBLAS sgemm;
 * (b) LoRA training tokens/s per backend (and through the actor path) against
 * PyTorch on the same model; (c) sampling tokens/s with the KV cache at batch
 * 1 and 8 against PyTorch; (d) the large model (Qwen2.5-0.5B's shape, bf16
 * base weights: a LoRA step and sampling, tokens/s and peak memory) against
 * plain PyTorch and transformers + PEFT from a venv. Each figure is the
 * median of several worker processes (3 by default; the large model's jobs
 * run once), run round-robin so background load falls on Bios and its peers
 * alike.
 *
 * Flags: `--quick` (one process per figure, smaller sizes), `--runs N`,
 * `--backends native,webgpu,cpu`, `--only matmul,train,sample,nats,gateway,large`,
 * `--python PATH` (default /usr/bin/python3), `--venv-python PATH` (the
 * wheelhouse's PyTorch 2.13, transformers and PEFT; default `BIOS_PYTHON` or
 * `.venv/bin/python`), `--sizes N,N,…` (matmul sizes),
 * `--peer-device cuda` (PyTorch peers on a CUDA GPU, and WebGPU's products
 * against cuBLAS sgemm there: for a machine with a real GPU).
 *
 * Prints the table, writes it as JSON to bench/results/latest.json and as a
 * README section to bench/results/latest.md, and prints both paths.
 *
 * @module
 */
import { BENCH_CONFIG, BENCH_LORA } from "./bench_model.ts";
import { LARGE_CONFIG, LARGE_LORA } from "./large_model.ts";
import { type ChildResult, runChild } from "./child.ts";
import { FlagError, Flags } from "./flags.ts";
import {
  type BenchSettings,
  BIOS_BACKENDS,
  buildPlan,
  defaultSettings,
  type Group,
  GROUPS,
  type Job,
  OPENBLAS_TUNING_VARS,
  PEER_DEVICES,
  type PeerDevice,
} from "./plan.ts";
import {
  buildRows,
  type Collected,
  formatTable,
  markdownTable,
  type TableRow,
} from "./report.ts";

const USAGE =
  `usage: deno task bench [--quick] [--runs N] [--backends native,webgpu,cpu]
                       [--only matmul,train,sample,nats,gateway,large]
                       [--python /usr/bin/python3] [--venv-python V/bin/python]
                       [--sizes 512,1024,2048] [--peer-device cpu|cuda]`;

function log(msg: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(msg + "\n"));
}

function listFlag<T extends string>(
  flags: Flags,
  name: string,
  allowed: readonly T[],
): T[] | undefined {
  if (!flags.has(name)) return undefined;
  const items = flags.str(name).split(",").map((s) => s.trim()).filter((s) =>
    s !== ""
  );
  for (const it of items) {
    if (!allowed.includes(it as T)) {
      throw new FlagError(
        `--${name} items must be among ${allowed.join(", ")}: got ${
          JSON.stringify(it)
        }`,
      );
    }
  }
  if (items.length === 0) {
    throw new FlagError(
      `--${name} must name at least one of ${allowed.join(", ")}`,
    );
  }
  return items as T[];
}

/**
 * Whether a 1-minute load average means other work shared the machine: a
 * quarter of its cores busy (0.5 on our 2-core machine).
 */
function busy(load: number, cores: number): boolean {
  return load > 0.25 * cores;
}

function cpuModel(): string {
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(
      /^model name\s*:\s*(.+)$/m,
    );
    return m ? m[1].trim() : "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

async function main(): Promise<number> {
  let flags: Flags;
  try {
    flags = new Flags(Deno.args);
  } catch (e) {
    log(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags.has("help")) {
    console.log(USAGE);
    return 0;
  }
  const quick = flags.has("quick");
  const base = defaultSettings(quick);
  let backends: string[], groups: Group[], runs: number;
  let peerDevice: PeerDevice, matmulSizes: number[];
  try {
    backends = listFlag(flags, "backends", BIOS_BACKENDS) ?? base.backends;
    groups = listFlag(flags, "only", GROUPS) ?? base.groups;
    runs = flags.int("runs", base.runs);
    matmulSizes = flags.ints("sizes", base.matmulSizes);
    const device = flags.str("peer-device", base.peerDevice);
    if (!PEER_DEVICES.includes(device as PeerDevice)) {
      throw new FlagError(
        `--peer-device must be one of ${PEER_DEVICES.join(", ")}: got ${
          JSON.stringify(device)
        }`,
      );
    }
    peerDevice = device as PeerDevice;
  } catch (e) {
    log(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const python = flags.str("python", "/usr/bin/python3");
  const venvPython = findVenvPython(flags.str("venv-python", ""));
  const root = decodeURIComponent(new URL("..", import.meta.url).pathname)
    .replace(/\/$/, "");
  const resultsDir = `${root}/bench/results`;
  const biosHome = await Deno.makeTempDir({ prefix: "bios-bench-home-" });
  const started = performance.now();
  const loadStart = Deno.loadavg();
  try {
    log(
      `bios bench${
        quick ? " --quick" : ""
      }: ${runs} process(es) per figure; load average ${
        loadStart[0].toFixed(2)
      }`,
    );
    if (busy(loadStart[0], navigator.hardwareConcurrency)) {
      log(
        `warning: other processes are using the CPU (1-minute load ${
          loadStart[0].toFixed(2)
        } on ${navigator.hardwareConcurrency} cores); multi-threaded figures will be noisy`,
      );
    }
    const probe = await runChild({
      cmd: Deno.execPath(),
      args: ["run", "-A", "bench/probe_worker.ts"],
      cwd: root,
      env: { BIOS_HOME: biosHome },
      timeoutMs: 120_000,
    });
    const probed = probe.ok && typeof probe.json.backend === "string"
      ? probe.json as { backend: string; device: string; reason: string }
      : null;
    const defaultBackend = probed?.backend ?? "native";
    log(
      probed
        ? `default backend: ${probed.backend} (${probed.reason})`
        : `could not probe the default backend (${
          probe.ok ? JSON.stringify(probe.json) : probe.error
        }); assuming native`,
    );
    const settings: BenchSettings = {
      ...base,
      runs,
      backends,
      groups,
      matmulSizes,
      // The TypeScript backend runs about 1 GFLOP/s: none past its default sizes.
      cpuMatmulSizes: matmulSizes.filter((n) =>
        n <= Math.max(...base.cpuMatmulSizes)
      ),
      peerDevice,
      defaultBackend,
      openblasTuning: OPENBLAS_TUNING_VARS.filter((k) =>
        Deno.env.get(k) !== undefined
      ),
    };
    const plan = buildPlan(settings, {
      deno: Deno.execPath(),
      python,
      venvPython,
      root,
      biosHome,
    });
    if (!venvPython) {
      log(
        "no venv python (--venv-python, BIOS_PYTHON or .venv/bin/python): " +
          "the PyTorch (venv) rows and the large model are left out",
      );
    }
    const got: Collected = { figures: new Map(), notes: new Map() };
    const workers: Record<string, Record<string, unknown>> = {};
    const unavailable = new Map<string, string>();
    const note = (id: string, msg: string) =>
      got.notes.set(id, [...(got.notes.get(id) ?? []), msg]);

    for (let round = 1; round <= runs; round++) {
      for (const job of plan.jobs) {
        if (job.backend && unavailable.has(job.backend)) continue;
        if (job.once && round > 1) continue;
        const res = await runChild(job.spec);
        const elapsed = ((performance.now() - started) / 1000).toFixed(0);
        log(
          `[${round}/${runs}] ${job.label}: ${describe(res)} (${
            res.seconds.toFixed(1)
          } s; ${elapsed} s in all)`,
        );
        record(job, res, got, workers, unavailable, note);
      }
    }

    const rows = buildRows(plan.rows, got);
    const seconds = (performance.now() - started) / 1000;
    const loadEnd = Deno.loadavg();
    const command = `deno task bench${
      Deno.args.length ? " " + Deno.args.join(" ") : ""
    }`;
    const machine = {
      cpu: cpuModel(),
      cores: navigator.hardwareConcurrency,
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      deno: Deno.version.deno,
      loadAverageStart: loadStart,
      loadAverageEnd: loadEnd,
      env: Object.fromEntries(
        [
          "OPENBLAS_CORETYPE",
          "OPENBLAS_L2_SIZE",
          "OPENBLAS_NUM_THREADS",
          "OMP_NUM_THREADS",
          "BIOS_BACKEND",
        ]
          .map((k) => [k, Deno.env.get(k) ?? null]),
      ),
    };
    const result = {
      command,
      date: new Date().toISOString(),
      seconds,
      quick,
      processesPerFigure: runs,
      defaultBackend: probed ?? { backend: defaultBackend },
      machine,
      model: {
        config: BENCH_CONFIG,
        lora: {
          rank: BENCH_LORA.rank,
          alpha: BENCH_LORA.alpha,
          targets: BENCH_LORA.targets,
        },
        train: settings.train,
        sample: settings.sample,
        matmulSizes: settings.matmulSizes,
        large: {
          config: LARGE_CONFIG,
          lora: LARGE_LORA,
          ...settings.large,
        },
      },
      unavailable: Object.fromEntries(unavailable),
      workers,
      rows,
    };
    await Deno.mkdir(resultsDir, { recursive: true });
    const jsonPath = `${resultsDir}/latest.json`;
    const mdPath = `${resultsDir}/latest.md`;
    await Deno.writeTextFile(jsonPath, JSON.stringify(result, null, 2) + "\n");
    await Deno.writeTextFile(
      mdPath,
      readmeSection(
        result,
        rows,
        settings,
        workers,
        unavailable,
        probed?.reason,
      ),
    );
    console.log("");
    console.log(formatTable(rows));
    console.log("");
    for (const [be, why] of unavailable) console.log(`${be}: skipped: ${why}`);
    for (const r of rows) {
      if (r.note) console.log(`note: ${r.figure} / ${r.backend}: ${r.note}`);
    }
    console.log(
      `ratio = Bios / peer, medians of ${runs} process(es) each; ${
        seconds.toFixed(0)
      } s in all; ` +
        `load average ${loadStart[0].toFixed(2)} → ${loadEnd[0].toFixed(2)}`,
    );
    // The load at the end counts the benchmark's own workers: only the
    // start tells of other work.
    if (busy(loadStart[0], navigator.hardwareConcurrency)) {
      console.log(
        "warning: the machine was busy with other work during the run; PyTorch " +
          "slows down sharply when another process holds a core, so ratios against it are inflated. " +
          "Rerun on an idle machine for figures to quote.",
      );
    }
    console.log(`JSON: ${jsonPath}`);
    console.log(`README section: ${mdPath}`);
    return 0;
  } finally {
    await Deno.remove(biosHome, { recursive: true }).catch(() => {});
  }
}

function describe(res: ChildResult): string {
  if (!res.ok) return `FAILED: ${res.error}`;
  if (typeof res.json.unavailable === "string") {
    return `unavailable: ${res.json.unavailable}`;
  }
  const show = (v: unknown): string =>
    typeof v === "number"
      ? v.toFixed(1)
      : typeof v === "object" && v !== null
      ? Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join(", ")
      : String(v);
  if (typeof res.json.gatewayMs === "number") {
    return `step ${show(res.json.gatewayMs)} ms through the gateway, ${
      show(res.json.embeddedMs)
    } ms embedded`;
  }
  const v = res.json.gflops ?? res.json.tokensPerSecond;
  return `${show(v)} ${res.json.gflops ? "GFLOP/s" : "tokens/s"}`;
}

function record(
  job: Job,
  res: ChildResult,
  got: Collected,
  workers: Record<string, Record<string, unknown>>,
  unavailable: Map<string, string>,
  note: (id: string, msg: string) => void,
): void {
  if (!res.ok) {
    note(job.id, `a process failed: ${res.error}`);
    return;
  }
  if (typeof res.json.unavailable === "string") {
    if (job.backend) unavailable.set(job.backend, res.json.unavailable);
    note(job.id, `unavailable: ${res.json.unavailable}`);
    return;
  }
  let figures: Record<string, number>;
  try {
    figures = job.figures(res.json);
  } catch (e) {
    note(job.id, `a process answered badly: ${(e as Error).message}`);
    return;
  }
  for (const [k, v] of Object.entries(figures)) {
    got.figures.set(k, [...(got.figures.get(k) ?? []), v]);
  }
  const { gflops: _g, tokensPerSecond: _t, ...info } = res.json;
  workers[job.id] ??= info;
}

/** The sentence that names the peers and how they ran. */
function peersText(
  s: BenchSettings,
  workers: Record<string, Record<string, unknown>>,
): string {
  const torch = workers["torch:train"] ?? workers["torch:sample"];
  const numpy = workers["numpy"];
  const parts: string[] = [];
  if (numpy) {
    parts.push(`numpy ${numpy.version} (float32 \`numpy.matmul\`, OpenBLAS)`);
  }
  if (s.peerDevice === "cuda") {
    const mm = workers["torch-mm"];
    const gpu = torch?.device ?? mm?.device ?? "the GPU";
    if (mm) {
      parts.push(
        `PyTorch ${mm.version} \`torch.matmul\` in float32 with TF32 off (cuBLAS sgemm) on ${gpu}`,
      );
    }
    if (torch) {
      parts.push(
        `PyTorch ${torch.version} on ${gpu} (float32, TF32 off, eager)`,
      );
    }
  } else if (torch) {
    parts.push(
      `PyTorch ${torch.version} (run with 1 and with 2 threads, \`torch.set_num_threads\`, the faster kept)`,
    );
  }
  return parts.length === 0 ? "" : `Peers: ${parts.join("; ")}. `;
}

function readmeSection(
  result: {
    command: string;
    date: string;
    seconds: number;
    machine: {
      cpu: string;
      cores: number;
      deno: string;
      loadAverageStart: number[];
    };
  },
  rows: TableRow[],
  s: BenchSettings,
  workers: Record<string, Record<string, unknown>>,
  unavailable: Map<string, string>,
  defaultReason: string | undefined,
): string {
  const c = BENCH_CONFIG;
  const lines = [
    "## Benchmarks",
    "",
    "```sh",
    result.command,
    "```",
    "",
    `Measured ${
      result.date.slice(0, 10)
    } on ${result.machine.cpu} (${result.machine.cores} cores), ` +
    `Deno ${result.machine.deno}, in ${
      (result.seconds / 60).toFixed(1)
    } minutes. ` +
    peersText(s, workers) +
    `Each figure is the median of ${s.runs} separate process${
      s.runs === 1 ? "" : "es"
    }, ` +
    "run round-robin with its peer in the same invocation; ratio = Bios / peer (above 1 is Bios faster).",
    "",
    `Model: Llama layout, d ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} query heads over ${c.numKvHeads} ` +
    `KV heads of dimension ${c.headDim}, MLP ${c.intermediateSize}, vocabulary ${c.vocabSize}, untied LM head; ` +
    `LoRA rank ${BENCH_LORA.rank} (alpha ${BENCH_LORA.alpha}) on every linear layer ` +
    `(${
      BENCH_LORA.targets.join(", ")
    }), as Bios adapts by default; base frozen, AdamW over the LoRA tensors only.`,
    "",
    markdownTable(rows),
    "",
    `- **matmul**: n×n times n×n in float32 into a preallocated output, timed for at least ${s.matmulSeconds} s ` +
    "(products batched per sync until a batch takes at least 0.25 s, the same rule for numpy, so a GPU " +
    "wait — about 11 ms in Deno — does not dominate).",
    `- **LoRA step**: B ${s.train.batch} × T ${s.train.seq} tokens per step: forward, loss ` +
    "(cross-entropy, weights 1), backward, AdamW over every LoRA tensor, zeroed gradients, then a full " +
    "sync; steady state after one warm-up step. The bare rows run `Stage.forward`/`backward` and `be.adamw` " +
    "directly; the ServiceClient row is the same step through the embedded actors " +
    "(`forwardBackward` + `optimStep`, default settings), so the actor overhead shows.",
    `- **sample**: a prompt of ${s.sample.prompt} tokens, ${s.sample.maxTokens} new tokens per sequence at ` +
    "temperature 1 with the KV cache and the LoRA adapter applied; tokens/s = B · generated / wall time, " +
    "prefill included. PyTorch uses its own preallocated KV cache and `torch.multinomial`.",
    s.peerDevice === "cuda"
      ? "- No targets: the issue sets none on a real GPU; the PyTorch peers ran on the same GPU."
      : "- Targets (from the issue): the default backend trains and samples at 1.0× PyTorch or better; " +
        "WebGPU matmul on lavapipe at 25 GFLOP/s or better.",
  ];
  const devices = BIOS_BACKENDS.flatMap((be) => {
    const w = workers[`train:${be}`] ?? workers[`sample:${be}`] ??
      workers[`mm:${be}`];
    return typeof w?.device === "string" ? [`${be}: ${w.device}`] : [];
  });
  if (devices.length > 0) lines.push(`- Backends: ${devices.join("; ")}.`);
  if (defaultReason) {
    lines.push(`- Default backend (\`selectBackend()\`): ${defaultReason}.`);
  }
  if (s.openblasTuning.length > 0) {
    lines.push(
      `- ${
        s.openblasTuning.join(" and ")
      } were set; rows marked "unset" rerun numpy and the native backend ` +
        "without them.",
    );
  }
  if (busy(result.machine.loadAverageStart[0], result.machine.cores)) {
    lines.push(
      `- The machine was not idle (1-minute load average ${
        result.machine.loadAverageStart[0].toFixed(2)
      } at the ` +
        "start): multi-threaded figures, PyTorch's above all, drop sharply when another process holds a core.",
    );
  }
  for (const [be, why] of unavailable) {
    lines.push(`- ${be}: not measured: ${why}.`);
  }
  for (const r of rows) {
    if (r.note) lines.push(`- ${r.figure} / ${r.backend}: ${r.note}.`);
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) Deno.exit(await main());

/**
 * The venv python with the wheelhouse's PyTorch, transformers and PEFT:
 * `--venv-python`, else `BIOS_PYTHON`, else `.venv/bin/python` when present.
 */
function findVenvPython(flag: string): string | undefined {
  const given = flag || Deno.env.get("BIOS_PYTHON");
  if (given) return given;
  const local = new URL("../.venv/bin/python", import.meta.url).pathname;
  try {
    Deno.statSync(local);
    return local;
  } catch {
    return undefined;
  }
}
