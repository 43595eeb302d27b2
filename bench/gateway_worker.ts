/**
 * Worker: what the HTTP gateway costs. The same LoRA step as
 * `actor_train_worker.ts` (the benchmark model, rank 16 / alpha 32, B
 * sequences of T tokens, `forward_backward` and `optim_step` submitted
 * together) through the embedded ServiceClient and through a real gateway
 * process (`server/main.ts`, its own embedded node, the Tinker wire's JSON
 * over loopback HTTP), alternated step by step in this one invocation so
 * that both see the same machine; the two runs start from the same seed,
 * and their first losses must agree. Then a short load through the gateway
 * — `--clients` tenants-worth of callers at once, each a session, a small
 * run, pipelined steps, a sampler and samples — timed per route on the
 * client side.
 *
 * `deno run -A bench/gateway_worker.ts [--batch 8 --seq 128 --seconds 2
 * --clients 8 --load-seconds 2]` prints one JSON line: `{"embeddedMs",
 * "gatewayMs", "overheadMs", "steps", "loss", "routes": {"<route>": {"p50",
 * "p99", "n"}}}` (milliseconds; the overhead is the median of the paired
 * differences).
 *
 * @module
 */
import { ServiceClient } from "../mod.ts";
import { ModelInput } from "../client/types.ts";
import { withBenchHome } from "./bench_home.ts";
import {
  BENCH_ADAM,
  BENCH_LORA,
  BENCH_MODEL_NAME,
  benchTokens,
} from "./bench_model.ts";
import { Flags } from "./flags.ts";
import { emit } from "./timing.ts";
import { median } from "./stats.ts";
import { type Json, WireCaller, wireDatum } from "../tests/_wire_caller.ts";

