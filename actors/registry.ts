/**
 * Registry: a node's front desk. It lists the models, creates training runs
 * (a supervisor per run, holding the run's shards and its trainer) and
 * samplers, and answers questions about checkpoints.
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import {
  BiosError,
  InvalidArgumentError,
  UnavailableError,
} from "../runtime/errors.ts";
import {
  type RegistryRequest,
  RegistryRequestSchema,
} from "../protocol/registry_messages.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  CreateLoraTrainingClientOptionsSchema,
  resolveTargetModules,
} from "../protocol/types/lora_config.ts";
import { type CatalogEntry, listModels } from "../model/catalog.ts";
import {
  adaptedModules,
  type LoraSpec,
  type LoraTarget,
} from "../model/lora.ts";
import { splitLayers } from "../model/stage_weights.ts";
import { loadBaseModel } from "./base_models.ts";
import { sharedBackend } from "./compute.ts";
import { ParamShard } from "./param_shard.ts";
import { Sampler, type SamplerSpec } from "./sampler.ts";
import { Trainer } from "./trainer.ts";
import {
  CHECKPOINT_STORE,
  REGISTRY,
  shardAddress,
  trainerAddress,
} from "../protocol/addresses.ts";
import { RunJournal } from "./run_journal.ts";
import type { CheckpointMsg } from "./checkpoint_store.ts";
import type { AdapterManifest } from "./peft_adapter.ts";
import type { WireTensors } from "./wire_tensors.ts";

/** Messages the registry handles (see `protocol/registry_messages.ts`). */
export type RegistryMsg = RegistryRequest;

/** Settings of a node's registry. */
export interface RegistryOptions {
  /** Pipeline stages per run. @default {2} */
  shardsPerRun?: number;
  /** Largest padded micro-batch in tokens. @default {4096} */
  microBatchTokens?: number;
  /**
   * Pass activations and commit points between a run's actors as device
   * handles (they share this process's backend); false copies them through
   * host memory, as between nodes. @default {true}
   */
  deviceHandoff?: boolean;
  /** The supervisors new runs and samplers go under (set by the node). */
  supervisors: { runs?: Supervisor; samplers?: Supervisor };
}

export { REGISTRY };

/** The Registry actor. */
export class Registry implements Actor<unknown, unknown> {
  #store!: ActorRef<CheckpointMsg, unknown>;
  #node = "";
  #samplers = 0;

  /** @param opts settings and the supervisors to start children under */
  constructor(readonly opts: RegistryOptions) {}

  /** Find the checkpoint store. */
  init(ctx: ActorContext): void {
    this.#store = ctx.system.ref(CHECKPOINT_STORE);
    this.#node = ctx.system.name;
  }

