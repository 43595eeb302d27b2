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
  ActorStoppedError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  UnknownActorError,
} from "../runtime/errors.ts";
import type { ActorSystem } from "../runtime/system.ts";
import {
  type RegistryRequest,
  RegistryRequestSchema,
} from "../protocol/registry_messages.ts";
import type { DataChildSpecMsg, NodeRole } from "../protocol/node_messages.ts";
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
import {
  CHECKPOINT_STORE,
  REGISTRY,
  samplerModelAddress,
  trainerAddress,
} from "../protocol/addresses.ts";
import type { CheckpointMsg, StoredRun } from "./checkpoint_store.ts";
import type { TrainingRunSummary } from "../protocol/types/training_runs.ts";
import type { AdapterManifest } from "./peft_adapter.ts";
import type { Membership, MemberView } from "./membership.ts";
import { placeShards } from "./run_placement.ts";
import { FINISH_OP_MS } from "./node_factories.ts";
import { samplerArgs } from "./sampler_args.ts";

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
  /**
   * The cluster's members: new runs and samplers go to the least loaded live
   * one with the role, by a `start_child` to its node actor (this node's
   * own, embedded).
   */
  membership: Membership;
}

/** Time a run's trainer gets to say its step in a listing. */
const RUN_INFO_TIMEOUT_MS = 5_000;

/** Time a node gets to start a run or a sampler (loading its model). */
const START_TIMEOUT_MS = 600_000;

export { REGISTRY };

/** The Registry actor. */
export class Registry implements Actor<unknown, unknown> {
  #store!: ActorRef<CheckpointMsg, unknown>;
  #system!: ActorSystem;
  #samplers = 0;

  /** @param opts settings and the supervisors to start children under */
  constructor(readonly opts: RegistryOptions) {}

