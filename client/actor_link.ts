/**
 * The link over the actors themselves (client/link.ts): the embedded node
 * in this process, or a cluster's nodes over NATS. Each call is one ask of
 * the registry, a run's trainer or a sampler.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import { ActorStoppedError, UnknownActorError } from "../runtime/errors.ts";
import { sampleStreamAddress, trainerAddress } from "../protocol/addresses.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type SampleProgress,
  SampleProgressSchema,
} from "../protocol/sample_progress.ts";
import type { ActorSystem } from "../runtime/system.ts";
import type { LoraSnapshot } from "../protocol/registry_messages.ts";
import type { CreateLoraTrainingClientOptionsInput } from "../protocol/types/lora_config.ts";
import type { SampleRequest } from "../protocol/messages.ts";
import type {
  GetServerCapabilitiesResponse,
  SampleResponse,
} from "../protocol/types/responses.ts";
import type { Connection } from "./connection.ts";
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
import { askResending } from "./resend.ts";
import { ActorRest } from "./actor_rest.ts";

/** Time one training operation (or a sampler's start) may take. */
const OP_TIMEOUT_MS = 3_600_000;

/** Time a sampler's start may take. */
const START_TIMEOUT_MS = 600_000;

/**
 * A sampler actor, owned through the registry that started it. Its requests
 * go to its model's group (`group`: every sampler of that base model and
 * checkpoint, on a cluster) when it has one, else to itself; closing stops
 * only this one.
 */
class ActorSampler implements SamplerLink {
  constructor(
    readonly system: ActorSystem,
    readonly ref: ActorRef,
    readonly info: SamplerInfo,
    readonly registry: ActorRef,
    readonly group?: ActorRef,
  ) {}

  /**
   * With `onTokens`, a listener at a `stream.<id>` address of this
   * process's takes the sampler's progress until the reply comes.
   */
  async sample(
    req: SampleRequest,
    onTokens?: (progress: SampleProgress) => void,
  ): Promise<SampleResponse> {
    if (onTokens === undefined) return await this.#ask<SampleResponse>(req);
    const address = sampleStreamAddress(crypto.randomUUID());
    await this.system.spawn(address, () => ({
      receive(raw: unknown): void {
        onTokens(parseOrThrow(SampleProgressSchema, raw, ""));
      },
    }));
    try {
      return await this.#ask<SampleResponse>({ ...req, streamTo: address });
    } finally {
      // A listener a malformed message stopped is gone already.
      await this.system.stop(address).catch(() => {});
    }
  }

  computeLogprobs(req: ComputeLogprobsRequest): Promise<(number | null)[]> {
    return this.#ask<(number | null)[]>(req);
  }

  /**
   * Asks the group (or the sampler itself). A group member that went away
   * with the request, or stopped before taking it, is passed over once: the
   * request goes to the group again, where another member gives the same
   * answer (a sample is a function of the model and its seed).
   */
  async #ask<T>(req: unknown): Promise<T> {
    if (!this.group) {
      return await this.ref.ask<T>(req, { timeoutMs: OP_TIMEOUT_MS });
    }
    try {
      return await this.group.ask<T>(req, { timeoutMs: OP_TIMEOUT_MS });
    } catch (e) {
      if (!(e instanceof ActorStoppedError || e instanceof UnknownActorError)) {
        throw e;
      }
      try {
        return await this.group.ask<T>(req, { timeoutMs: OP_TIMEOUT_MS });
      } catch (again) {
        if (
          !(again instanceof ActorStoppedError ||
            again instanceof UnknownActorError)
        ) {
          throw again;
        }
        // No sampler of the model is left: say which one this client had.
        throw new ActorStoppedError(this.ref.address, { cause: again });
      }
    }
  }

  async stop(): Promise<void> {
    await this.registry.ask({
      type: "stop_sampler",
      samplerId: this.info.samplerId,
    }).catch((e) => {
      // A node that is gone took its samplers with it.
      if (e instanceof ActorStoppedError || e instanceof UnknownActorError) {
        return;
      }
      throw e;
    });
  }

  release(): void {
    try {
      this.registry.tell({
        type: "stop_sampler",
        samplerId: this.info.samplerId,
      });
    } catch {
      // the node is gone, and its samplers with it
    }
  }
}

