/**
 * Shared set-up for the end-to-end tests: two tiny Llama models in Hugging
 * Face layout (`test/tiny`, `test/tiny2`) named by a catalog file, and an
 * embedded ServiceClient with a temporary checkpoint folder.
 *
 * The models live in `$BIOS_HOME/test-models/<version>/` as a cache, like the
 * built-in demo models: they are deterministic, so every test file (and every
 * process) that builds them gets the same bytes. `BIOS_MODELS` is process-wide
 * and test files may run in parallel in one process, so the models are loaded
 * into this isolate's cache right after the variable is set, and the variable
 * is only put back when it still names our catalog.
 *
 * @module
 */
import * as bios from "../mod.ts";
import { biosHome, type Connection } from "../client/connection.ts";
import { loadBaseModel } from "../actors/base_models.ts";
import {
  type LlamaConfig,
  llamaTensorShapes,
  parseLlamaConfig,
} from "../model/config.ts";
import { writeModelFolder } from "../model/model_folder.ts";
import { ByteTokenizer } from "../model/byte_tokenizer.ts";
import { Prng } from "../model/prng.ts";

/** The tiny model most tests train. */
export const TINY = "test/tiny";
/** A second tiny model with the same shapes but other weights. */
export const TINY2 = "test/tiny2";
/**
 * The tiny model with its `lm_head` scaled by 1e14: losses stay finite, but
 * a large per-token weight makes the gradients overflow float32 on the way
 * back (for tests of the trainer's gradient check).
 */
export const TINY_LOUD = "test/tiny-loud";
/** Vocabulary size of both tiny models (the byte tokenizer's). */
export const TINY_VOCAB = 259;
/** Narrowest adapted matrix of the tiny models: k/v projections, 2 heads × 8. */
export const TINY_MAX_RANK = 16;

/** Bump when the generator below changes, so stale caches are not reused. */
const VERSION = "v3";

/** The tiny models' config: width 32, 2 layers, 4 heads, 2 kv heads. */
export function tinyConfig(): LlamaConfig {
  return parseLlamaConfig({
    model_type: "llama",
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: TINY_VOCAB,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: false,
    bos_token_id: 256,
    eos_token_id: 257,
  });
}

function tinyTensors(
  name: string,
  headScale = 1,
): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = Prng.fromString(`bios-test-model:${name}`);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [tensorName, shape] of llamaTensorShapes(tinyConfig())) {
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    if (shape.length === 1) data.fill(1); // RMSNorm gains
    else rng.fillNormal(data, 0, 0.1);
    if (tensorName === "lm_head.weight") {
      for (let i = 0; i < data.length; i++) data[i] *= headScale;
    }
    out.set(tensorName, { shape, data });
  }
  return out;
}

/**
 * Build (once) the tiny models and their catalog file; returns the catalog's
 * path.
 */
export async function ensureTinyModels(): Promise<string> {
  const root = `${biosHome()}/test-models/${VERSION}`;
  const catalog = `${root}/catalog.json`;
  const models = [
    [TINY, "tiny", 1],
    [TINY2, "tiny2", 1],
    [TINY_LOUD, "tiny-loud", 1e14],
  ] as const;
  for (const [name, folder, headScale] of models) {
    await writeModelFolder(
      `${root}/${folder}`,
      tinyConfig(),
      tinyTensors(name, headScale),
      new ByteTokenizer(),
    );
  }
  try {
    await Deno.stat(catalog);
  } catch {
    // Written whole or not at all: a parallel reader never sees half a file.
    const tmp = `${catalog}.tmp-${crypto.randomUUID()}`;
    await Deno.writeTextFile(
      tmp,
      JSON.stringify({
        models: Object.fromEntries(models.map(([n, f]) => [n, f])),
      }) + "\n",
    );
    await Deno.rename(tmp, catalog);
  }
  return catalog;
}

/** A running embedded service for one test file. */
export interface TestService {
  /** The client. */
  service: bios.ServiceClient;
  /**
   * Its checkpoint folder (temporary): where the checkpoints are, unless
   * `checkpoints` is `jetstream`.
   */
  checkpointDir: string;
  /**
   * Where the node keeps checkpoints: `files` in `checkpointDir` (embedded,
   * or asked for with `checkpointFolder`), else `jetstream`, the NATS
   * server's object store, as on a cluster.
   */
  checkpoints: "files" | "jetstream";
  /** The catalog file naming the tiny models. */
  catalogFile: string;
  /** Where the node runs: in this process, or in a process of its own on NATS. */
  deployment: Deployment;
  /**
   * The actors behind the client, for tests that reach past the API (kill a
   * trainer, list a run's checkpoints on the node): the client's own
   * connection, or, for the gateway deployment, a NATS connection of the
   * test's own to the cluster behind the gateway.
   */
  connection(): Promise<Connection>;
  /** Close the service, remove the temporary folder, put `BIOS_MODELS` back. */
  close(): Promise<void>;
}

/** Where a test service's node runs. */
export type Deployment = "embedded" | "nats" | "gateway";

/** The API key the gateway deployment's client presents. */
export const TEST_API_KEY = "tml-bios-test-0123456789";

/**
 * The deployment the client tests run against: `BIOS_TEST_DEPLOYMENT=nats`
 * starts a nats-server and a node process for each service (the same tests,
 * over the wire); the default is the embedded node.
 */
export function testDeployment(): Deployment {
  const d = Deno.env.get("BIOS_TEST_DEPLOYMENT") ?? "embedded";
  if (d !== "embedded" && d !== "nats" && d !== "gateway") {
    throw new Error(
      `BIOS_TEST_DEPLOYMENT must be embedded, nats or gateway: got ${d}`,
    );
  }
  return d;
}

