/**
 * The gateway's state and operations, one more client of the actors: it
 * holds a {@linkcode ServiceClient} (an embedded node, or a NATS cluster)
 * and keeps what the Tinker wire adds on top of Bios — sessions, futures,
 * sampling sessions — and who owns what. Every run, sampler and checkpoint
 * belongs to the tenant whose key made it; another tenant's is "not found",
 * exactly as one that does not exist.
 *
 * The routes (server/routes/) parse a request's head, call one method here,
 * and answer; a method that starts work returns a future's request id.
 *
 * @module
 */
import type { ServiceClient } from "../client/service_client.ts";
import type { SamplingClient } from "../client/sampling_client.ts";
import { TrainingClient } from "../client/training_client.ts";
import { trainerAddress } from "../protocol/addresses.ts";
import type { TrainingRunInfo } from "../client/training_client.ts";
import type { SampleRequest } from "../protocol/messages.ts";
import { LORA_MODULE_GROUPS } from "../protocol/types/lora_config.ts";
import {
  isRunId,
  parseCheckpointPath,
} from "../protocol/types/checkpoint_path.ts";
import type { TrainingRunSummary } from "../protocol/types/training_runs.ts";
import type {
  ForwardBackwardOutput,
  GetServerCapabilitiesResponse,
  OptimStepResponse,
  SampleResponse,
} from "../protocol/types/responses.ts";
import { askResending } from "../client/resend.ts";
import { fetchTokenizer } from "../client/tokenizer_of.ts";
import type { Tokenizer } from "../protocol/types/tokenizer.ts";
import {
  InvalidArgumentError,
  NotFoundError,
  UnknownActorError,
} from "../runtime/errors.ts";
import { FutureStore, type FutureStoreOptions } from "./futures.ts";
import { HttpError, notFound } from "./errors.ts";
import { GatewayMetrics } from "./metrics/gateway_metrics.ts";
import { TrainingObserver } from "./metrics/training_observer.ts";
import { type BiosPath, toBiosPath } from "../protocol/tinker/paths.ts";
import {
  capabilitiesJson,
  type FutureResult,
  getInfoJson,
  optimStepJson,
  savedJson,
  type WireJson,
} from "./tinker/render.ts";
import { RunSequence } from "./tinker/run_sequence.ts";
import {
  checkTrainerCall,
  createModelOptions,
  forwardBackwardCall,
  loadWeightsCall,
  optimStepCall,
  sampleCall,
  saveForSamplerCall,
  saveWeightsCall,
  wireTrainerError,
} from "./tinker/to_bios.ts";
import type { OpHead } from "./tinker/schemas.ts";
import type { PreparedCall } from "./tinker/from_proto.ts";

/** How long a session lives without a heartbeat (the SDK beats every 10 s). */
export const DEFAULT_SESSION_IDLE_MS = 10 * 60_000;

/** Training operations on the Tinker wire, by route. */
export type TrainingOpKind =
  | "forward"
  | "forward_backward"
  | "optim_step"
  | "save_weights"
  | "save_weights_for_sampler"
  | "load_weights";

/** Options of {@linkcode Gateway}. */
export interface GatewayOptions {
  /** Where the actors are. */
  service: ServiceClient;
  /**
   * Check ownership: false (`--insecure-no-auth`) makes one tenant of every
   * caller, which may also reach runs this gateway did not create.
   */
  tenants: boolean;
  /** How long a session lives without a heartbeat. */
  sessionIdleMs?: number;
  /** Futures' hold and keep times. */
  futures?: FutureStoreOptions;
  /** Where each run's `metrics.jsonl` goes (`<runsDir>/<run>/`); none without it. */
  runsDir?: string;
}

/** A run in the dashboard's list ({@linkcode Gateway.runsOf}). */
export interface DashboardRun {
  /** The run's id (the wire's `model_id`). */
  id: string;
  /** Its base model, once known. */
  baseModel?: string;
  /** Its last metrics.jsonl line, if it took a step since the gateway started. */
  last?: Readonly<Record<string, number>>;
}