/** p-th percentile (0–100) of `xs` by nearest rank. */
function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** A gateway process on a free port; resolves with its URL once it listens. */
async function startGateway(
  home: string,
  catalog: string,
): Promise<{ url: string; stop(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../server/main.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--insecure-no-auth",
      "--rate-limit",
      "0",
      "--checkpoint-dir",
      `${home}/gateway-runs`,
    ],
    env: { BIOS_HOME: home, BIOS_MODELS: catalog },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the gateway did not start: ${text}`);
    text += value;
  }
  const ready = JSON.parse(text.split("\n")[0]) as { url: string };
  (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })().catch(() => {});
  return {
    url: ready.url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Per-route client-side latencies of a short load on the gateway at `url`. */
async function load(
  url: string,
  clients: number,
  seconds: number,
): Promise<Record<string, { p50: number; p99: number; n: number }>> {
  const times = new Map<string, number[]>();
  const timed = async <T>(route: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const out = await f();
    const list = times.get(route) ?? [];
    list.push(performance.now() - t0);
    times.set(route, list);
    return out;
  };
  const client = async (i: number) => {
    const c = new WireCaller(url, null);
    const post = (route: string, body: Json) =>
      timed(route, () => c.ok(route, body));
    const settle = (id: unknown) =>
      timed("retrieve_future", () => c.settle(id));
    await timed(
      "get_server_capabilities",
      () => c.fetch("/api/v1/get_server_capabilities"),
    );
    const session = (await post("create_session", { tags: [] }))
      .session_id as string;
    const model = (await settle(
      (await post("create_model", {
        "session_id": session,
        "model_seq_id": 0,
        "base_model": BENCH_MODEL_NAME,
        "lora_config": { rank: 4, seed: i },
      })).request_id,
    )).model_id as string;
    const data = [wireDatum([256, ...benchTokens(16, 500 + i)])];
    let seq = 1;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const fb = await post("forward_backward", {
        "model_id": model,
        "seq_id": seq++,
        "forward_backward_input": { data, "loss_fn": "cross_entropy" },
      });
      const opt = await post("optim_step", {
        "model_id": model,
        "seq_id": seq++,
        "adam_params": { "learning_rate": 1e-4 },
      });
      await settle(fb.request_id);
      await settle(opt.request_id);
      await post("session_heartbeat", { "session_id": session });
      await post("get_info", { "model_id": model });
    }
    const sampler = (await settle(
      (await post("save_weights_for_sampler", {
        "model_id": model,
        "seq_id": seq++,
        "sampling_session_seq_id": 0,
      })).request_id,
    )).sampling_session_id as string;
    for (let k = 0; k < 4; k++) {
      await settle(
        (await post("asample", {
          "sampling_session_id": sampler,
          prompt: { chunks: [{ type: "encoded_text", tokens: [256, 65] }] },
          "sampling_params": { "max_tokens": 8, seed: k },
          "num_samples": 1,
        })).request_id,
      );
    }
    await timed("healthz", () => c.fetch("/api/v1/healthz"));
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  const out: Record<string, { p50: number; p99: number; n: number }> = {};
  for (const [route, ms] of [...times].sort()) {
    out[route] = {
      p50: percentile(ms, 50),
      p99: percentile(ms, 99),
      n: ms.length,
    };
  }
  return out;
}

/** See the module doc. */
export async function measureGateway(
  batch: number,
  seq: number,
  minSeconds: number,
  clients: number,
  loadSeconds: number,
): Promise<Record<string, unknown>> {
  return await withBenchHome("bios-bench-gw-", async (home, catalog) => {
    const gateway = await startGateway(home, catalog);
    await using _gw = { [Symbol.asyncDispose]: () => gateway.stop() };
    await using service = new ServiceClient({ checkpointDir: `${home}/runs` });

    // The same run on both sides: the benchmark's LoRA, seed and data.
    const tc = await service.createLoraTrainingClient({
      baseModel: BENCH_MODEL_NAME,
      rank: BENCH_LORA.rank,
      alpha: BENCH_LORA.alpha,
      seed: BENCH_LORA.seed,
    });
    const seqs = Array.from(
      { length: batch },
      (_, b) => [...benchTokens(seq + 1, 100 + b)],
    );
    const data = seqs.map((s) => ({
      modelInput: ModelInput.fromInts(s.slice(0, seq)),
      lossFnInputs: {
        targetTokens: s.slice(1),
        weights: new Array<number>(seq).fill(1),
      },
    }));
    const adam = {
      learningRate: BENCH_ADAM.lr,
      beta1: BENCH_ADAM.beta1,
      beta2: BENCH_ADAM.beta2,
      eps: BENCH_ADAM.eps,
      weightDecay: BENCH_ADAM.weightDecay,
    };
    const http = new WireCaller(gateway.url, null);
    const session = await http.session();
    const model = await http.createModel(session, 0, BENCH_MODEL_NAME, {
      rank: BENCH_LORA.rank,
      alpha: BENCH_LORA.alpha,
      seed: BENCH_LORA.seed,
    });
    const wireData = seqs.map((s) => wireDatum(s));
    const wireAdam = {
      "learning_rate": BENCH_ADAM.lr,
      beta1: BENCH_ADAM.beta1,
      beta2: BENCH_ADAM.beta2,
      eps: BENCH_ADAM.eps,
      "weight_decay": BENCH_ADAM.weightDecay,
    };
    let wireSeq = 1;

    const embeddedStep = async () => {
      const fb = tc.forwardBackward(data, "cross_entropy");
      const opt = tc.optimStep(adam);
      const loss = (await fb).loss;
      await opt;
      return loss;
    };
    const gatewayStep = async () => {
      const fb = await http.ok("forward_backward", {
        "model_id": model,
        "seq_id": wireSeq++,
        "forward_backward_input": {
          data: wireData,
          "loss_fn": "cross_entropy",
        },
      });
      const opt = await http.ok("optim_step", {
        "model_id": model,
        "seq_id": wireSeq++,
        "adam_params": wireAdam,
      });
      const out = await http.settle(fb.request_id);
      const done = await http.settle(opt.request_id);
      if ("error" in out || "error" in done) {
        throw new Error(`a gateway step failed: ${JSON.stringify(out)}`);
      }
      return (out.metrics as Record<string, number>)["loss:sum"];
    };
    const t0 = performance.now();
    const lossE = await embeddedStep();
    const lossG = await gatewayStep();
    if (lossE !== lossG) {
      throw new Error(
        `not the same step: embedded loss ${lossE}, gateway loss ${lossG}`,
      );
    }
    const slow = performance.now() - t0 > 6000;
    const embeddedMs: number[] = [];
    const gatewayMs: number[] = [];
    const start = performance.now();
    while (
      embeddedMs.length < (slow ? 1 : 3) ||
      (embeddedMs.length < 10 &&
        performance.now() - start < 2 * minSeconds * 1000)
    ) {
      // Alternate which goes first, so that neither always follows the other.
      const order = embeddedMs.length % 2 === 0
        ? [embeddedStep, gatewayStep]
        : [gatewayStep, embeddedStep];
      for (const step of order) {
        const s = performance.now();
        await step();
        (step === embeddedStep ? embeddedMs : gatewayMs).push(
          performance.now() - s,
        );
      }
    }
    const diffs = embeddedMs.map((e, i) => gatewayMs[i] - e);
    const routes = await load(gateway.url, clients, loadSeconds);
    return {
      embeddedMs: median(embeddedMs),
      gatewayMs: median(gatewayMs),
      overheadMs: median(diffs),
      steps: embeddedMs.length,
      loss: lossE / (batch * seq),
      clients,
      routes,
    };
  });
}

if (import.meta.main) {
  const flags = new Flags(Deno.args);
  emit(
    await measureGateway(
      flags.int("batch", 8),
      flags.int("seq", 128),
      flags.num("seconds", 2),
      flags.int("clients", 8),
      flags.num("load-seconds", 2),
    ),
  );
}
