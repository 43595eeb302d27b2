/**
 * A node's own actor, at `node.<id>`: it starts children from data specs
 * (through the node's factory table) under the node's runs or samplers
 * supervisor on request, so a registry anywhere places work here; it
 * answers with the membership view; and when another member is dropped it
 * takes over that member's work: a stand-in at each lost run's trainer
 * address that answers with a clear error (the run's journal was in that
 * node's memory), and each of its samplers started again on a live sampler
 * node (or, for one that held a LoRA snapshot only that node had, a
 * stand-in that says so).
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import type { ActorRef } from "../runtime/actor_ref.ts";
import type { FactoryTable } from "../runtime/factory_table.ts";
import type { Supervisor } from "../runtime/supervisor.ts";
import {
  ActorStoppedError,
  BiosError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  UnknownActorError,
} from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type DataChildSpecMsg,
  type HostedSampler,
  type Member,
  type NodeRequest,
  NodeRequestSchema,
  type NodeRole,
  SamplerArgsSchema,
} from "../protocol/node_messages.ts";
import { CHECKPOINT_STORE, trainerAddress } from "../protocol/addresses.ts";
import type { DownReason, Membership } from "./membership.ts";
import { FINISH_OP_MS } from "./node_factories.ts";
import { samplerArgs } from "./sampler_args.ts";
import type { JournalBucket } from "./durable_journal.ts";

/** The address of node `id`'s own actor. */
export function nodeAddress(id: string): string {
  return `node.${id}`;
}

/**
 * The address of the actor that starts and stops shards on the node whose
 * actor is at `node` (for runs whose trainer lives elsewhere). It is not the
 * node actor itself: a node actor starting a run waits for that run's
 * remote shards to start on other nodes, and two nodes doing so for each
 * other at once would each wait on the other's busy mailbox.
 */
export function shardHostAddress(node: string): string {
  return `${node}.shards`;
}

/**
 * How long after a dropped member's last beat (plus one interval, when it
 * died) its addresses are taken over: past two probes of the transport
 * (one a second), so every request still held by the dead node has already
 * failed and no stand-in answers a probe meant for it.
 */
export const TAKEOVER_GRACE_MS = 2_500;

/** The supervisors a node's work goes under (set as they start). */
export interface NodeSupervisors {
  /** Runs (one tree each). */
  runs?: Supervisor;
  /** Samplers. */
  samplers?: Supervisor;
  /** Parameter shards of runs whose trainer is on another node. */
  shards?: Supervisor;
  /** Stand-ins for the actors of members that left. */
  lost?: Supervisor;
}

/** Settings of {@link NodeActor}. */
export interface NodeActorOptions {
  /** This node's id. */
  id: string;
  /** The roles it hosts. */
  roles: readonly NodeRole[];
  /** The node's factory table. */
  table: FactoryTable;
  /** Its supervisors. */
  supervisors: NodeSupervisors;
  /**
   * The runs' durable journals (a cluster with JetStream): a lost run that
   * has one is started again here instead of getting a stand-in.
   */
  journals?: JournalBucket;
}

/** A node's own actor (see the module). */
export class NodeActor implements Actor<unknown, unknown> {
  /** Set once the node drains: it takes no new work. */
  draining = false;
  /** The node's membership (set by the node before this actor starts). */
  membership?: Membership;
  readonly #samplers = new Map<string, HostedSampler>();
  #ctx?: ActorContext;

  /** @param opts id, roles, table and supervisors */
  constructor(readonly opts: NodeActorOptions) {}

  /** Keeps its context (for asks of other nodes) and starts the heartbeat. */
  init(ctx: ActorContext): void {
    this.#ctx = ctx;
    this.membership?.start();
  }

  /** Stops the heartbeat (a drain has said it leaves before). */
  terminate(): void {
    this.membership?.stop();
  }

