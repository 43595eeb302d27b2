/**
 * ServiceClient: the entry point. It finds the models and creates training
 * and sampling clients. With no address it runs an embedded node in this
 * process — the same actors a cluster runs, on the in-process transport.
 *
 * @module
 */
import type { NatsAuth } from "../runtime/nats_auth.ts";
import { ClientClosedError, InvalidArgumentError } from "../runtime/errors.ts";
import type { GetServerCapabilitiesResponse } from "../protocol/types/responses.ts";
import type { CreateLoraTrainingClientOptionsInput } from "../protocol/types/lora_config.ts";
import {
  AdapterPathSchema,
  isLocalAdapterPath,
} from "../protocol/types/adapter_path.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  connectEmbedded,
  type Connection,
  connectNats,
  type EmbeddedOptions,
} from "./connection.ts";
import { TrainingClient } from "./training_client.ts";
import { SamplingClient } from "./sampling_client.ts";
import type { Link, WeightsInfo } from "./link.ts";
import { ActorLink } from "./actor_link.ts";
import { HttpLink } from "./http_link.ts";
import { RestClient } from "./rest_client.ts";

/** Options of {@linkcode ServiceClient}. */
export interface ServiceClientOptions extends EmbeddedOptions {
  /** API key. @default {the BIOS_API_KEY environment variable} */
  apiKey?: string;
  /**
   * A running cluster's NATS server(s), e.g. `nats://10.0.0.5:4222`: the
   * client then talks to the node processes there (`deno task node`).
   */
  nats?: string | string[];
  /** Credentials and TLS for `nats`: user/pass, token, nkeyFile, credsFile, tls files. */
  natsAuth?: NatsAuth;
  /**
   * Address of a Bios HTTP gateway (`deno task serve`), e.g.
   * `https://bios.example`: the client then speaks the gateway's Tinker
   * wire, sending `apiKey` as `X-API-Key`.
   */
  baseUrl?: string;
}

/**
 * The entry point to Bios.
 *
 * @example
 * ```ts ignore
 * const service = new ServiceClient();
 * const caps = await service.getServerCapabilities();
 * const tc = await service.createLoraTrainingClient({ baseModel: "ultrasafe/usf-finance", rank: 16 });
 * await service.close();
 * ```
 */
export class ServiceClient implements AsyncDisposable {
  /** The API key in use (from the option or BIOS_API_KEY). */
  readonly apiKey?: string;
  #conn?: Promise<Connection>;
  #link?: Promise<Link>;
  #closed = false;
  readonly #opts: ServiceClientOptions;