/**
 * Start a service that knows the tiny models: embedded, or (with
 * `BIOS_TEST_DEPLOYMENT=nats`, or `gateway` for the same behind the HTTP
 * gateway) a nats-server with JetStream and a node
 * process that keeps its checkpoints in the server's object store, as a
 * cluster does — or, for a test that reads or damages the checkpoint files
 * itself (`checkpointFolder: true`), in the temporary folder.
 */
export async function startTestService(
  opts: Omit<bios.ServiceClientOptions, "checkpointDir"> & {
    /** Serve this catalog's models (all loaded now) instead of the tiny ones. */
    catalog?: { file: string; models: readonly string[] };
    /** The test reads or changes the node's checkpoint files in `checkpointDir`. */
    checkpointFolder?: boolean;
    /**
     * A checkpoint folder the test filled before the service starts (implies
     * `checkpointFolder`): the node's store recovers it at its start, as a
     * node started over a crashed one's folder does. Removed by `close`.
     */
    checkpointDir?: string;
  } = {},
): Promise<TestService> {
  const { catalog, checkpointFolder, checkpointDir: given, ...clientOpts } =
    opts;
  const catalogFile = catalog?.file ?? await ensureTinyModels();
  const prev = Deno.env.get("BIOS_MODELS");
  Deno.env.set("BIOS_MODELS", catalogFile);
  // Load into this isolate's cache now: later look-ups no longer read the variable.
  for (const name of catalog?.models ?? [TINY, TINY2]) {
    await loadBaseModel(name);
  }
  const checkpointDir = given ??
    await Deno.makeTempDir({ prefix: "bios-test-ckpt-" });
  const deployment = testDeployment();
  let stopNode = async () => {};
  let service: bios.ServiceClient;
  let backdoor: (() => Promise<Connection>) | undefined;
  const checkpoints = deployment !== "embedded" && !checkpointFolder && !given
    ? "jetstream"
    : "files";
  if (deployment !== "embedded") {
    const { NatsServer } = await import("../runtime/_nats_server.ts");
    const { startNodeProcess } = await import("./_node_process.ts");
    const server = await NatsServer.start(undefined, [], {
      jetstream: checkpoints === "jetstream",
    });
    const flags = [
      "--checkpoints",
      checkpoints,
      "--checkpoint-dir",
      checkpointDir,
    ];
    if (opts.shardsPerRun !== undefined) {
      flags.push("--shards-per-run", String(opts.shardsPerRun));
    }
    if (opts.microBatchTokens !== undefined) {
      flags.push("--micro-batch-tokens", String(opts.microBatchTokens));
    }
    if (opts.deviceHandoff !== undefined) {
      flags.push("--device-handoff", String(opts.deviceHandoff));
    }
    const node = await startNodeProcess(
      server.url,
      flags,
      catalog && { BIOS_MODELS: catalog.file },
    );
    if (deployment === "nats") {
      service = new bios.ServiceClient({ nats: server.url });
      stopNode = async () => {
        await node.stop("SIGTERM");
        await server.stop();
      };
    } else {
      // The HTTP gateway in front of the cluster, as a real process.
      const { startGateway } = await import("./_gateway_process.ts");
      let gateway;
      try {
        gateway = await startGateway(
          ["--nats", server.url, "--rate-limit", "0"],
          { BIOS_API_KEYS: TEST_API_KEY, BIOS_MODELS: catalogFile },
        );
      } catch (e) {
        await node.stop("SIGTERM");
        await server.stop();
        throw e;
      }
      service = new bios.ServiceClient({
        baseUrl: gateway.url,
        apiKey: TEST_API_KEY,
      });
      const cluster = new bios.ServiceClient({ nats: server.url });
      backdoor = () => cluster.connection();
      stopNode = async () => {
        await cluster.close();
        await gateway.stop();
        await node.stop("SIGTERM");
        await server.stop();
      };
    }
  } else {
    service = new bios.ServiceClient({ checkpointDir, ...clientOpts });
  }
  return {
    service,
    checkpointDir,
    checkpoints,
    catalogFile,
    deployment,
    connection: backdoor ?? (() => service.connection()),
    async close() {
      await service.close();
      await stopNode();
      await Deno.remove(checkpointDir, { recursive: true }).catch(() => {});
      if (Deno.env.get("BIOS_MODELS") === catalogFile) {
        if (prev === undefined || prev === catalogFile) {
          Deno.env.delete("BIOS_MODELS");
        } else Deno.env.set("BIOS_MODELS", prev);
      }
    },
  };
}

/** A next-token cross-entropy datum over `ids` (inputs ids[0..n-2], targets ids[1..n-1]). */
export function nextTokenDatum(ids: number[]): bios.types.DatumInput {
  const targets = ids.slice(1);
  return {
    modelInput: bios.types.ModelInput.fromInts(ids.slice(0, -1)),
    lossFnInputs: { targetTokens: targets, weights: targets.map(() => 1) },
  };
}

/** Token ids of `text` between BOS (256) and EOS (257), byte-level. */
export function textIds(text: string): number[] {
  return [256, ...new TextEncoder().encode(text), 257];
}

/** A few fixed training examples. */
export const SAMPLE_TEXTS: readonly string[] = [
  "Q: 2+2?\nA: 4",
  "Q: capital of France?\nA: Paris",
  "Q: 3*3?\nA: 9",
];
