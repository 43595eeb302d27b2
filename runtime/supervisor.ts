/**
 * An OTP-style supervisor: an actor that starts child actors, watches them,
 * and restarts them by strategy and restart type, within a restart intensity.
 *
 * - Children start in list order and stop in reverse order.
 * - `one_for_one` restarts only the failed child; `one_for_all` stops the
 *   others (reverse order) and restarts all; `rest_for_one` does the same for
 *   the failed child and those started after it.
 * - `permanent` children always restart, `transient` only after an abnormal
 *   exit (`error`, `killed`), `temporary` never (their spec is dropped).
 * - More than `intensity` restarts within `period` ms: the supervisor stops
 *   its children and exits with {@link RestartIntensityError}, which its own
 *   supervisor sees as a child failure (escalation).
 * - A restart reuses the child's address, so refs held by others keep working.
 *
 * Management calls (`startChild`, `terminateChild`, ...) run one at a time,
 * in order with exit handling. The serialisable ones are also served as
 * messages ({@link SupervisorRequest}) for remote callers.
 *
 * @module
 */

import { z } from "zod";
import {
  type Actor,
  type ActorContext,
  describeExit,
  type ExitReason,
  isAbnormal,
} from "./actor.ts";
import type { ActorRef } from "./actor_ref.ts";
import {
  type ChildSpec,
  type ChildSpecInput,
  parseChildSpec,
  parseSupervisorFlags,
  type RestartType,
  type SupervisorFlags,
  type SupervisorFlagsInput,
} from "./child_spec.ts";
import {
  ActorStoppedError,
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  RestartIntensityError,
  UnknownActorError,
} from "./errors.ts";
import type { ActorSystem, SpawnOptions } from "./system.ts";

/** Options of {@link Supervisor}: flags, children and hooks. */
export interface SupervisorOptions extends SupervisorFlagsInput {
  /** Children, started in this order. */
  children?: ChildSpecInput[];
  /**
   * Clock for the restart window, in ms.
   *
   * @default {() => performance.now()}
   */
  now?: () => number;
  /** Called when this supervisor gives up (restart intensity reached). */
  onEscalate?: (error: RestartIntensityError) => void;
  /**
   * Receives each supervisor report.
   *
   * @default {one JSON line on stderr}
   */
  onReport?: (report: SupervisorReport) => void;
}

/** A structured report, after OTP's supervisor reports. */
export interface SupervisorReport {
  /** Address of the reporting supervisor. */
  supervisor: string;
  /** What happened. */
  errorContext:
    | "child_terminated"
    | "start_error"
    | "shutdown_error"
    | "shutdown";
  /** The exit reason or error, as a short string. */
  reason: string;
  /** The child concerned, if any. */
  offender?: {
    id: string;
    address: string;
    restart: RestartType;
    type: string;
  };
}

/** One row of {@link Supervisor.whichChildren}. */
export interface ChildInfo {
  /** Child id. */
  id: string;
  /** Child address (stable across restarts). */
  address: string;
  /** Worker or supervisor. */
  type: "worker" | "supervisor";
  /** Restart type. */
  restart: RestartType;
  /** `running`, `stopped` (spec kept, not running) or `restarting` (a restart keeps failing). */
  status: "running" | "stopped" | "restarting";
}

/** Result of {@link Supervisor.countChildren}, after OTP's `count_children`. */
export interface ChildCounts {
  /** Child specs held. */
  specs: number;
  /** Children running now. */
  active: number;
  /** Specs of type supervisor. */
  supervisors: number;
  /** Specs of type worker. */
  workers: number;
}

/** Messages a supervisor answers (for callers that only hold its ref). */
export type SupervisorRequest =
  | { op: "which_children" }
  | { op: "count_children" }
  | { op: "terminate_child"; id: string }
  | { op: "restart_child"; id: string }
  | { op: "delete_child"; id: string };

const requestSchema = z.discriminatedUnion("op", [
  z.object({ op: z.literal("which_children") }),
  z.object({ op: z.literal("count_children") }),
  z.object({ op: z.literal("terminate_child"), id: z.string() }),
  z.object({ op: z.literal("restart_child"), id: z.string() }),
  z.object({ op: z.literal("delete_child"), id: z.string() }),
]);

interface Child {
  spec: ChildSpec;
  address: string;
  status: ChildInfo["status"];
  incarnation: number; // bumped per start, so stale exit notices are ignored
  ref?: ActorRef;
}

function defaultReport(report: SupervisorReport): void {
  console.error(JSON.stringify({ label: "supervisor_report", ...report }));
}