  /**
   * A client of a Bios cluster; with no address, an embedded one in this process.
   *
   * @param opts where the cluster is; nothing given runs one in this process
   */
  constructor(opts: ServiceClientOptions = {}) {
    this.#opts = opts;
    this.apiKey = opts.apiKey ?? Deno.env.get("BIOS_API_KEY");
    if (opts.baseUrl !== undefined) {
      if (opts.nats !== undefined) {
        throw new InvalidArgumentError(
          "baseUrl",
          "baseUrl and nats exclude each other: give the gateway's address or the cluster's, not both",
        );
      }
      this.#link = Promise.resolve(
        new HttpLink({ baseUrl: opts.baseUrl, apiKey: this.apiKey }),
      );
    }
    if (opts.nats !== undefined) {
      const urls = typeof opts.nats === "string" ? [opts.nats] : opts.nats;
      if (
        !Array.isArray(urls) || urls.length === 0 ||
        !urls.every((u) =>
          typeof u === "string" && /^(nats|tls):\/\/\S+$/.test(u)
        )
      ) {
        throw new InvalidArgumentError(
          "nats",
          `nats must be a nats://host:port URL or a list of them: got ${
            JSON.stringify(opts.nats)
          }`,
        );
      }
    }
  }

  /**
   * The actor connection of an embedded or NATS client, opened on first use.
   *
   * @throws {ClientClosedError} (as a rejection) once `close()` was called
   * @throws {InvalidArgumentError} (as a rejection) for a client of an HTTP
   *   gateway (`baseUrl`), which reaches no actors
   */
  connection(): Promise<Connection> {
    if (this.#closed) {
      return Promise.reject(new ClientClosedError("ServiceClient"));
    }
    if (this.#opts.baseUrl !== undefined) {
      return Promise.reject(
        new InvalidArgumentError(
          "baseUrl",
          "a client of an HTTP gateway (baseUrl) has no actor connection",
        ),
      );
    }
    this.#conn ??= this.#opts.nats !== undefined
      ? connectNats({ servers: this.#opts.nats, auth: this.#opts.natsAuth })
      : connectEmbedded(this.#opts);
    return this.#conn;
  }

  /**
   * How this client reaches its deployment (client/link.ts): the actors over
   * its connection, or the gateway over HTTP.
   *
   * @internal
   * @throws {ClientClosedError} (as a rejection) once `close()` was called
   */
  link(): Promise<Link> {
    if (this.#closed) {
      return Promise.reject(new ClientClosedError("ServiceClient"));
    }
    this.#link ??= this.connection().then((c) => new ActorLink(c));
    return this.#link;
  }

  /** The models this cluster serves, and the compute backend it uses. */
  async getServerCapabilities(): Promise<
    GetServerCapabilitiesResponse & { backendReason?: string }
  > {
    return await (await this.link()).capabilities();
  }

  /** Start a LoRA training run on a base model. */
  async createLoraTrainingClient(
    options: CreateLoraTrainingClientOptionsInput,
  ): Promise<TrainingClient> {
    const link = await this.link();
    const run = await link.createRun(options);
    return new TrainingClient(this, link, run.runId, run.baseModel);
  }

  /**
   * A new training run whose weights come from a `weights/` checkpoint; with
   * `withOptimizer`, Adam's state too (else it starts fresh). `path` may
   * also be a PEFT adapter folder on the node's disk (an absolute path or a
   * `file:///` URL): the run takes its rank, alpha and targets, on
   * `baseModel` (default: the model its `base_model_name_or_path` names, if
   * this cluster serves it), and Adam starts fresh.
   */
  async createTrainingClientFromState(
    path: string,
    opts: { withOptimizer?: boolean; baseModel?: string } = {},
  ): Promise<TrainingClient> {
    if (opts.withOptimizer && isLocalAdapterPath(path)) {
      throw new InvalidArgumentError(
        "withOptimizer",
        `withOptimizer must be false for an adapter folder (${path} holds weights only, no optimizer state)`,
      );
    }
    const info = await this.weightsInfo(path, { baseModel: opts.baseModel });
    if (info.kind === "sampler_weights") {
      throw new InvalidArgumentError(
        "path",
        `path ${path} is a sampler-only checkpoint (sampler_weights); training loads bios://<run>/weights/<name> checkpoints`,
      );
    }
    const tc = await this.createLoraTrainingClient({
      baseModel: info.baseModel,
      rank: info.loraRank,
      alpha: info.loraAlpha,
      targetModules: info
        .targetModules as CreateLoraTrainingClientOptionsInput["targetModules"],
    });
    await (opts.withOptimizer
      ? tc.loadStateWithOptimizer(path)
      : tc.loadState(path));
    return tc;
  }

  /**
   * A sampling client for a checkpoint (`modelPath`), a PEFT adapter folder
   * on the node's disk (`modelPath` an absolute path or a `file:///` URL,
   * with `baseModel` unless the adapter's `base_model_name_or_path` names a
   * served model), or a bare base model.
   */
  async createSamplingClient(
    opts: { modelPath?: string; baseModel?: string },
  ): Promise<SamplingClient> {
    if (opts.modelPath !== undefined) {
      parseOrThrow(AdapterPathSchema, opts.modelPath, "modelPath");
    }
    const link = await this.link();
    return new SamplingClient(
      await link.createSampler({
        modelPath: opts.modelPath,
        baseModel: opts.baseModel,
      }),
    );
  }

  /**
   * What a checkpoint holds: base model, LoRA rank and targets, kind, step.
   * For a PEFT adapter folder (kind `peft_adapter`, step 0) the folder is
   * read and checked against `baseModel` (default: the served model its
   * `base_model_name_or_path` names).
   */
  async weightsInfo(
    path: string,
    opts: { baseModel?: string } = {},
  ): Promise<WeightsInfo> {
    parseOrThrow(AdapterPathSchema, path, "path");
    return await (await this.link()).weightsInfo(path, opts.baseModel);
  }

  /**
   * The REST calls (runs and checkpoints listed, a checkpoint's weights
   * info, deletion, expiry, archive), as the anchor's `create_rest_client()`.
   */
  createRestClient(): RestClient {
    return new RestClient(() => this.link());
  }

  /**
   * Stop the embedded node (or disconnect). Idempotent; afterwards every
   * call is refused with {@linkcode ClientClosedError}.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const link = this.#link;
    this.#link = undefined;
    const l = await link?.catch(() => undefined);
    if (l) return await l.close();
    if (!this.#conn) return;
    const c = await this.#conn.catch(() => undefined);
    this.#conn = undefined;
    await c?.close();
  }

  /** `await using service = new ServiceClient()` closes it at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
