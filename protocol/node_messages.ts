/**
 * What nodes say to each other: child specs as data (a kind of the node's
 * factory table and its arguments), the requests a node's own actor serves
 * (start or stop a child under its runs or samplers supervisor, the
 * membership view), and the membership messages every node publishes
 * (a heartbeat, or that it leaves).
 *
 * @module
 */

import { z } from "zod";
import { RunIdSchema } from "./types/checkpoint_path.ts";
import { AdapterPathSchema } from "./types/adapter_path.ts";
import {
  LoraSnapshotSchema,
  ModelNameSchema,
  SamplerIdSchema,
} from "./registry_messages.ts";

/** What a node may host: a run's trainer, its parameter shards, samplers. */
export const NODE_ROLES = ["trainer", "shard", "sampler"] as const;

/** One of {@link NODE_ROLES}. */
export type NodeRole = typeof NODE_ROLES[number];

/** Schema of a node role. */
export const NodeRoleSchema = z.enum(NODE_ROLES, {
  error: `must be one of ${NODE_ROLES.join(", ")}`,
});

/** The kinds of a node's factory table. */
export const CHILD_KINDS = [
  "checkpoint_store",
  "registry",
  "supervisor",
  "param_shard",
  "run",
  "sampler",
  "lost",
  "remote_shard",
] as const;

/** Schema of an actor address token list (`samplers.smp-1`). */
const AddressSchema = z.string().regex(
  /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
  { error: "must be dot-separated tokens of [A-Za-z0-9_-]" },
).max(256);

/** Schema of a node id: one address token. */
export const NodeIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, {
  error: "must be 1 to 64 characters of [A-Za-z0-9_-]",
});

/** Schema of a child spec as data (see `runtime/factory_table.ts`). */
export const DataChildSpecSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, {
    error: "must be 1 to 64 characters of [A-Za-z0-9_-]",
  }),
  kind: z.enum(CHILD_KINDS, {
    error: `must be one of ${CHILD_KINDS.join(", ")}`,
  }),
  args: z.unknown(),
  restart: z.enum(["permanent", "transient", "temporary"]).optional(),
  shutdown: z.union([
    z.number().int().min(0),
    z.literal("brutal_kill"),
    z.literal("infinity"),
  ]).optional(),
  address: AddressSchema.optional(),
});

/** A child spec as data, validated. */
export type DataChildSpecMsg = z.output<typeof DataChildSpecSchema>;

/** Arguments of kind `supervisor`: flags and children, themselves data. */
export const SupervisorArgsSchema = z.strictObject({
  strategy: z.enum(["one_for_one", "one_for_all", "rest_for_one"]).optional(),
  intensity: z.number().int().min(0).optional(),
  period: z.number().int().positive().optional(),
  children: z.array(DataChildSpecSchema).default([]),
});

/** Arguments of kind `checkpoint_store` and `registry`: the node's own settings. */
export const NoArgsSchema = z.strictObject({});

/** Schema of a LoRA spec (rank, alpha, dropout, targets, seed). */
export const LoraSpecSchema = LoraSnapshotSchema.shape.spec;

/** Schema of a pipeline stage's layer range. */
export const StageRangeSchema = z.strictObject({
  first: z.number().int().min(0),
  last: z.number().int().min(0),
  embed: z.boolean(),
  head: z.boolean(),
}).refine((r) => r.last >= r.first, {
  error: "last must not come before first",
});

/** Arguments of kind `param_shard`. */
export const ParamShardArgsSchema = z.strictObject({
  baseModel: ModelNameSchema,
  range: StageRangeSchema,
  lora: LoraSpecSchema,
});

/**
 * Where a run's actors live, as the addresses of node actors (`node.<id>`):
 * its trainer's node and, for each pipeline replica, the node of each
 * stage's shard (`shards[replica][stage]`).
 */
export const RunPlacementSchema = z.strictObject({
  node: AddressSchema,
  shards: z.array(z.array(AddressSchema).min(1)).min(1),
});

/** Where a run's actors live. */
export type RunPlacement = z.output<typeof RunPlacementSchema>;

/**
 * Arguments of kind `run`: a run's whole tree (its shards, then its
 * trainer). Without `placement` every shard is on the run's node; with it,
 * a shard placed elsewhere is started there (under that node's `shards`).
 */
