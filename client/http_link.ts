/**
 * The link over HTTP (client/link.ts): the gateway's Tinker wire (SDK 0.24's
 * JSON), as the official SDK speaks it. The API key goes as `X-API-Key`; a
 * session is made on first use and kept alive by a heartbeat; every
 * operation answers a `request_id` whose result is long-polled with
 * `retrieve_future`.
 *
 * Exactly once: a run's operations carry the training client's `seq_id`
 * (1, 2, 3 …), which the gateway maps onto the trainer's `seq`. A request
 * whose connection dropped, or that met a 5xx, 408 or 429, is sent again
 * unchanged: the gateway answers a replayed `seq_id` from its record (or the
 * trainer's journal), so it is applied once. A future the gateway no longer
 * knows (it restarted) is asked for again by resubmitting the operation.
 *
 * @module
 */
import {
  ClientClosedError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../runtime/errors.ts";
import type { CreateLoraTrainingClientOptionsInput } from "../protocol/types/lora_config.ts";
import type { SampleRequest } from "../protocol/messages.ts";
import type {
  GetServerCapabilitiesResponse,
  SampleResponse,
} from "../protocol/types/responses.ts";
import type {
  ComputeLogprobsRequest,
  Link,
  RestLink,
  RunLink,
  SamplerInfo,
  SamplerLink,
  TrainingRunInfo,
  WeightsInfo,
} from "./link.ts";
import type { TrainerOp } from "./trainer_op.ts";
import { RESEND_WINDOW_MS } from "./resend.ts";
import { HttpRest } from "./http_rest.ts";
import {
  biosPath,
  errorFromJson,
  type Json,
  sampleBody,
  sampleFromJson,
  snakeKeys,
  trainerRequestWire,
  trainerResultFromJson,
  wirePath,
} from "./tinker_wire.ts";

/** How often the session's heartbeat goes (the SDK's period). */
const HEARTBEAT_MS = 10_000;

/** Statuses after which a request is sent again unchanged. */
const RETRIED = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Whether a 5xx (or 408, 429) answer may pass if sent again: not when it
 * carries a Bios error that is final (a damaged checkpoint, a storage
 * fault that is not retryable), only one that says "unavailable".
 */
function transient(j: Json): boolean {
  const b = j.bios_error as { code?: string; retryable?: boolean } | undefined;
  return b === undefined || b === null || b.code === "unavailable" ||
    b.retryable === true;
}

/** The gateway no longer knows a future (it restarted, or forgot it). */
class FutureLostError extends Error {}

/** Options of {@linkcode HttpLink}. */
export interface HttpLinkOptions {
  /** The gateway's address, e.g. `http://127.0.0.1:8080` (the SDK's `base_url`). */
  baseUrl: string;
  /** The API key, sent as `X-API-Key`. */
  apiKey?: string;
}

/**
 * Whether `e` is the gateway's 404 for an id in `field` that it does not
 * know: one it forgot when it restarted.
 */
function forgotten(e: unknown, field: string): boolean {
  return e instanceof NotFoundError &&
    (e as { field?: string }).field === field;
}

/**
 * A sampling session on the gateway. One of a checkpoint or a base model
 * that a restarted gateway no longer knows is made again, once per request
 * (sampling is a function of the model and the request); one of a run's
 * weights at a moment (a snapshot) cannot be, and says so.
 */
class HttpSampler implements SamplerLink {
  /**
   * @param link the gateway
   * @param info what it samples (its id changes when it is made again)
   * @param from the wire body's source keys it was made from
   */
  constructor(
    readonly link: HttpLink,
    readonly info: SamplerInfo,
    readonly from: Json,
  ) {}

  async sample(req: SampleRequest): Promise<SampleResponse> {
    const once = async () =>
      sampleFromJson(
        await this.link.future("asample", {
          "sampling_session_id": this.info.samplerId,
          ...sampleBody(req),
        }),
      );
    try {
      return await once();
    } catch (e) {
      if (!forgotten(e, "sampling_session_id")) throw e;
      if ("model_id" in this.from) {
        throw new NotFoundError(
          `the gateway no longer knows sampling session ${this.info.samplerId} (it restarted), and a sampler of a run's weights at a moment cannot be made again: take a new one from the training client`,
          { cause: e },
        );
      }
      this.info.samplerId = await this.link.samplingSession(this.from);
      return await once();
    }
  }

  async computeLogprobs(
    req: ComputeLogprobsRequest,
  ): Promise<(number | null)[]> {
    // As the SDK does it: one token sampled, with the prompt's logprobs.
    const out = await this.sample({
      type: "sample",
      prompt: req.prompt,
      numSamples: 1,
      samplingParams: { maxTokens: 1 } as SampleRequest["samplingParams"],
      includePromptLogprobs: true,
      topkPromptLogprobs: 0,
    });
    return out.promptLogprobs ?? [];
  }

  async stop(): Promise<void> {
    await this.link.call("POST", "unload_sampling_session", {
      "sampling_session_id": this.info.samplerId,
    });
  }

  release(): void {
    this.stop().catch(() => {});
  }
}

/** A training run on the gateway: its operations posted in seq order. */
class HttpRun implements RunLink {
  /** Every operation posted so far has its request id (settled either way). */
  #posted: Promise<void> = Promise.resolve();

  constructor(readonly link: HttpLink, readonly runId: string) {}

  submit<T>(req: TrainerOp, _before: Promise<unknown>): Promise<T> {
    // Converted now: a request the wire cannot carry is refused before it takes its seq.
    const { route, body } = trainerRequestWire(req);
    const id = this.#posted.then(() => this.link.post(route, body));
    this.#posted = id.then(() => {}, () => {});
    return id.then((rid) =>
      this.link.result(rid, () => this.link.post(route, body))
    ).then((j) => trainerResultFromJson(req.type, j) as T);
  }

  async getInfo(): Promise<TrainingRunInfo> {
    await this.#posted;
    const j = await this.link.call("POST", "get_info", {
      "model_id": this.runId,
    });
    const data = (j.model_data ?? {}) as Json;
    return {
      modelId: j.model_id as string,
      modelName: j.model_name as string,
      isLora: true,
      loraRank: j.lora_rank as number,
      modelData: {
        arch: data.arch as string,
        modelName: data.model_name as string,
        ...(typeof data.tokenizer_id === "string"
          ? { tokenizerId: data.tokenizer_id }
          : {}),
      },
      step: j.step as number,
      lastSeq: j.last_seq as number,
      version: j.version as number,
      shards: j.shards as number,
    };
  }

  async snapshotSampler(): Promise<SamplerLink> {
    await this.#posted;
    return await this.link.startSampler({ "model_id": this.runId });
  }
}

/**
 * The gateway over HTTP.
 *
 * @example
 * ```ts ignore
 * const link = new HttpLink({ baseUrl: "http://127.0.0.1:8080", apiKey: "tml-…" });
 * console.log(await link.capabilities());
 * await link.close();
 * ```
 */
export class HttpLink implements Link {
  readonly #api: string;
  readonly #headers: Record<string, string>;
  readonly #closing = new AbortController();
  #session?: Promise<string>;
  #heartbeat?: ReturnType<typeof setInterval>;
  #modelSeq = 0;
  #samplingSeq = 0;

  /**
   * A link to the gateway at `opts.baseUrl` (nothing is sent yet).
   *
   * @throws {InvalidArgumentError} when `baseUrl` is not an http(s) URL
   */
  constructor(opts: HttpLinkOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new InvalidArgumentError(
        "baseUrl",
        `baseUrl must be an http:// or https:// URL: got ${
          JSON.stringify(opts.baseUrl)
        }`,
      );
    }
    this.#api = `${url.href.replace(/\/+$/, "")}/api/v1/`;
    this.#headers = {
      "content-type": "application/json",
      ...(opts.apiKey !== undefined ? { "x-api-key": opts.apiKey } : {}),
    };
  }

  /**
   * One request; resent unchanged after a dropped connection or a 408, 429
   * or 5xx, within {@link RESEND_WINDOW_MS}. Resolves with the JSON answer.
   *
   * @throws the Bios error a 4xx answer stands for
   */
  async call(
    method: "GET" | "POST" | "PUT" | "DELETE",
    route: string,
    body?: Json,
  ): Promise<Json> {
    const deadline = Date.now() + RESEND_WINDOW_MS;
    for (let attempt = 0;; attempt++) {
      if (this.#closing.signal.aborted) {
        throw new ClientClosedError("ServiceClient");
      }
      let res: Response;
      try {
        res = await fetch(this.#api + route, {
          method,
          headers: this.#headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: this.#closing.signal,
        });
      } catch (e) {
        if (this.#closing.signal.aborted) {
          throw new ClientClosedError("ServiceClient");
        }
        if (Date.now() > deadline) {
          throw new UnavailableError(
            `the gateway at ${this.#api} did not answer ${route} within ${RESEND_WINDOW_MS} ms: ${
              (e as Error).message
            }`,
            { cause: e },
          );
        }
        await this.#pause(attempt);
        continue;
      }
      const text = await res.text();
      let j: Json;
      try {
        j = text === "" ? {} : JSON.parse(text);
      } catch {
        j = { error: text.slice(0, 500) };
      }
      if (res.ok) return j;
      if (
        RETRIED.has(res.status) && transient(j) && Date.now() <= deadline
      ) {
        const after = Number(res.headers.get("retry-after"));
        await this.#pause(attempt, Number.isFinite(after) ? after * 1000 : 0);
        continue;
      }
      if (res.status === 410 && route === "retrieve_future") {
        throw new FutureLostError(String(j.error));
      }
      throw errorFromJson(j, res.status);
    }
  }

  #pause(attempt: number, atLeastMs = 0): Promise<void> {
    const ms = Math.max(atLeastMs, Math.min(1000, 10 * 2 ** attempt));
    return new Promise((r) => setTimeout(r, ms));
  }

  /** POST an operation; resolves with its request id. */
  async post(route: string, body: Json): Promise<string> {
    const j = await this.call("POST", route, body);
    return j.request_id as string;
  }

  /**
   * Long-poll request `id` until it settles; a future the gateway lost is
   * submitted again with `resubmit` (the same request: answered once).
   */
  async result(id: string, resubmit: () => Promise<string>): Promise<Json> {
    for (let lost = 0;; lost++) {
      try {
        return await this.#poll(id);
      } catch (e) {
        if (!(e instanceof FutureLostError) || lost >= 3) throw e;
        id = await resubmit();
      }
    }
  }

  async #poll(id: string): Promise<Json> {
    for (;;) {
      const j = await this.call("POST", "retrieve_future", {
        "request_id": id,
        "allow_metadata_only": false,
      });
      if (j.type === "try_again") continue;
      if (typeof j.error === "string" && "category" in j) {
        throw errorFromJson(j, 200);
      }
      return j;
    }
  }

  /** POST an operation and wait for its result. */
  async future(route: string, body: Json): Promise<Json> {
    const id = await this.post(route, body);
    return await this.result(id, () => this.post(route, body));
  }

  /**
   * This client's session on the gateway, made on first use, and again
   * once the gateway no longer knows it (a heartbeat, or a call in
   * {@linkcode HttpLink.inSession}, is told so after a restart).
   */
  session(): Promise<string> {
    if (this.#session) return this.#session;
    const made = this.call("POST", "create_session", {
      tags: [],
      "sdk_version": "bios-ts",
    }).then((j) => {
      const id = j.session_id as string;
      this.#heartbeat = setInterval(() => {
        this.call("POST", "session_heartbeat", { "session_id": id })
          .catch((e) => {
            if (forgotten(e, "session_id")) this.#forgetSession(made);
          });
      }, HEARTBEAT_MS);
      Deno.unrefTimer(Number(this.#heartbeat));
      return id;
    });
    made.catch(() => this.#forgetSession(made));
    this.#session = made;
    return made;
  }

  #forgetSession(which: Promise<string>): void {
    if (this.#session !== which) return;
    this.#session = undefined;
    clearInterval(this.#heartbeat);
  }

  /** `fn` in this client's session; again in a new one when the gateway forgot it. */
  async inSession<T>(fn: (sessionId: string) => Promise<T>): Promise<T> {
    const session = this.session();
    try {
      return await fn(await session);
    } catch (e) {
      if (!forgotten(e, "session_id")) throw e;
      this.#forgetSession(session);
      return await fn(await this.session());
    }
  }

  async capabilities(): Promise<
    GetServerCapabilitiesResponse & { backendReason?: string }
  > {
    const j = await this.call("GET", "get_server_capabilities");
    const models = (j.supported_models ?? []) as Json[];
    const unsupported = j.unsupported_models as Json[] | undefined;
    return {
      supportedModels: models.map((m) => ({
        modelName: m.model_name as string,
        maxContextLength: m.max_context_length as number,
      })),
      ...(unsupported
        ? {
          unsupportedModels: unsupported.map((m) => ({
            modelName: m.model_name as string,
            reason: m.reason as string,
          })),
        }
        : {}),
      ...(typeof j.backend === "string" ? { backend: j.backend } : {}),
      ...(typeof j.device === "string" ? { device: j.device } : {}),
      ...(typeof j.backend_reason === "string"
        ? { backendReason: j.backend_reason }
        : {}),
    };
  }

  async createRun(
    options: CreateLoraTrainingClientOptionsInput,
  ): Promise<{ runId: string; baseModel: string }> {
    const { baseModel, ...lora } = options;
    const j = await this.inSession((sessionId) =>
      this.future("create_model", {
        "session_id": sessionId,
        "model_seq_id": this.#modelSeq++,
        "base_model": baseModel,
        "lora_config": snakeKeys(lora as Record<string, unknown>),
      })
    );
    return {
      runId: j.model_id as string,
      baseModel: (j.base_model ?? baseModel) as string,
    };
  }

  run(runId: string): RunLink {
    return new HttpRun(this, runId);
  }

  rest(): RestLink {
    return new HttpRest(this);
  }

  createSampler(
    from: { modelPath?: string; baseModel?: string },
  ): Promise<SamplerLink> {
    try {
      return this.startSampler({
        ...(from.modelPath !== undefined
          ? { "model_path": wirePath(from.modelPath, "modelPath") }
          : {}),
        ...(from.baseModel !== undefined
          ? { "base_model": from.baseModel }
          : {}),
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A new sampling session's id, from `from` (a wire body's source keys). */
  async samplingSession(from: Json): Promise<string> {
    const j = await this.inSession((sessionId) =>
      this.call("POST", "create_sampling_session", {
        "session_id": sessionId,
        "sampling_session_seq_id": this.#samplingSeq++,
        ...from,
      })
    );
    return j.sampling_session_id as string;
  }

  /** A new sampling session from `from` (a wire body's source keys). */
  async startSampler(from: Json): Promise<SamplerLink> {
    const id = await this.samplingSession(from);
    const info = await this.call(
      "GET",
      `samplers/${encodeURIComponent(id)}`,
    );
    return new HttpSampler(this, {
      samplerId: id,
      baseModel: info.base_model as string,
      ...(typeof info.model_path === "string"
        ? { modelPath: biosPath(info.model_path) }
        : {}),
    }, from);
  }

  async weightsInfo(path: string, _baseModel?: string): Promise<WeightsInfo> {
    // baseModel matters only for an adapter folder, which does not cross HTTP.
    const j = await this.call("POST", "weights_info", {
      "tinker_path": wirePath(path, "path"),
    });
    return {
      baseModel: j.base_model as string,
      loraRank: j.lora_rank as number,
      loraAlpha: j.lora_alpha as number,
      targetModules: j.target_modules as string[],
      kind: j.kind as WeightsInfo["kind"],
      step: j.step as number,
    };
  }

  tokenizer(
    baseModel: string,
  ): Promise<
    { files: Record<string, string>; hints: Record<string, unknown> }
  > {
    return this.call("POST", "get_tokenizer", { "base_model": baseModel })
      .then((j) => ({
        files: j.files as Record<string, string>,
        hints: j.hints as Record<string, unknown>,
      }));
  }

  close(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#closing.abort();
    return Promise.resolve();
  }
}