/** A run's trainer. */
class ActorRun implements RunLink {
  readonly trainer: ActorRef;

  constructor(readonly link: ActorLink, readonly runId: string) {
    this.trainer = link.conn.system.ref(trainerAddress(runId));
  }

  submit<T>(req: TrainerOp, before: Promise<unknown>): Promise<T> {
    return askResending<T>(this.trainer, req, before, OP_TIMEOUT_MS);
  }

  getInfo(): Promise<TrainingRunInfo> {
    return askResending<TrainingRunInfo>(
      this.trainer,
      { type: "get_info", runId: this.runId },
      Promise.resolve(),
      OP_TIMEOUT_MS,
    );
  }

  async snapshotSampler(): Promise<SamplerLink> {
    const snap = await this.trainer.ask<
      {
        baseModel: string;
        lora: LoraSnapshot["spec"];
        params: LoraSnapshot["params"];
        version: number;
      }
    >({ type: "snapshot", runId: this.runId }, { timeoutMs: OP_TIMEOUT_MS });
    return await this.link.startSampler({
      baseModel: snap.baseModel,
      lora: { spec: snap.lora, params: snap.params },
    });
  }
}

/**
 * The actors over a {@linkcode Connection}.
 *
 * @example
 * ```ts ignore
 * const link = new ActorLink(await connectEmbedded());
 * const caps = await link.capabilities();
 * await link.close();
 * ```
 */
export class ActorLink implements Link {
  /**
   * A link over an open connection.
   *
   * @param conn the connection (closed with the link)
   */
  constructor(readonly conn: Connection) {}

  capabilities(): Promise<
    GetServerCapabilitiesResponse & { backendReason?: string }
  > {
    return this.conn.registry.ask({ type: "capabilities" });
  }

  createRun(
    options: CreateLoraTrainingClientOptionsInput,
    owner?: string,
  ): Promise<{ runId: string; baseModel: string }> {
    return this.conn.registry.ask({
      type: "create_run",
      options,
      ...(owner !== undefined ? { owner } : {}),
    }, { timeoutMs: START_TIMEOUT_MS });
  }

  run(runId: string): RunLink {
    return new ActorRun(this, runId);
  }

  rest(): RestLink {
    return new ActorRest(this.conn.registry);
  }

  createSampler(
    from: { modelPath?: string; baseModel?: string },
  ): Promise<SamplerLink> {
    return this.startSampler(from);
  }

  /** Ask the registry for a sampler (of a path, a base model or a snapshot). */
  async startSampler(msg: Record<string, unknown>): Promise<SamplerLink> {
    const r = await this.conn.registry.ask<
      { samplerId: string; address: string; baseModel: string; group?: string }
    >({ type: "create_sampler", ...msg }, { timeoutMs: START_TIMEOUT_MS });
    const modelPath = typeof msg.modelPath === "string"
      ? msg.modelPath
      : undefined;
    return new ActorSampler(
      this.conn.system,
      this.conn.system.ref(r.address),
      {
        samplerId: r.samplerId,
        baseModel: r.baseModel,
        ...(modelPath !== undefined ? { modelPath } : {}),
      },
      this.conn.registry,
      r.group !== undefined ? this.conn.system.ref(r.group) : undefined,
    );
  }

  weightsInfo(path: string, baseModel?: string): Promise<WeightsInfo> {
    return this.conn.registry.ask({ type: "weights_info", path, baseModel });
  }

  tokenizer(
    baseModel: string,
  ): Promise<
    { files: Record<string, string>; hints: Record<string, unknown> }
  > {
    return this.conn.registry.ask({ type: "tokenizer", baseModel });
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}