export const RunArgsSchema = z.strictObject({
  spec: z.strictObject({
    runId: RunIdSchema,
    baseModel: ModelNameSchema,
    lora: LoraSpecSchema,
    shards: z.number().int().min(1),
    microBatchTokens: z.number().int().min(1),
    deviceHandoff: z.boolean().optional(),
    /** Pipeline replicas. @default {1} */
    dataParallel: z.number().int().min(1).optional(),
    placement: RunPlacementSchema.optional(),
  }).refine(
    (s) =>
      s.placement === undefined ||
      (s.placement.shards.length === (s.dataParallel ?? 1) &&
        s.placement.shards.every((r) => r.length === s.shards)),
    {
      error: "placement must name a node per stage of every replica",
      path: ["placement"],
    },
  ),
  ranges: z.array(StageRangeSchema).min(1),
});

/**
 * Arguments of kind `remote_shard`: a run's shard placed on another node —
 * the child starts `spec` (kind `param_shard`) under that node's `shards`
 * supervisor and stops it when it stops itself.
 */
export const RemoteShardArgsSchema = z.strictObject({
  /** The other node's actor (`node.<id>`). */
  node: AddressSchema,
  spec: DataChildSpecSchema,
});

/** Arguments of kind `sampler`. */
export const SamplerArgsSchema = z.strictObject({
  samplerId: SamplerIdSchema,
  baseModel: ModelNameSchema,
  modelPath: AdapterPathSchema.optional(),
  lora: LoraSnapshotSchema.optional(),
});

/**
 * Arguments of kind `lost`: a stand-in at the address of an actor whose node
 * left the cluster, answering every request with `message`.
 */
export const LostArgsSchema = z.strictObject({
  message: z.string().min(1),
});

/**
 * Which of a node's supervisors a child goes under (`shards`: the shards of
 * runs whose trainer is on another node).
 */
export const NodeParentSchema = z.enum(["runs", "samplers", "shards"], {
  error: 'must be "runs", "samplers" or "shards"',
});

/** Schema of any request a node's own actor (`node.<id>`) handles. */
export const NodeRequestSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("start_child"),
    parent: NodeParentSchema,
    spec: DataChildSpecSchema,
  }),
  z.strictObject({
    type: z.literal("stop_child"),
    parent: NodeParentSchema,
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  }),
  z.strictObject({ type: z.literal("members") }),
], { error: 'must be one of "start_child", "stop_child", "members"' });

/** A request to a node's own actor, validated. */
export type NodeRequest = z.output<typeof NodeRequestSchema>;

/** A sampler a node hosts, as its heartbeat tells it. */
export const HostedSamplerSchema = z.strictObject({
  samplerId: SamplerIdSchema,
  address: AddressSchema,
  baseModel: ModelNameSchema,
  modelPath: AdapterPathSchema.optional(),
  /** It holds a LoRA snapshot that lives only in its node's memory. */
  snapshot: z.boolean(),
});

/** A sampler a node hosts. */
export type HostedSampler = z.output<typeof HostedSamplerSchema>;

/** Schema of a member as its heartbeat describes it. */
export const MemberSchema = z.strictObject({
  /** The node's id (its actor system's name). */
  id: NodeIdSchema,
  /** Address of the node's own actor (start_child goes there). */
  address: AddressSchema,
  roles: z.array(NodeRoleSchema),
  /** `draining` takes no new work. */
  state: z.enum(["up", "draining"]),
  /** What the node has to offer. */
  capacity: z.strictObject({
    cpus: z.number().int().min(0),
    memoryBytes: z.number().min(0),
  }),
  /** Runs and samplers it hosts now. */
  load: z.number().int().min(0),
  runs: z.array(RunIdSchema),
  samplers: z.array(HostedSamplerSchema),
  /** Its heartbeat interval, in ms. */
  beatMs: z.number().int().positive(),
});

/** A member of the cluster. */
export type Member = z.output<typeof MemberSchema>;

/** Schema of a message on the membership subject. */
export const MembershipMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("beat"), member: MemberSchema }),
  z.strictObject({ type: z.literal("leave"), member: MemberSchema }),
]);

/** A message on the membership subject. */
export type MembershipMessage = z.output<typeof MembershipMessageSchema>;