/** A checkpoint as the checkpoint store lists it. */
export interface DashboardCheckpoint {
  /** `weights` (with optimizer state) or `sampler_weights`. */
  kind: string;
  /** Its name in the run. */
  name: string;
  /** `bios://<run>/<kind>/<name>`. */
  path: string;
  /** When it was saved (ISO 8601). */
  createdAt: string;
  /** Bytes of its data files. */
  sizeBytes: number;
}

interface Session {
  tenant: string;
  lastSeen: number;
  /** Its models, by the SDK's `model_seq_id`: the run id once created. */
  models: Map<number, Promise<string>>;
  /** Its sampling sessions' ids. */
  samplers: Set<string>;
}

interface Run {
  tenant: string;
  /** The session that made it (its ephemeral samplers belong there). */
  sessionId: string;
  baseModel?: string;
  sequence: Promise<RunSequence>;
  /** The sequence, once `sequence` has settled (to refuse a bad seq_id at once). */
  resolved?: RunSequence;
}

interface Sampler {
  tenant: string;
  baseModel: string;
  modelPath?: string;
  client: Promise<SamplingClient>;
  /** Last use, for the ad-hoc samplers of `asample` without a session. */
  lastUsed: number;
}

/**
 * Ephemeral sampler saves (`save_weights_for_sampler` without a name) a run
 * keeps on disk: the newest 8 (see `Gateway.#pruneEphemeral`).
 */
export const KEPT_EPHEMERAL_SAVES = 8;

/** The Tinker gateway's state over one Bios service. */
export class Gateway {
  /** The futures of every operation started here. */
  readonly futures: FutureStore;
  /** The Prometheus metrics `/metrics` serves. */
  readonly metrics: GatewayMetrics;
  /** Counts operations and writes runs' metrics.jsonl. */
  readonly observer: TrainingObserver;
  readonly #service: ServiceClient;
  readonly #tenants: boolean;
  readonly #idleMs: number;
  readonly #sessions = new Map<string, Session>();
  readonly #runs = new Map<string, Run>();
  /** Each run's pruning of its ephemeral saves, while one runs. */
  readonly #pruning = new Map<string, Promise<void>>();
  /** The owners of runs not made here, as their records name them. */
  readonly #owners = new Map<string, string>();
  readonly #samplers = new Map<string, Sampler>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  readonly #tokenizers = new Map<string, Promise<Tokenizer>>();

  /** A gateway over `opts.service`. */
  constructor(opts: GatewayOptions) {
    this.#service = opts.service;
    this.#tenants = opts.tenants;
    this.#idleMs = opts.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
    this.futures = new FutureStore(opts.futures);
    this.metrics = new GatewayMetrics({
      futuresPending: () => this.futures.pending,
      stats: () => this.stats(),
    });
    this.observer = new TrainingObserver(this.metrics, opts.runsDir);
    this.#sweeper = setInterval(
      () => this.#sweep(),
      Math.min(60_000, this.#idleMs),
    );
    Deno.unrefTimer(Number(this.#sweeper));
  }

  /** The service's models, as the wire's capabilities. */
  async capabilities(): Promise<WireJson> {
    const caps = await this.#service
      .getServerCapabilities() as GetServerCapabilitiesResponse;
    return capabilitiesJson(caps);
  }

  /** A new session of `tenant`; returns its id. */
  createSession(tenant: string): string {
    const id = crypto.randomUUID();
    this.#sessions.set(id, {
      tenant,
      lastSeen: Date.now(),
      models: new Map(),
      samplers: new Set(),
    });
    return id;
  }

  /** Keep session `id` alive. @throws {HttpError} 404 when it is not `tenant`'s */
  heartbeat(tenant: string, id: string): void {
    this.#session(tenant, id).lastSeen = Date.now();
  }

