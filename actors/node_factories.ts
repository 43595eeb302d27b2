/**
 * A node's factory table: how each kind of child spec (data: a kind and its
 * arguments, `protocol/node_messages.ts`) becomes an actor on this node. The
 * embedded node and a node process resolve every spec through it, the
 * node's own children included, and a registry on another node starts runs
 * and samplers here by sending such a spec to this node's actor.
 *
 * @module
 */
import type { z } from "zod";
import { type Factory, FactoryTable } from "../runtime/factory_table.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { UnavailableError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  LostArgsSchema,
  NoArgsSchema,
  ParamShardArgsSchema,
  RemoteShardArgsSchema,
  RunArgsSchema,
  SamplerArgsSchema,
  SupervisorArgsSchema,
} from "../protocol/node_messages.ts";
import { shardAddress, trainerAddress } from "../protocol/addresses.ts";
import type { LoraTarget } from "../model/lora.ts";
import { CheckpointStore } from "./checkpoint_store.ts";
import type { CheckpointStorage } from "./checkpoint_storage.ts";
import { ParamShard } from "./param_shard.ts";
import { type PlaceShard, RemoteShard } from "./remote_shard.ts";
import { ShardLocations } from "./shard_locations.ts";
import { Sampler } from "./sampler.ts";
import { Trainer } from "./trainer.ts";
import { RunJournal } from "./run_journal.ts";
import type { JournalBucket } from "./durable_journal.ts";
import type { Actor } from "../runtime/actor.ts";

/** What the node's own kinds are built from. */
export interface NodeFactoryDeps {
  /** The node's checkpoint storage (shared by the store's restarts). */
  storage: () => CheckpointStorage;
  /** A fresh registry of this node. */
  registry: () => Actor;
  /**
   * Time a trainer or sampler gets to finish the message in hand when it is
   * stopped (a drain). @default {60000}
   */
  finishOpMs?: number;
  /**
   * Where runs keep their journals durable (a cluster with JetStream): a
   * run whose node dies is started again on another from it. None keeps
   * them in this node's memory only.
   */
  journals?: JournalBucket;
  /**
   * Another live shard node for a remote shard whose node does not answer
   * (none: such a start fails).
   */
  placeShard?: PlaceShard;
}

/** Time a trainer or sampler gets to finish its operation on a drain, by default. */
export const FINISH_OP_MS = 60_000;

function parser<T>(schema: z.ZodType<T>): (args: unknown) => T {
  return (args) => parseOrThrow(schema, args, "args");
}

/** The factory table of a node: `checkpoint_store`, `registry`, `supervisor`, `param_shard`, `run`, `sampler`, `lost`, `remote_shard`. */
export function nodeFactories(deps: NodeFactoryDeps): FactoryTable {
  const finishOpMs = deps.finishOpMs ?? FINISH_OP_MS;
  // Where this node's runs' remote shards are now (get_info's placement).
  const locations = new ShardLocations();
  const supervisor: Factory<z.output<typeof SupervisorArgsSchema>> = {
    type: "supervisor",
    parse: parser(SupervisorArgsSchema),
    build: (a, table) =>
      new Supervisor({
        strategy: a.strategy,
        intensity: a.intensity,
        period: a.period,
        children: a.children.map((c) => table.childSpec(c)),
      }),
  };
  const run: Factory<z.output<typeof RunArgsSchema>> = {
    type: "supervisor",
    parse: parser(RunArgsSchema),
    build: (args, table) => {
      const { spec, ranges } = args;
      const lora = { ...spec.lora, targets: spec.lora.targets as LoraTarget[] };
      // Every instance of this run's trainer shares one journal: a restarted
      // trainer answers acknowledged seqs and resumes. It lives as long as
      // this tree (a run is never restarted whole), in this node's memory.
      const journal = new RunJournal();
      // The shards under a one_for_one supervisor (a crashed shard restarts
      // alone and the trainer restores and replays it), then the trainer;
      // rest_for_one, so a failing shard tree restarts the trainer too.
      return new Supervisor({
        strategy: "rest_for_one",
        // A restarted trainer resumes from the run's journal, so restarts
        // are cheap: allow as many as the shards' supervisor does.
        intensity: 20,
        period: 10_000,
        children: [
          table.childSpec({
            id: "shards",
            kind: "supervisor",
            args: {
              strategy: "one_for_one",
              intensity: 20,
              period: 10_000,
              // Replica by replica; a shard placed on another node is
              // started there by a remote_shard child.
              children: Array.from(
                { length: spec.dataParallel ?? 1 },
                (_, r) =>
                  ranges.map((range, i) => {
                    const shard = {
                      kind: "param_shard" as const,
                      address: shardAddress(spec.runId, i, r),
                      args: {
                        baseModel: spec.baseModel,
                        range,
                        lora: spec.lora,
                      },
                    };
                    const id = r === 0 ? `shard-${i}` : `shard-${i}-${r}`;
                    const at = spec.placement;
                    if (!at || at.shards[r][i] === at.node) {
                      return { id, ...shard };
                    }
                    return {
                      id,
                      kind: "remote_shard" as const,
                      args: {
                        node: at.shards[r][i],
                        spec: { id: `${spec.runId}-${i}-${r}`, ...shard },
                      },
                    };
                  }),
              ).flat(),
            },
          }),
          {
            id: "trainer",
            address: trainerAddress(spec.runId),
            shutdown: finishOpMs,
            start: () =>
              new Trainer(
                { ...spec, lora },
                journal,
                deps.journals?.run(args),
                locations,
              ),
          },
        ],
      });
    },
  };
  return new FactoryTable({
    checkpoint_store: {
      parse: parser(NoArgsSchema),
      build: () => new CheckpointStore(deps.storage()),
    },
    registry: { parse: parser(NoArgsSchema), build: () => deps.registry() },
    supervisor,
    run,
    param_shard: {
      parse: parser(ParamShardArgsSchema),
      build: (a: z.output<typeof ParamShardArgsSchema>) =>
        new ParamShard({
          ...a,
          lora: { ...a.lora, targets: a.lora.targets as LoraTarget[] },
        }),
    },
    sampler: {
      parse: parser(SamplerArgsSchema),
      build: (a: z.output<typeof SamplerArgsSchema>) =>
        new Sampler({
          samplerId: a.samplerId,
          baseModel: a.baseModel,
          ...(a.modelPath !== undefined ? { modelPath: a.modelPath } : {}),
          ...(a.lora
            ? {
              lora: {
                spec: {
                  ...a.lora.spec,
                  targets: a.lora.spec.targets as LoraTarget[],
                },
                params: a.lora.params,
              },
            }
            : {}),
        }),
    },
    remote_shard: {
      parse: parser(RemoteShardArgsSchema),
      build: (a: z.output<typeof RemoteShardArgsSchema>) =>
        new RemoteShard(a, deps.placeShard, locations),
    },
    lost: {
      parse: parser(LostArgsSchema),
      build: (a: z.output<typeof LostArgsSchema>): Actor => ({
        receive: () => {
          throw new UnavailableError(a.message);
        },
      }),
    },
  });
}