  /** Handle one message, parsed here by the protocol's schema. */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(RegistryRequestSchema, raw, "");
    switch (msg.type) {
      case "capabilities": {
        const { backend, reason } = await sharedBackend();
        const models = catalog();
        const unsupported = models.filter((m) => m.problem !== undefined);
        return {
          supportedModels: models.filter((m) => m.problem === undefined).map((
            m,
          ) => ({
            modelName: m.name,
            maxContextLength: m.maxContextLength,
          })),
          ...(unsupported.length > 0
            ? {
              unsupportedModels: unsupported.map((m) => ({
                modelName: m.name,
                reason: m.problem!,
              })),
            }
            : {}),
          backend: backend.name,
          device: backend.device,
          backendReason: reason,
        };
      }
      case "create_run":
        return await this.#createRun(msg.options);
      case "create_sampler":
        return await this.#createSampler(msg);
      case "tokenizer": {
        const base = await servableModel(msg.baseModel);
        return {
          files: base.tokenizer.toFiles(),
          hints: {
            name: msg.baseModel,
            bosTokenId: base.config.bosTokenId,
            eosTokenId: base.config.eosTokenIds[0],
          },
        };
      }
      case "weights_info": {
        const m = await this.#store.ask({
          type: "info",
          path: msg.path,
          baseModel: msg.baseModel,
        }) as AdapterManifest;
        const t = m.lora.targets;
        return {
          baseModel: m.baseModel,
          isLora: true,
          loraRank: m.lora.rank,
          loraAlpha: m.lora.alpha,
          targetModules: t,
          trainAttn: t.some((x) => x.endsWith("_proj") && x.length === 6),
          trainMlp: t.some((x) =>
            ["gate_proj", "up_proj", "down_proj"].includes(x)
          ),
          trainUnembed: t.includes("lm_head"),
          kind: m.kind,
          step: m.step,
        };
      }
      case "stop_sampler": {
        const samplers = this.opts.supervisors.samplers;
        await samplers?.terminateChild(msg.samplerId).catch(() => {});
        await samplers?.deleteChild(msg.samplerId).catch(() => {});
        return null;
      }
      case "list_checkpoints":
        return await this.#store.ask({ type: "list", runId: msg.runId });
    }
  }

  async #createRun(raw: unknown) {
    const o = parseOrThrow(CreateLoraTrainingClientOptionsSchema, raw, "");
    const base = await servableModel(o.baseModel);
    // On a model whose head is its embedding (tied), an adapter on lm_head
    // cannot be merged without changing the embedding too (PEFT folds it
    // into the shared matrix): by default such models leave lm_head alone.
    // Asking for it (trainUnembed or targetModules) still adapts it.
    const asked = raw as Record<string, unknown>;
    const headByDefault = !base.config.tieWordEmbeddings ||
      Object.hasOwn(asked, "trainUnembed") ||
      Object.hasOwn(asked, "targetModules");
    const targets = resolveTargetModules(
      headByDefault ? o : { ...o, trainUnembed: false },
    ) as LoraTarget[];
    const spec: LoraSpec = {
      rank: o.rank,
      alpha: o.alpha,
      dropout: o.dropout,
      targets,
      seed: o.seed ?? Math.floor(Math.random() * 2 ** 31),
    };
    const cfg = base.config;
    // Rank cannot exceed the narrowest side of any adapted matrix.
    const narrowest = Math.min(
      ...adaptedModules(cfg, spec, { first: 0, last: 1, head: true }).map((m) =>
        Math.min(...m.shape)
      ),
    );
    if (o.rank > narrowest) {
      throw new InvalidArgumentError(
        "rank",
        `rank must be an integer in [1, ${narrowest}] for ${o.baseModel} (the narrowest adapted matrix): got ${o.rank}`,
      );
    }
    const runId = `run-${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
    const ranges = splitLayers(cfg.numLayers, this.opts.shardsPerRun ?? 2);
    const runSpec = {
      runId,
      baseModel: o.baseModel,
      lora: spec,
      shards: ranges.length,
      microBatchTokens: this.opts.microBatchTokens ?? 4096,
      deviceHandoff: this.opts.deviceHandoff ?? true,
    };
    const runs = this.opts.supervisors.runs;
    if (!runs) throw new Error("the node has no runs supervisor");
    const journal = new RunJournal();
    // A run's tree: its shards under a one_for_one supervisor (a crashed
    // shard restarts alone and the trainer restores and replays it), then the
    // trainer; rest_for_one, so a failing shard tree restarts the trainer too.
    await runs.startChild({
      id: runId,
      type: "supervisor",
      restart: "temporary",
      start: () =>
        new Supervisor({
          strategy: "rest_for_one",
          // A restarted trainer resumes from the run's journal, so restarts
          // are cheap: allow as many as the shards' supervisor does.
          intensity: 20,
          period: 10_000,
          children: [
            {
              id: "shards",
              type: "supervisor",
              start: () =>
                new Supervisor({
                  strategy: "one_for_one",
                  intensity: 20,
                  period: 10_000,
                  children: ranges.map((range, i) => ({
                    id: `shard-${i}`,
                    address: shardAddress(runId, i),
                    start: () =>
                      new ParamShard({
                        baseModel: o.baseModel,
                        range,
                        lora: spec,
                      }),
                  })),
                }),
            },
            {
              id: "trainer",
              address: trainerAddress(runId),
              // Every instance of this run's trainer shares one journal: a
              // restarted trainer answers acknowledged seqs and resumes.
              start: () => new Trainer(runSpec, journal),
            },
          ],
        }),
    });
    return {
      runId,
      baseModel: o.baseModel,
      lora: spec,
      shards: ranges.length,
      vocabSize: cfg.vocabSize,
      /** The node that hosts the run (its actor system's name). */
      node: this.#node,
    };
  }

  async #createSampler(msg: Extract<RegistryMsg, { type: "create_sampler" }>) {
    let spec: SamplerSpec;
    const samplerId = `smp-${++this.#samplers}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    if (msg.modelPath !== undefined) {
      const ck = await this.#store.ask({
        type: "load",
        path: msg.modelPath,
        optimizer: false,
        forTraining: false,
        baseModel: msg.baseModel,
      }) as {
        manifest: AdapterManifest;
        params: WireTensors;
      };
      const m = ck.manifest;
      spec = {
        samplerId,
        baseModel: m.baseModel,
        modelPath: msg.modelPath,
        lora: {
          spec: {
            rank: m.lora.rank,
            alpha: m.lora.alpha,
            dropout: 0,
            targets: m.lora.targets as LoraTarget[],
            seed: m.lora.seed,
          },
          params: ck.params,
        },
      };
    } else {
      spec = {
        samplerId,
        baseModel: msg.baseModel!,
        lora: msg.lora && {
          spec: { ...msg.lora.spec, targets: msg.lora.spec.targets },
          params: msg.lora.params,
        },
      };
    }
    await servableModel(spec.baseModel);
    const samplers = this.opts.supervisors.samplers;
    if (!samplers) throw new Error("the node has no samplers supervisor");
    // A sampler that cannot start (an adapter that does not fit the model)
    // fails this request, not the registry.
    const ref = await samplers.startChild({
      id: samplerId,
      restart: "transient",
      start: () => new Sampler(spec),
    }).catch((e) => {
      if (e instanceof BiosError) throw e;
      throw new InvalidArgumentError(
        msg.lora ? "lora" : "modelPath",
        `the sampler could not start: ${(e as Error).message}`,
      );
    });
    return { samplerId, address: ref.address, baseModel: spec.baseModel };
  }
}

/**
 * The base model `name`, or an {@link InvalidArgumentError} on `baseModel`
 * saying why it cannot be served: an unknown name (with the known ones), or
 * a folder Bios cannot read (an unsupported architecture, a damaged file).
 * A model that fails to load fails this request only.
 */
async function servableModel(name: string) {
  try {
    return await loadBaseModel(name);
  } catch (e) {
    const models = catalog();
    const entry = models.find((m) => m.name === name);
    if (!entry) {
      throw new InvalidArgumentError(
        "baseModel",
        `baseModel ${JSON.stringify(name)} is not a known model; known: ${
          models.filter((m) => m.problem === undefined).map((m) => m.name)
            .join(", ")
        }`,
      );
    }
    throw new InvalidArgumentError(
      "baseModel",
      `baseModel ${JSON.stringify(name)} cannot be served: ${
        entry.problem ?? (e as Error).message
      }`,
      { cause: e },
    );
  }
}

/**
 * The catalog's entries; a malformed catalog file is the operator's problem,
 * told to the caller as {@link UnavailableError}, not a crash.
 */
function catalog(): CatalogEntry[] {
  try {
    return listModels();
  } catch (e) {
    throw new UnavailableError(
      `the node's model catalog cannot be read: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