  #session(tenant: string, id: string): Session {
    const s = this.#sessions.get(id);
    if (!s || s.tenant !== tenant) throw notFound("session", id, "session_id");
    return s;
  }

  /**
   * `create_model`: a new LoRA run in session `sessionId`. A repeat of the
   * same `model_seq_id` (a retried submission) is the same run.
   */
  createModel(
    tenant: string,
    sessionId: string,
    modelSeqId: number,
    baseModel: unknown,
    loraConfig: unknown,
  ): string {
    const session = this.#session(tenant, sessionId);
    let run = session.models.get(modelSeqId);
    if (!run) {
      run = (async () => {
        const opts = createModelOptions(baseModel, loraConfig);
        // The run's record names its tenant: it stays theirs across a
        // restart of this gateway (see #owns).
        const created = await (await this.#service.link()).createRun(
          opts,
          this.#tenants ? tenant : undefined,
        );
        const conn = await this.#service.connection();
        const sequence = new RunSequence(
          conn.system.ref(trainerAddress(created.runId)),
          0,
        );
        this.#runs.set(created.runId, {
          tenant,
          sessionId,
          baseModel: created.baseModel,
          sequence: Promise.resolve(sequence),
          resolved: sequence,
        });
        return created.runId;
      })();
      session.models.set(modelSeqId, run);
      // A failed creation may be tried again under the same model_seq_id.
      run.catch(() => session.models.delete(modelSeqId));
    }
    return this.futures.add(
      tenant,
      run.then((modelId) => ({
        kind: "json",
        value: {
          type: "create_model",
          "model_id": modelId,
          "base_model": this.#runs.get(modelId)?.baseModel,
        },
      })),
    );
  }

  /**
   * The run `modelId` of `tenant`: one held here, or one this gateway
   * does not hold (made before it started, or by another gateway) whose
   * record names `tenant` as its owner, adopted now: its sequence starts
   * where its trainer is.
   *
   * @throws {HttpError} 404 when it is not `tenant`'s
   */
  async #run(tenant: string, modelId: string): Promise<Run> {
    const r = this.#runs.get(modelId);
    if (r) {
      if (r.tenant === tenant) return r;
      throw notFound("model", modelId);
    }
    if (!(await this.#owns(tenant, modelId))) throw notFound("model", modelId);
    const again = this.#runs.get(modelId); // adopted meanwhile
    if (again) return again;
    const adopted: Run = {
      tenant,
      sessionId: `model-${modelId}`,
      sequence: this.#service.connection().then(async (conn) => {
        const ref = conn.system.ref(trainerAddress(modelId));
        const info = await ref.ask<TrainingRunInfo>(
          { type: "get_info", runId: modelId },
          { timeoutMs: 60_000 },
        ).catch((e) => {
          throw e instanceof UnknownActorError
            ? new NotFoundError(`no model ${JSON.stringify(modelId)}`)
            : e;
        });
        adopted.baseModel = info.modelName;
        return new RunSequence(ref, info.lastSeq);
      }),
    };
    adopted.sequence.then((s) => adopted.resolved = s, () => {});
    adopted.sequence.catch(() => {
      if (this.#runs.get(modelId) === adopted) this.#runs.delete(modelId);
    });
    this.#runs.set(modelId, adopted);
    return adopted;
  }

  /** `get_info`: the run's model and LoRA rank. */
  async getInfo(tenant: string, modelId: string): Promise<WireJson> {
    const run = await this.#run(tenant, modelId);
    const seq = await run.sequence;
    const info = await askResending<TrainingRunInfo>(
      seq.trainer,
      { type: "get_info", runId: modelId },
      Promise.resolve(),
      60_000,
    );
    return {
      ...getInfoJson({
        modelId: info.modelId,
        modelData: info.modelData,
        isLora: true,
        loraRank: info.loraRank,
        modelName: info.modelName,
      }),
      // Bios's additions (the SDK ignores extra keys).
      step: info.step,
      "last_seq": info.lastSeq,
      version: info.version,
      shards: info.shards,
    };
  }

  /**
   * A training operation at the SDK's `seq_id`. The body is checked here
   * with the protocol's schema; a refused body still takes its seq (the
   * trainer records the refusal, so the next seq is not a gap) and the
   * future fails with the refusal, naming the wire's field.
   *
   * @param body the JSON wire body (ignored when `prepared` is given)
   * @param prepared the call already converted from another content type
   *   (SDK 0.25's protobuf `forward_backward`), or its refusal
   */
  async trainingOp(
    tenant: string,
    kind: TrainingOpKind,
    head: OpHead,
    body: Record<string, unknown>,
    prepared?: PreparedCall,
  ): Promise<string> {
    const run = await this.#run(tenant, head.model_id);
    const runId = head.model_id;
    const seq = head.seq_id;
    let ephemeral: number | undefined;
    let call: Record<string, unknown>;
    let refused: unknown;
    const type = TRAINER_TYPE[kind];
    try {
      let raw: Record<string, unknown>;
      if (prepared !== undefined) {
        if ("refused" in prepared) throw prepared.refused;
        raw = prepared.call;
      } else if (kind === "forward" || kind === "forward_backward") {
        raw = forwardBackwardCall(kind, body);
      } else if (kind === "optim_step") raw = optimStepCall(body);
      else if (kind === "save_weights") raw = saveWeightsCall(body);
      else if (kind === "save_weights_for_sampler") {
        const s = saveForSamplerCall(body, seq);
        raw = s.call;
        ephemeral = s.samplingSessionSeqId;
      } else {
        raw = loadWeightsCall(body);
        const from = parseCheckpointPath(raw.path);
        if (!(await this.#owns(tenant, from.runId))) {
          throw new NotFoundError(
            `no checkpoint ${JSON.stringify(body.path)}`,
          );
        }
      }
      call = checkTrainerCall(raw, runId, seq);
    } catch (e) {
      refused = e;
      // Its head alone: the trainer refuses the body and records that at seq.
      call = { type, runId, seq };
    }
    try {
      // A seq_id used by another operation, or far ahead: refused now, so
      // that it neither takes a seq nor waits.
      run.resolved?.check(seq, call);
    } catch (e) {
      throw new HttpError(409, (e as Error).message, "seq_id");
    }
    const work = run.sequence.then((s) => s.submit<unknown>(seq, call));
    const result: Promise<FutureResult> = refused !== undefined
      ? work.then(() => Promise.reject(refused), () => Promise.reject(refused))
      : work.then(
        (value) => this.#rendered(tenant, run, kind, value, ephemeral),
        (e) => Promise.reject(wireTrainerError(type, e)),
      );
    this.observer.trainingOp(runId, kind, seq, call, work, result);
    return this.futures.add(tenant, result);
  }

  #rendered(
    tenant: string,
    run: Run,
    kind: TrainingOpKind,
    value: unknown,
    ephemeral: number | undefined,
  ): FutureResult {
    switch (kind) {
      case "forward":
      case "forward_backward":
        return {
          kind: "forward_backward",
          value: value as ForwardBackwardOutput,
        };
      case "optim_step":
        return {
          kind: "json",
          value: optimStepJson(value as OptimStepResponse),
        };
      case "save_weights":
        return {
          kind: "json",
          value: savedJson(kind, value as { path: string }),
        };
      case "load_weights":
        return {
          kind: "json",
          value: savedJson(kind, value as { path: string }),
        };
      case "save_weights_for_sampler": {
        const saved = savedJson(kind, value as { path: string });
        if (ephemeral === undefined) return { kind: "json", value: saved };
        const id = `${run.sessionId}:sample:${ephemeral}`;
        if (!this.#samplers.has(id)) {
          this.#addSampler(tenant, id, run.sessionId, {
            modelPath: (value as { path: string }).path,
          }, run.baseModel ?? "");
          this.#pruneEphemeral(tenant, (value as { path: string }).path);
        }
        return {
          kind: "json",
          value: { ...saved, "sampling_session_id": id },
        };
      }
    }
  }

  /**
   * The `bios://` form of a `tinker://` path of `tenant`'s.
   *
   * @throws {HttpError} 404 for another tenant's checkpoint, as for a missing one
   */
  async #ownPath(
    tenant: string,
    path: string,
    field: string,
  ): Promise<BiosPath> {
    const p = toBiosPath(path, field);
    if (!(await this.#owns(tenant, p.runId))) {
      throw new HttpError(404, `no checkpoint ${JSON.stringify(path)}`);
    }
    return p;
  }

  /** The service (embedded node or cluster) the gateway is a client of. */
  get service(): ServiceClient {
    return this.#service;
  }

  /**
   * Whether run `runId` (and so its checkpoints) is `tenant`'s: made with
   * its key, through this gateway or (by its record) before it started
   * (any run, without tenants).
   */
  owns(tenant: string, runId: string): Promise<boolean> {
    return this.#owns(tenant, runId);
  }

  /**
   * Whether a run the cluster lists is `tenant`'s: held here as theirs, or
   * its record names them (any run, without tenants).
   */
  ownsListed(
    tenant: string,
    run: Pick<TrainingRunSummary, "runId" | "owner">,
  ): boolean {
    const held = this.#runs.get(run.runId);
    if (held) return held.tenant === tenant;
    return !this.#tenants || run.owner === tenant;
  }

  async #owns(tenant: string, runId: string): Promise<boolean> {
    if (!isRunId(runId)) return false;
    const r = this.#runs.get(runId);
    if (r) return r.tenant === tenant;
    if (!this.#tenants) return true;
    return (await this.#ownerOf(runId)) === tenant;
  }

  /**
   * The owner run `runId`'s record names (null for none, or no such run),
   * asked of the cluster once and then kept: an owner never changes.
   */
  async #ownerOf(runId: string): Promise<string | null> {
    const known = this.#owners.get(runId);
    if (known !== undefined) return known;
    const conn = await this.#service.connection();
    let owner: string | null;
    try {
      owner = (await conn.registry.ask<TrainingRunSummary>(
        { type: "get_run", runId },
        { timeoutMs: 60_000 },
      )).owner ?? null;
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
    if (owner !== null) this.#owners.set(runId, owner);
    return owner;
  }

  /** `weights_info`: what a checkpoint of `tenant`'s holds. */
  async weightsInfo(tenant: string, tinkerPath: string): Promise<WireJson> {
    const p = await this.#ownPath(tenant, tinkerPath, "tinker_path");
    const info = await this.#service.weightsInfo(p.path);
    const has = (group: readonly string[]) =>
      info.targetModules.some((m) => group.includes(m));
    return {
      "base_model": info.baseModel,
      "is_lora": true,
      "lora_rank": info.loraRank,
      "train_unembed": has(LORA_MODULE_GROUPS.trainUnembed),
      "train_mlp": has(LORA_MODULE_GROUPS.trainMlp),
      "train_attn": has(LORA_MODULE_GROUPS.trainAttn),
      // Bios's additions (the SDK ignores extra keys).
      "lora_alpha": info.loraAlpha,
      "target_modules": info.targetModules,
      kind: info.kind,
      step: info.step,
    };
  }

  /**
   * Delete the ephemeral sampler saves of the run of `newest` (a
   * `save_weights_for_sampler` without a name, as an RL loop makes each
   * step) but the newest {@linkcode KEPT_EPHEMERAL_SAVES}, once the samplers
   * made from them hold their weights: without this, a long loop fills the
   * disk. A sampler of a deleted one keeps sampling; only its restart from
   * the file (its node died) would fail. Failures are logged, not thrown.
   */
  #pruneEphemeral(tenant: string, newest: string): void {
    const { runId } = parseCheckpointPath(newest);
    // One pruning of a run at a time: each save asks for one.
    const prune = (this.#pruning.get(runId) ?? Promise.resolve()).then(
      async () => {
        const conn = await this.#service.connection();
        const listed = await conn.registry.ask<DashboardCheckpoint[]>({
          type: "list_checkpoints",
          runId,
        });
        const number = (k: DashboardCheckpoint) =>
          Number(/^ephemeral-(\d+)$/.exec(k.name)?.[1] ?? NaN);
        const old = listed
          .filter((k) => k.kind === "sampler_weights" && !isNaN(number(k)))
          .sort((a, b) => number(a) - number(b))
          .slice(0, -KEPT_EPHEMERAL_SAVES);
        for (const k of old) {
          for (const s of this.#samplers.values()) {
            if (s.tenant === tenant && s.modelPath === k.path) {
              await s.client.catch(() => {});
            }
          }
          await conn.registry.ask({ type: "delete_checkpoint", path: k.path })
            .catch((e) => {
              if (!(e instanceof NotFoundError)) throw e;
            });
        }
      },
    ).catch((e) => {
      console.error(
        `bios gateway: pruning the ephemeral saves of ${runId}: ${
          (e as Error).message
        }`,
      );
    });
    this.#pruning.set(runId, prune);
    prune.then(() => {
      if (this.#pruning.get(runId) === prune) this.#pruning.delete(runId);
    });
  }

  #addSampler(
    tenant: string,
    id: string,
    sessionId: string | undefined,
    from: { modelPath?: string; baseModel?: string; runId?: string },
    baseModel: string,
  ): Sampler {
    const runId = from.runId;
    const client = runId !== undefined
      ? this.#service.link().then((link) =>
        new TrainingClient(this.#service, link, runId, baseModel)
          .saveWeightsAndGetSamplingClient()
      )
      : this.#service.createSamplingClient(from);
    client.catch(() => {
      if (this.#samplers.get(id)?.client === client) this.#samplers.delete(id);
    });
    const s: Sampler = {
      tenant,
      baseModel: from.baseModel ?? baseModel,
      modelPath: from.modelPath,
      client,
      lastUsed: Date.now(),
    };
    client.then((c) => {
      s.baseModel = c.getBaseModel();
    }, () => {});
    this.#samplers.set(id, s);
    if (sessionId !== undefined) {
      this.#sessions.get(sessionId)?.samplers.add(id);
    }
    return s;
  }

  /**
   * `create_sampling_session`: a sampler of a checkpoint of `tenant`'s or of
   * a base model, started now; returns its id once it runs. Bios's
   * addition: with `modelId` (the body's `model_id`), a sampler of that
   * run's current weights, held in memory only (no checkpoint, no seq).
   */
  async createSamplingSession(
    tenant: string,
    sessionId: string,
    seqId: number,
    baseModel: string | undefined,
    modelPath: string | undefined,
    modelId?: string,
  ): Promise<string> {
    this.#session(tenant, sessionId);
    const id = `${sessionId}:sample:${seqId}`;
    let s = this.#samplers.get(id);
    if (!s && modelId !== undefined) {
      const run = await this.#run(tenant, modelId);
      await run.sequence;
      s = this.#addSampler(
        tenant,
        id,
        sessionId,
        { runId: modelId },
        run.baseModel ?? "",
      );
    }
    if (!s) {
      if (modelPath === undefined && baseModel === undefined) {
        throw new HttpError(
          400,
          "base_model or model_path is required",
          "base_model",
        );
      }
      const from = modelPath !== undefined
        ? {
          modelPath: (await this.#ownPath(tenant, modelPath, "model_path"))
            .path,
        }
        : { baseModel };
      s = this.#samplers.get(id) ?? // made while this one waited
        this.#addSampler(tenant, id, sessionId, from, baseModel ?? "");
    }
    const client = await s.client;
    if (
      baseModel !== undefined && modelPath !== undefined &&
      client.getBaseModel() !== baseModel
    ) {
      throw new InvalidArgumentError(
        "base_model",
        `base_model ${
          JSON.stringify(baseModel)
        } is not the model of ${modelPath} (${client.getBaseModel()})`,
      );
    }
    return id;
  }

  /**
   * Bios's `unload_sampling_session`: stop a sampling session's sampler and
   * free its memory (the Tinker wire has no such call: its sessions end).
   *
   * @throws {HttpError} 404 when it is not `tenant`'s
   */
  async unloadSamplingSession(tenant: string, id: string): Promise<void> {
    const s = this.#samplers.get(id);
    if (!s || s.tenant !== tenant) throw notFound("sampling session", id);
    this.#samplers.delete(id);
    for (const session of this.#sessions.values()) session.samplers.delete(id);
    const client = await s.client.catch(() => undefined);
    await client?.close();
  }

  /** Bios's `get_tokenizer`: a base model's tokenizer files and hints. */
  async tokenizerFiles(
    baseModel: string,
  ): Promise<
    { files: Record<string, string>; hints: Record<string, unknown> }
  > {
    return await (await this.#service.link()).tokenizer(baseModel);
  }

  /** `GET samplers/{id}`: what a sampling session samples. */
  samplerInfo(tenant: string, id: string): WireJson {
    const s = this.#samplers.get(id);
    if (!s || s.tenant !== tenant) throw notFound("sampler", id);
    return {
      "sampler_id": id,
      "base_model": s.baseModel,
      ...(s.modelPath !== undefined
        ? { "model_path": s.modelPath.replace("bios://", "tinker://") }
        : {}),
    };
  }

  /**
   * `asample`: from a sampling session, or (the older form) from a base
   * model or checkpoint directly, through a sampler kept for the next such
   * request. The body is checked in the future: a bad one fails it.
   */
  async sample(
    tenant: string,
    head: {
      "sampling_session_id"?: string | null;
      "base_model"?: string | null;
      "model_path"?: string | null;
    },
    body: Record<string, unknown>,
  ): Promise<string> {
    let s: Sampler | undefined;
    const sid = head.sampling_session_id;
    if (sid !== undefined && sid !== null) {
      s = this.#samplers.get(sid);
      if (!s || s.tenant !== tenant) {
        throw notFound("sampling session", sid, "sampling_session_id");
      }
    } else {
      const modelPath = head.model_path ?? undefined;
      const baseModel = head.base_model ?? undefined;
      if (modelPath === undefined && baseModel === undefined) {
        throw new HttpError(
          400,
          "sampling_session_id, model_path or base_model is required",
          "sampling_session_id",
        );
      }
      const from = modelPath !== undefined
        ? {
          modelPath: (await this.#ownPath(tenant, modelPath, "model_path"))
            .path,
        }
        : { baseModel };
      const key = `adhoc:${tenant}:${from.modelPath ?? ""}:${
        from.baseModel ?? ""
      }`;
      s = this.#samplers.get(key) ??
        this.#addSampler(tenant, key, undefined, from, baseModel ?? "");
    }
    const sampler = s;
    sampler.lastUsed = Date.now();
    const work = (async (): Promise<FutureResult> => {
      const req: SampleRequest = sampleCall(body);
      const client = await sampler.client;
      const value: SampleResponse = await client.sample(req);
      sampler.lastUsed = Date.now();
      return { kind: "sample", value };
    })();
    this.observer.sample(work as Promise<{ value: SampleResponse }>);
    return this.futures.add(tenant, work);
  }

  /**
   * A sampler outside any session (OpenAI's routes): of base model
   * `from.baseModel`, or of `tenant`'s checkpoint `from.modelPath` (a
   * `tinker://` path); kept for the next such request and closed after the
   * same idle time as `asample`'s ad-hoc samplers (it is one of them).
   *
   * @throws {HttpError} 404 for another tenant's checkpoint, as for a missing one
   */
  async adhocSampler(
    tenant: string,
    from: { baseModel: string } | { modelPath: string },
    field: string,
  ): Promise<SamplingClient> {
    const f = "modelPath" in from
      ? {
        modelPath: (await this.#ownPath(tenant, from.modelPath, field)).path,
      }
      : { baseModel: from.baseModel };
    const key = `adhoc:${tenant}:${f.modelPath ?? ""}:${f.baseModel ?? ""}`;
    const s = this.#samplers.get(key) ??
      this.#addSampler(tenant, key, undefined, f, f.baseModel ?? "");
    s.lastUsed = Date.now();
    return await s.client;
  }

  /** The tokenizer of base model `baseModel` (fetched once, then kept). */
  tokenizer(baseModel: string): Promise<Tokenizer> {
    let t = this.#tokenizers.get(baseModel);
    if (!t) {
      t = this.#service.connection().then((c) =>
        fetchTokenizer(c.registry, baseModel)
      );
      t.catch(() => this.#tokenizers.delete(baseModel));
      this.#tokenizers.set(baseModel, t);
    }
    return t;
  }

  #sweep(): void {
    const cutoff = Date.now() - this.#idleMs;
    for (const [id, s] of this.#sessions) {
      if (s.lastSeen >= cutoff) continue;
      this.#sessions.delete(id);
      for (const sid of s.samplers) this.#closeSampler(sid);
    }
    for (const [id, s] of this.#samplers) {
      if (id.startsWith("adhoc:") && s.lastUsed < cutoff) {
        this.#closeSampler(id);
      }
    }
  }

  #closeSampler(id: string): void {
    const s = this.#samplers.get(id);
    if (!s) return;
    this.#samplers.delete(id);
    s.client.then((c) => c.close()).catch(() => {});
  }

  /**
   * Where run `modelId` of `tenant`'s `metrics.jsonl` is (it may not exist
   * yet); undefined when this gateway writes none.
   *
   * @throws {HttpError} 404 when the run is not `tenant`'s
   */
  async metricsLogPath(
    tenant: string,
    modelId: string,
  ): Promise<string | undefined> {
    if (!(await this.#owns(tenant, modelId))) throw notFound("model", modelId);
    return this.observer.logPath(modelId);
  }

  /**
   * The runs of `tenant`, oldest first, with their base model and last
   * metrics line (the dashboard's run list): those the cluster's records
   * name as theirs (so a restart of the gateway loses none), then any held
   * here that no record lists yet.
   */
  async runsOf(tenant: string): Promise<DashboardRun[]> {
    const conn = await this.#service.connection();
    const listed = await conn.registry.ask<TrainingRunSummary[]>(
      { type: "list_runs" },
      { timeoutMs: 60_000 },
    );
    const out = new Map<string, DashboardRun>();
    for (const r of listed.toReversed()) {
      if (!this.ownsListed(tenant, r)) continue;
      out.set(r.runId, {
        id: r.runId,
        baseModel: r.baseModel,
        last: this.observer.feed.last(r.runId),
      });
    }
    for (const [id, r] of this.#runs) {
      if (r.tenant !== tenant || out.has(id)) continue;
      out.set(id, {
        id,
        baseModel: r.baseModel,
        last: this.observer.feed.last(id),
      });
    }
    return [...out.values()];
  }

  /**
   * Run `modelId`'s checkpoints, oldest first, as the checkpoint store
   * lists them (only those whose manifest verifies).
   *
   * @throws {HttpError} 404 when the run is not `tenant`'s
   */
  async checkpointsOf(
    tenant: string,
    modelId: string,
  ): Promise<DashboardCheckpoint[]> {
    if (!(await this.#owns(tenant, modelId))) throw notFound("model", modelId);
    const conn = await this.#service.connection();
    return await conn.registry.ask<DashboardCheckpoint[]>({
      type: "list_checkpoints",
      runId: modelId,
    });
  }

  /** The samplers of `tenant` held here: id, base model, checkpoint if any. */
  samplersOf(tenant: string): WireJson[] {
    const out: WireJson[] = [];
    for (const [id, s] of this.#samplers) {
      if (s.tenant === tenant) out.push(this.samplerInfo(tenant, id));
    }
    return out;
  }

  /** Sessions, runs and samplers held now (for tests and logs). */
  stats(): { sessions: number; runs: number; samplers: number } {
    return {
      sessions: this.#sessions.size,
      runs: this.#runs.size,
      samplers: this.#samplers.size,
    };
  }

  /** Stop the timers and the samplers started here (the service is the caller's). */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.observer.feed.close();
    this.futures.close();
    const closing = [...this.#samplers.values()].map((s) =>
      s.client.then((c) => c.close()).catch(() => {})
    );
    this.#samplers.clear();
    await Promise.all(closing);
  }
}

/** The trainer request type of each wire operation. */
const TRAINER_TYPE: Readonly<Record<TrainingOpKind, string>> = {
  forward: "forward",
  "forward_backward": "forward_backward",
  "optim_step": "optim_step",
  "save_weights": "save_state",
  "save_weights_for_sampler": "save_weights_for_sampler",
  "load_weights": "load_state",
};