/**
 * A supervisor actor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ActorSystem, Supervisor } from "./mod.ts";
 * await using system = new ActorSystem();
 * const sup = await Supervisor.start(system, "root", {
 *   strategy: "one_for_one",
 *   children: [{ id: "echo", start: () => ({ receive: (m: unknown) => m }) }],
 * });
 * assert.equal(await system.ref("root.echo").ask("hi"), "hi");
 * assert.deepEqual(sup.countChildren(), { specs: 1, active: 1, supervisors: 0, workers: 1 });
 * ```
 */
export class Supervisor implements Actor<SupervisorRequest, unknown> {
  /** Validated flags (defaults merged). */
  readonly flags: SupervisorFlags;
  /** Resolves with this supervisor's exit reason once it has exited. */
  readonly whenDown: Promise<ExitReason>;
  #children: Child[];
  #restarts: number[] = []; // times of recent restarts, oldest first
  #ctx: ActorContext | null = null;
  #stopping = false;
  #serial: Promise<unknown> = Promise.resolve();
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #down = Promise.withResolvers<ExitReason>();
  readonly #now: () => number;
  readonly #onEscalate?: (error: RestartIntensityError) => void;
  readonly #onReport: (report: SupervisorReport) => void;

  /**
   * Validates flags and child specs up front.
   *
   * @throws {InvalidArgumentError} for a bad flag or spec, or a repeated id
   */
  constructor(options: SupervisorOptions = {}) {
    const { children = [], now, onEscalate, onReport, ...flags } = options;
    this.flags = parseSupervisorFlags(flags);
    const specs = children.map((c, i) => parseChildSpec(c, i));
    const ids = new Set<string>();
    for (const s of specs) {
      if (ids.has(s.id)) {
        throw new InvalidArgumentError(
          "id",
          `child spec "${s.id}": id must be unique among children (duplicate_child_name)`,
        );
      }
      ids.add(s.id);
    }
    this.#children = specs.map((spec) => ({
      spec,
      address: "",
      status: "stopped",
      incarnation: 0,
    }));
    this.#now = now ?? (() => performance.now());
    this.#onEscalate = onEscalate;
    this.#onReport = onReport ?? defaultReport;
    this.whenDown = this.#down.promise;
  }

  /**
   * Spawns a supervisor at `address` and resolves once all its children run.
   *
   * @throws what a child's start threw (the supervisor is then not running)
   */
  static async start(
    system: ActorSystem,
    address: string,
    options: SupervisorOptions = {},
    spawnOptions: SpawnOptions = {},
  ): Promise<Supervisor> {
    const sup = new Supervisor(options);
    await system.spawn(address, () => sup, {
      shutdown: "infinity",
      ...spawnOptions,
    });
    return sup;
  }

  /** This supervisor's ref (once started). */
  get ref(): ActorRef {
    return this.#context().self;
  }

  /** Starts the children in list order; if one fails, stops the started ones and throws. */
  async init(ctx: ActorContext): Promise<void> {
    this.#ctx = ctx;
    const self = ctx.self.address;
    ctx.system.monitor(self, (r) => this.#down.resolve(r));
    for (const c of this.#children) {
      c.address = c.spec.address ?? `${self}.${c.spec.id}`;
    }
    await this.#enqueue(async () => {
      for (const child of this.#children) {
        try {
          await this.#start(child);
        } catch (e) {
          this.#report(
            "start_error",
            String((e as Error)?.message ?? e),
            child,
          );
          this.#stopping = true;
          await this.#stopAll();
          this.#down.resolve({ kind: "error", error: e as Error });
          throw e;
        }
      }
    });
  }

  /** Serves {@link SupervisorRequest}s. */
  async receive(msg: SupervisorRequest): Promise<unknown> {
    const r = requestSchema.safeParse(msg);
    if (!r.success) {
      throw new InvalidArgumentError(
        "op",
        'op must be one of "which_children", "count_children", "terminate_child", "restart_child", "delete_child" (with a string id where needed)',
      );
    }
    const req = r.data;
    switch (req.op) {
      case "which_children":
        return this.whichChildren();
      case "count_children":
        return this.countChildren();
      case "terminate_child":
        return await this.terminateChild(req.id);
      case "restart_child":
        return (await this.restartChild(req.id)).address;
      case "delete_child":
        return await this.deleteChild(req.id);
    }
  }

  /** Stops every child in reverse start order. */
  async terminate(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#retryTimer);
    await this.#stopAll();
  }

  /** The children in start order, with their status. */
  whichChildren(): ChildInfo[] {
    return this.#children.map((c) => ({
      id: c.spec.id,
      address: c.address,
      type: c.spec.type,
      restart: c.spec.restart,
      status: c.status,
    }));
  }

  /** Counts of specs, running children, supervisors and workers. */
  countChildren(): ChildCounts {
    const supervisors =
      this.#children.filter((c) => c.spec.type === "supervisor").length;
    return {
      specs: this.#children.length,
      active: this.#children.filter((c) => c.status === "running").length,
      supervisors,
      workers: this.#children.length - supervisors,
    };
  }

  /**
   * Adds a child at the end of the list and starts it.
   *
   * @throws {InvalidArgumentError} for a bad spec
   * @throws {ConflictError} when the id (or address) is taken
   * @throws what the child's start threw (the spec is then not kept)
   */
  startChild(input: ChildSpecInput): Promise<ActorRef> {
    const spec = parseChildSpec(input, this.#children.length);
    return this.#enqueue(async () => {
      this.#assertUp();
      if (this.#children.some((c) => c.spec.id === spec.id)) {
        throw new ConflictError(
          `child "${spec.id}" already exists (already_present)`,
        );
      }
      const child: Child = {
        spec,
        address: spec.address ?? `${this.ref.address}.${spec.id}`,
        status: "stopped",
        incarnation: 0,
      };
      this.#children.push(child);
      try {
        return await this.#start(child);
      } catch (e) {
        this.#children.splice(this.#children.indexOf(child), 1);
        throw e;
      }
    });
  }

  /**
   * Stops a child, keeping its spec (a temporary child's spec is dropped).
   *
   * @throws {NotFoundError} when no child has this id
   */
  terminateChild(id: string): Promise<void> {
    return this.#enqueue(async () => {
      this.#assertUp();
      const child = this.#find(id);
      await this.#stopChild(child);
      child.status = "stopped";
      if (child.spec.restart === "temporary") this.#remove(child);
    });
  }

  /**
   * Starts a stopped child again from its spec.
   *
   * @throws {NotFoundError} when no child has this id
   * @throws {ConflictError} when it is running or restarting
   */
  restartChild(id: string): Promise<ActorRef> {
    return this.#enqueue(() => {
      this.#assertUp();
      const child = this.#find(id);
      if (child.status !== "stopped") {
        throw new ConflictError(`child "${id}" is ${child.status}`);
      }
      return this.#start(child);
    });
  }

  /**
   * Drops a stopped child's spec.
   *
   * @throws {NotFoundError} when no child has this id
   * @throws {ConflictError} when it is running or restarting
   */
  deleteChild(id: string): Promise<void> {
    return this.#enqueue(() => {
      this.#assertUp();
      const child = this.#find(id);
      if (child.status !== "stopped") {
        throw new ConflictError(`child "${id}" is ${child.status}`);
      }
      this.#remove(child);
    });
  }

  // ---------------------------------------------------------------------------
  // internals

  #context(): ActorContext {
    if (!this.#ctx) throw new ActorStoppedError("<supervisor not started>");
    return this.#ctx;
  }

  #assertUp(): void {
    if (this.#stopping) throw new ActorStoppedError(this.ref.address);
  }

  #find(id: string): Child {
    const child = this.#children.find((c) => c.spec.id === id);
    if (!child) {
      throw new NotFoundError(
        `supervisor "${this.ref.address}" has no child "${id}"`,
      );
    }
    return child;
  }

  #remove(child: Child): void {
    const i = this.#children.indexOf(child);
    if (i >= 0) this.#children.splice(i, 1);
  }

  // Runs tasks one at a time, in order; a failing task does not block the next.
  #enqueue<T>(task: () => Promise<T> | T): Promise<T> {
    const run = this.#serial.then(task);
    this.#serial = run.catch(() => {});
    return run;
  }

  async #start(child: Child): Promise<ActorRef> {
    const ctx = this.#context();
    const incarnation = ++child.incarnation;
    const ref = await ctx.system.spawn(child.address, child.spec.start, {
      shutdown: child.spec.shutdown,
      parent: ctx.self.address,
      onExit: (reason) =>
        this.#background(() => this.#childExited(child, incarnation, reason)),
    });
    child.status = "running";
    child.ref = ref;
    if (this.#stopping) await this.#stopChild(child); // lost a race with terminate
    return ref;
  }

  async #stopChild(child: Child): Promise<void> {
    if (child.status !== "running") {
      child.status = "stopped";
      return;
    }
    child.status = "stopped"; // before stopping: its exit notice is then ignored
    child.ref = undefined;
    const reason = await this.#context().system.stop(child.address, {
      reason: { kind: "shutdown" },
      shutdown: child.spec.shutdown,
    }).catch((e) => {
      if (e instanceof UnknownActorError) {
        return { kind: "shutdown" } as ExitReason;
      }
      throw e;
    });
    if (reason.kind === "killed") {
      this.#report("shutdown_error", "killed", child);
    }
  }

  async #stopAll(): Promise<void> {
    for (const child of [...this.#children].reverse()) {
      await this.#stopChild(child);
    }
  }

  async #childExited(
    child: Child,
    incarnation: number,
    reason: ExitReason,
  ): Promise<void> {
    if (
      this.#stopping || child.incarnation !== incarnation ||
      child.status !== "running"
    ) return;
    child.status = "stopped";
    child.ref = undefined;
    if (isAbnormal(reason)) {
      this.#report("child_terminated", describeExit(reason), child);
    }
    const restart = child.spec.restart === "permanent" ||
      (child.spec.restart === "transient" && isAbnormal(reason));
    if (!restart) {
      if (child.spec.restart === "temporary") this.#remove(child);
      return;
    }
    if (this.#addRestart()) return await this.#giveUp(reason);

    // Which children go down and come back, by strategy.
    const i = this.#children.indexOf(child);
    const group = this.flags.strategy === "one_for_one"
      ? [child]
      : this.flags.strategy === "one_for_all"
      ? [...this.#children]
      : this.#children.slice(i);
    const comeBack = group.filter((c) => c === child || c.status !== "stopped");
    for (const c of [...group].reverse()) {
      if (c === child || c.status !== "running") continue;
      await this.#stopChild(c);
      // A temporary child is never restarted, even when a sibling's death stopped it.
      if (c.spec.restart === "temporary") this.#remove(c);
    }
    await this.#restartGroup(
      comeBack.filter((c) => c.spec.restart !== "temporary"),
    );
  }

  // Starts `group` in order. If a start fails, it counts as a restart; past
  // the intensity the supervisor gives up, otherwise it tries the rest again
  // on the next turn of the event loop (so it can still be shut down).
  async #restartGroup(group: Child[]): Promise<void> {
    for (const c of group) c.status = "restarting";
    for (let k = 0; k < group.length; k++) {
      const c = group[k];
      if (this.#stopping) return;
      if (c.status !== "restarting" || !this.#children.includes(c)) continue;
      try {
        await this.#start(c);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        this.#report("start_error", error.message, c);
        if (this.#addRestart()) {
          return await this.#giveUp({ kind: "error", error });
        }
        const rest = group.slice(k);
        this.#retryTimer = setTimeout(() => {
          this.#background(() =>
            this.#restartGroup(rest.filter((r) => r.status === "restarting"))
          );
        }, 0);
        return;
      }
    }
  }

  // Records a restart now; true when that makes more than `intensity` in `period`.
  #addRestart(): boolean {
    const now = this.#now();
    this.#restarts = this.#restarts.filter((t) => now - t < this.flags.period);
    this.#restarts.push(now);
    return this.#restarts.length > this.flags.intensity;
  }

  async #giveUp(last: ExitReason): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#retryTimer);
    await this.#stopAll();
    const ctx = this.#context();
    const error = new RestartIntensityError(
      ctx.self.address,
      this.flags.intensity,
      this.flags.period,
      last.kind === "error" ? { cause: last.error } : undefined,
    );
    this.#report("shutdown", "reached_max_restart_intensity");
    try {
      this.#onEscalate?.(error);
    } catch (e) {
      console.error(`onEscalate of supervisor "${ctx.self.address}" threw:`, e);
    }
    ctx.stop({ kind: "error", error });
  }

  // Queues work nobody awaits; a bug in it is logged, never left unhandled.
  #background(task: () => Promise<void>): void {
    this.#enqueue(task).catch((e) => {
      console.error(`supervisor "${this.#ctx?.self.address}" failed:`, e);
    });
  }

  #report(
    errorContext: SupervisorReport["errorContext"],
    reason: string,
    child?: Child,
  ): void {
    const report: SupervisorReport = {
      supervisor: this.#ctx?.self.address ?? "<not started>",
      errorContext,
      reason,
    };
    if (child) {
      report.offender = {
        id: child.spec.id,
        address: child.address,
        restart: child.spec.restart,
        type: child.spec.type,
      };
    }
    try {
      this.#onReport(report);
    } catch (e) {
      console.error("supervisor onReport threw:", e);
    }
  }
}