  /** Handles one request, parsed by the protocol's schema. */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(NodeRequestSchema, raw, "");
    switch (msg.type) {
      case "start_child":
        return await this.#startChild(msg);
      case "stop_child":
        return await this.#stopChild(msg.parent, msg.id);
      case "members":
        return this.membership?.members() ?? [];
    }
  }

  /**
   * The actor at {@linkcode shardHostAddress}: `start_child` and
   * `stop_child` of this node's `shards` only, answered apart from the node
   * actor's own mailbox (a shard's start waits on nothing remote).
   */
  shardHost(): Actor<unknown, unknown> {
    return {
      receive: async (raw: unknown) => {
        const msg = parseOrThrow(NodeRequestSchema, raw, "");
        if (msg.type === "start_child" && msg.parent === "shards") {
          return await this.#startChild(msg);
        }
        if (msg.type === "stop_child" && msg.parent === "shards") {
          return await this.#stopChild("shards", msg.id);
        }
        throw new InvalidArgumentError(
          "type",
          "a node's shard host starts and stops shards only",
        );
      },
    };
  }

  /** This node as its heartbeat describes it. */
  describe(beatMs: number): Member {
    const live = (s?: Supervisor) =>
      (s?.whichChildren() ?? []).filter((c) => c.status !== "stopped").map((
        c,
      ) => c.id);
    const runs = live(this.opts.supervisors.runs);
    const samplerIds = new Set(live(this.opts.supervisors.samplers));
    for (const id of this.#samplers.keys()) {
      if (!samplerIds.has(id)) this.#samplers.delete(id);
    }
    const samplers = [...this.#samplers.values()];
    let memoryBytes = 0;
    try {
      memoryBytes = Deno.systemMemoryInfo().total;
    } catch { /* not permitted: unknown */ }
    return {
      id: this.opts.id,
      address: nodeAddress(this.opts.id),
      roles: [...this.opts.roles],
      state: this.draining ? "draining" : "up",
      capacity: { cpus: navigator.hardwareConcurrency ?? 0, memoryBytes },
      load: runs.length + samplers.length,
      runs,
      samplers,
      beatMs,
    };
  }

  async #startChild(
    msg: Extract<NodeRequest, { type: "start_child" }>,
  ): Promise<{ address: string; node: string }> {
    if (this.draining) {
      throw new UnavailableError(
        `node ${this.opts.id} is draining: it takes no new work`,
      );
    }
    const roles: NodeRole[] = msg.parent === "samplers"
      ? ["sampler"]
      : msg.parent === "shards"
      ? ["shard"]
      : ["trainer", "shard"];
    if (!roles.every((r) => this.opts.roles.includes(r))) {
      throw new UnavailableError(
        `node ${this.opts.id} does not host ${msg.parent} (its roles: ${
          this.opts.roles.join(", ")
        })`,
      );
    }
    const sup = this.opts.supervisors[msg.parent];
    if (!sup) throw new UnavailableError(`node ${this.opts.id} is starting`);
    const spec = this.opts.table.childSpec(msg.spec);
    let ref: ActorRef;
    try {
      ref = await sup.startChild(spec);
    } catch (e) {
      if (e instanceof BiosError) throw e;
      throw new InvalidArgumentError(
        "spec",
        `${msg.spec.kind} ${msg.spec.id} could not start on node ${this.opts.id}: ${
          (e as Error)?.message ?? e
        }`,
        { cause: e },
      );
    }
    if (msg.parent === "samplers") this.#hostSampler(msg.spec, ref.address);
    return { address: ref.address, node: this.opts.id };
  }

  #hostSampler(spec: DataChildSpecMsg, address: string): void {
    const a = SamplerArgsSchema.parse(spec.args);
    this.#samplers.set(spec.id, {
      samplerId: a.samplerId,
      address,
      baseModel: a.baseModel,
      ...(a.modelPath !== undefined ? { modelPath: a.modelPath } : {}),
      // A sampler of a checkpoint can be loaded again anywhere; a snapshot
      // handed over inline lives only here.
      snapshot: a.lora !== undefined && a.modelPath === undefined,
    });
  }

  async #stopChild(
    parent: "runs" | "samplers" | "shards",
    id: string,
  ): Promise<boolean> {
    const sup = this.opts.supervisors[parent];
    try {
      await sup?.terminateChild(id);
      await sup?.deleteChild(id).catch(() => {});
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
    this.#samplers.delete(id);
    return true;
  }

  /**
   * Takes over the work of `member`, which left the view for `reason`: at
   * once when it left, else once {@link TAKEOVER_GRACE_MS} has passed since
   * it died.
   */
  memberDown(member: Member, reason: DownReason, lastSeen: number): void {
    const wait = reason === "left"
      ? 0
      : Math.max(0, lastSeen + member.beatMs + TAKEOVER_GRACE_MS - Date.now());
    setTimeout(() => {
      this.#takeOver(member, reason).catch((e) =>
        console.error(
          `node ${this.opts.id}: taking over from ${member.id} failed: ${
            (e as Error)?.message ?? e
          }`,
        )
      );
    }, wait);
  }

  /**
   * A member joined the view (again, after a partition): stand-ins for its
   * runs and samplers go, since it answers for them itself.
   */
  memberUp(member: Member): void {
    const lost = this.opts.supervisors.lost;
    if (!lost) return;
    const ids = [...member.runs, ...member.samplers.map((s) => s.samplerId)];
    for (const id of ids) {
      lost.terminateChild(id).then(() => lost.deleteChild(id)).catch(() => {});
    }
  }

  async #takeOver(member: Member, reason: DownReason): Promise<void> {
    if (this.draining || !this.membership) return;
    // Back in the view meanwhile (it was cut off, not dead): nothing to do.
    if (this.membership.member(member.id)) return;
    const why = reason === "left"
      ? `node ${member.id} left the cluster (drained)`
      : `node ${member.id} stopped answering (no heartbeat for ${this.membership.missedBeats} beats)`;
    console.error(
      JSON.stringify({
        label: "member_down",
        node: this.opts.id,
        member: member.id,
        reason,
        runs: member.runs.length,
        samplers: member.samplers.length,
      }),
    );
    // A run with a durable journal starts again on one node (the lowest id
    // alive that hosts runs). For the others every live node stands in (a
    // queue group: any answers), so the answer outlives any one of them.
    const runLeader =
      this.membership.members().filter((m) =>
        m.state === "up" && m.roles.includes("trainer") &&
        m.roles.includes("shard")
      ).map((m) => m.id).sort()[0];
    for (const runId of member.runs) {
      if (await this.#served(trainerAddress(runId))) continue;
      try {
        if (await this.#resumeRun(runId, member, runLeader === this.opts.id)) {
          continue;
        }
      } catch (e) {
        await this.#standIn(
          runId,
          trainerAddress(runId),
          `run ${runId} is lost: ${why}, and it could not be started again on node ${this.opts.id} from its journal: ${
            (e as Error)?.message ?? e
          }`,
        );
        continue;
      }
      await this.#standIn(
        runId,
        trainerAddress(runId),
        `run ${runId} is lost: ${why}, and the run's journal (its exactly-once record and last commit point) lived in that node's memory, so it cannot resume elsewhere; start a new run from its last saved checkpoint (createTrainingClientFromState)`,
      );
    }
    // One node (the lowest id alive) starts the samplers again.
    const leader = this.membership.members().map((m) => m.id).sort()[0];
    if (leader !== this.opts.id) return;
    for (const s of member.samplers) {
      if (await this.#served(s.address)) continue;
      if (s.snapshot) {
        await this.#standIn(
          s.samplerId,
          s.address,
          `sampler ${s.samplerId} is lost: ${why}, and it held a LoRA snapshot that lived only in that node's memory; create the sampling client again (saveWeightsAndGetSamplingClient)`,
        );
        continue;
      }
      try {
        await this.#restartSampler(s);
      } catch (e) {
        await this.#standIn(
          s.samplerId,
          s.address,
          `sampler ${s.samplerId} is lost: ${why}, and it could not be started on another node: ${
            (e as Error)?.message ?? e
          }`,
        );
      }
    }
  }

  /**
   * Whether anything still serves `address`: the NATS server answers "no
   * responders" at once for an address nobody subscribes to (a dead node's
   * connection is gone), while a node that is alive but busy (its event
   * loop held by a long step, so it missed its beats) still holds its
   * subscriptions, and its actor must not get a stand-in beside it.
   */
  async #served(address: string): Promise<boolean> {
    try {
      await this.#ctx!.system.ref(address).ask(
        { type: "liveness_check" },
        { timeoutMs: 1_500 },
      );
      return true;
    } catch (e) {
      return !(e instanceof UnknownActorError ||
        e instanceof ActorStoppedError);
    }
  }

  /**
   * Whether run `runId`, lost with `member`, has a durable journal; if so
   * and `leader`, start its tree here: its trainer resumes from the journal,
   * its shards go where they were when that node is alive, else here.
   */
  async #resumeRun(
    runId: string,
    member: Member,
    leader: boolean,
  ): Promise<boolean> {
    const head = await this.opts.journals?.head(runId);
    if (!head) return false;
    if (!leader) return true;
    const me = nodeAddress(this.opts.id);
    const live = new Set(
      this.membership!.members().filter((m) =>
        m.id !== member.id && m.state === "up" && m.roles.includes("shard")
      ).map((m) => m.address),
    );
    const was = head.args.spec.placement;
    const placement = was && {
      node: me,
      shards: was.shards.map((r) => r.map((a) => live.has(a) ? a : me)),
    };
    const started = performance.now();
    // Shards of the run that its old node placed here come under the run's
    // own tree now: the old ones go first (their addresses are reused).
    for (const [r, row] of (was?.shards ?? []).entries()) {
      for (const [i, a] of row.entries()) {
        if (a === me) await this.#stopChild("shards", `${runId}-${i}-${r}`);
      }
    }
    await this.#startChild({
      type: "start_child",
      parent: "runs",
      spec: {
        id: runId,
        kind: "run",
        restart: "temporary",
        args: { ...head.args, spec: { ...head.args.spec, placement } },
      },
    });
    console.error(JSON.stringify({
      label: "run_resumed",
      node: this.opts.id,
      run: runId,
      from: member.id,
      epoch: head.epoch + 1,
      step: head.step,
      ms: Math.round(performance.now() - started),
    }));
    return true;
  }

  async #restartSampler(s: HostedSampler): Promise<void> {
    const ctx = this.#ctx!;
    const target = this.membership!.place(["sampler"]);
    if (!target) throw new UnavailableError("no live node hosts samplers");
    const args = await samplerArgs(ctx.system.ref(CHECKPOINT_STORE), {
      samplerId: s.samplerId,
      baseModel: s.baseModel,
      modelPath: s.modelPath,
    });
    this.membership!.placed(target.id);
    await ctx.system.ref(target.address).ask({
      type: "start_child",
      parent: "samplers",
      spec: {
        id: s.samplerId,
        kind: "sampler",
        args,
        restart: "transient",
        shutdown: FINISH_OP_MS,
        address: s.address,
      },
    }, { timeoutMs: 600_000 });
  }

  async #standIn(id: string, address: string, message: string): Promise<void> {
    const lost = this.opts.supervisors.lost;
    if (!lost) return;
    await lost.startChild(this.opts.table.childSpec({
      id,
      kind: "lost",
      address,
      restart: "permanent",
      args: { message },
    })).catch((e) => {
      if (!(e instanceof ConflictError)) throw e;
    });
  }
}