  /** Find the checkpoint store. */
  init(ctx: ActorContext): void {
    this.#store = ctx.system.ref(CHECKPOINT_STORE);
    this.#system = ctx.system;
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
        return await this.#createRun(msg.options, msg.owner);
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
        // Whichever node hosts it stops it; the others have no such child.
        const hosts = this.opts.membership.members().filter((m) =>
          m.roles.includes("sampler")
        );
        await Promise.all(hosts.map((m) =>
          this.#system.ref(m.address).ask({
            type: "stop_child",
            parent: "samplers",
            id: msg.samplerId,
          }).catch(() => {})
        ));
        return null;
      }
      case "members":
        return this.opts.membership.members();
      case "list_checkpoints":
        return await this.#store.ask({ type: "list", runId: msg.runId });
      case "list_runs":
        return await this.#runs();
      case "get_run": {
        const [run] = await this.#runs(msg.runId);
        if (!run) throw new NotFoundError(`no training run ${msg.runId}`);
        return run;
      }
      case "delete_checkpoint":
        return await this.#store.ask({ type: "delete", path: msg.path });
      case "set_checkpoint_ttl":
        return await this.#store.ask({
          type: "set_ttl",
          path: msg.path,
          ttlSeconds: msg.ttlSeconds,
        });
      case "checkpoint_files":
        return await this.#store.ask({ type: "files", path: msg.path });
    }
  }

  /**
   * The runs the checkpoint store knows (by their records and checkpoints),
   * newest first, each with its trainer's step when it answers.
   */
  async #runs(only?: string): Promise<TrainingRunSummary[]> {
    const stored = await this.#store.ask<StoredRun[]>({
      type: "list_runs",
      ...(only !== undefined ? { runId: only } : {}),
    });
    return await Promise.all(stored.map(async (r) => {
      const info = await this.#system.ref(trainerAddress(r.runId))
        .ask<{ step: number }>({ type: "get_info", runId: r.runId }, {
          timeoutMs: RUN_INFO_TIMEOUT_MS,
        }).catch(() => null);
      return {
        runId: r.runId,
        baseModel: r.baseModel,
        lora: r.lora,
        createdAt: r.createdAt,
        owner: r.owner,
        step: info?.step ?? r.step,
        live: info !== null,
        lastCheckpoint: r.lastCheckpoint,
        lastSamplerCheckpoint: r.lastSamplerCheckpoint,
      };
    }));
  }

  async #createRun(raw: unknown, owner: string | undefined) {
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
      dataParallel: o.dataParallel,
    };
    // The run's tree goes to one node; its shards spread over the members.
    const placed = await this.#place(
      ["trainer", "shard"],
      "runs",
      (host) => ({
        id: runId,
        kind: "run",
        restart: "temporary",
        args: {
          spec: {
            ...runSpec,
            placement: placeShards(
              host,
              this.opts.membership.members(),
              ranges.length,
              o.dataParallel,
            ),
          },
          ranges,
        },
      }),
    );
    // Its record, so listings know it before it saves anything (and after
    // its trainer is gone). A store that cannot write it costs the listing
    // only, not the run.
    await this.#store.ask({
      type: "put_run",
      run: {
        runId,
        baseModel: o.baseModel,
        lora: { ...spec, targets: [...spec.targets] },
        createdAt: new Date().toISOString(),
        ...(owner !== undefined ? { owner } : {}),
      },
    }).catch((e) => {
      console.error(
        `run ${runId} is not recorded for listings: ${(e as Error).message}`,
      );
    });
    return {
      runId,
      baseModel: o.baseModel,
      lora: spec,
      shards: ranges.length,
      dataParallel: o.dataParallel,
      vocabSize: cfg.vocabSize,
      /** The node that hosts the run (its actor system's name). */
      node: placed.node,
    };
  }

  async #createSampler(msg: Extract<RegistryMsg, { type: "create_sampler" }>) {
    const samplerId = `smp-${++this.#samplers}-${
      crypto.randomUUID().slice(0, 8)
    }`;
    const args = await samplerArgs(this.#store, {
      samplerId,
      modelPath: msg.modelPath,
      baseModel: msg.baseModel,
      lora: msg.lora,
    });
    await servableModel(args.baseModel);
    // A sampler that cannot start (an adapter that does not fit the model)
    // fails this request, not the registry.
    const placed = await this.#place(["sampler"], "samplers", {
      id: samplerId,
      kind: "sampler",
      restart: "transient",
      shutdown: FINISH_OP_MS,
      args,
    }).catch((e) => {
      if (!(e instanceof InvalidArgumentError && e.field === "spec")) throw e;
      throw new InvalidArgumentError(
        msg.lora ? "lora" : "modelPath",
        `the sampler could not start: ${e.message}`,
        { cause: e },
      );
    });
    // Samplers of one model (not of a snapshot) share its group address
    // on a transport with groups: requests go there, spread over them.
    const group = this.#system.transport.join !== undefined &&
        (args.lora === undefined || args.modelPath !== undefined)
      ? await samplerModelAddress(args.baseModel, args.modelPath)
      : undefined;
    return {
      samplerId,
      address: placed.address,
      baseModel: args.baseModel,
      ...(group !== undefined ? { group } : {}),
    };
  }

  /**
   * Starts `spec` (or the spec made for the chosen member) under `parent`
   * on the least loaded live member with `roles`; a member that turns out
   * gone or draining is passed over.
   *
   * @throws {UnavailableError} when no live member has the roles
   */
  async #place(
    roles: NodeRole[],
    parent: "runs" | "samplers",
    spec: DataChildSpecMsg | ((target: MemberView) => DataChildSpecMsg),
  ): Promise<{ address: string; node: string }> {
    const membership = this.opts.membership;
    const skip = new Set<string>();
    for (;;) {
      const target = membership.place(roles, skip);
      if (!target) {
        throw new UnavailableError(
          `no live node hosts ${roles.join(" and ")}: the members are ${
            membership.members().map((m) =>
              `${m.id} (${m.roles.join(", ")}${
                m.state === "draining" ? "; draining" : ""
              })`
            ).join(", ")
          }`,
        );
      }
      membership.placed(target.id);
      try {
        return await this.#system.ref(target.address).ask<
          { address: string; node: string }
        >({
          type: "start_child",
          parent,
          spec: typeof spec === "function" ? spec(target) : spec,
        }, {
          timeoutMs: START_TIMEOUT_MS,
        });
      } catch (e) {
        const gone = e instanceof UnknownActorError ||
          e instanceof ActorStoppedError ||
          (e instanceof UnavailableError &&
            /draining|does not host/.test(e.message));
        if (!gone) throw e;
        skip.add(target.id);
      }
    }
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
