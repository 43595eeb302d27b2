/**
 * `ActorSystem`: the actors of one node (process). It spawns actors at
 * addresses, hands out refs, watches exits and shuts everything down in
 * reverse start order.
 *
 * @module
 */

import type { Actor, ExitReason, ShutdownSpec } from "./actor.ts";
import { ActorRef, type RefHost } from "./actor_ref.ts";
import { ActorCell } from "./_actor_cell.ts";
import {
  ConflictError,
  InvalidArgumentError,
  UnknownActorError,
} from "./errors.ts";
import { LocalTransport } from "./local_transport.ts";
import type { Transport } from "./transport.ts";

/** Options of {@link ActorSystem}. */
export interface ActorSystemOptions {
  /**
   * The transport messages go through. When omitted the system makes (and
   * on shutdown closes) its own in-process transport.
   */
  transport?: Transport;
  /**
   * Name of this node, for logs.
   *
   * @default {"bios"}
   */
  name?: string;
}

/** Options of {@link ActorSystem.spawn}. */
export interface SpawnOptions {
  /** Called once with the exit reason when the started actor exits. */
  onExit?: (reason: ExitReason) => void;
  /**
   * Time the actor gets to stop when stopped without an explicit shutdown.
   *
   * @default {5000}
   */
  shutdown?: ShutdownSpec;
  /**
   * Address of the owning actor (its supervisor). When the owner exits, any
   * actor it still owns is killed, so an abandoned supervisor leaves no orphans.
   */
  parent?: string;
}

/** Options of {@link ActorSystem.stop}. */
export interface StopOptions {
  /**
   * Exit reason given to `terminate` and to exit watchers.
   *
   * @default {{ kind: "shutdown" }}
   */
  reason?: ExitReason;
  /** Overrides the shutdown the actor was spawned with. */
  shutdown?: ShutdownSpec;
}

/** Default time an actor gets to stop: 5000 ms, OTP's worker default. */
export const DEFAULT_SHUTDOWN_MS = 5000;

// Address tokens map onto NATS subject tokens: no spaces, `*`, `>` or empties.
const ADDRESS_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const MAX_ADDRESS_LENGTH = 256;
const MAX_TOMBSTONES = 10_000;

/**
 * Checks an actor address: dot-separated tokens of `[A-Za-z0-9_-]`, at most
 * 256 characters.
 *
 * @throws {InvalidArgumentError} naming `address` and the rule
 */
export function validateAddress(address: string): void {
  if (
    typeof address !== "string" || address.length > MAX_ADDRESS_LENGTH ||
    !ADDRESS_RE.test(address)
  ) {
    throw new InvalidArgumentError(
      "address",
      `address must be dot-separated tokens of [A-Za-z0-9_-], at most ${MAX_ADDRESS_LENGTH} characters: got ${
        JSON.stringify(address)
      }`,
    );
  }
}

interface Entry {
  cell: ActorCell;
  parent?: string;
}

/**
 * The actors of one node.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ActorSystem } from "./system.ts";
 * await using system = new ActorSystem();
 * const echo = await system.spawn("echo", () => ({ receive: (m: unknown) => m }));
 * assert.equal(await echo.ask("hi"), "hi");
 * await system.shutdown();
 * assert.deepEqual(system.liveActors(), []);
 * ```
 */
export class ActorSystem implements RefHost, AsyncDisposable {
  /** Name of this node. */
  readonly name: string;
  /** The transport every message of this system goes through. */
  readonly transport: Transport;
  readonly #ownsTransport: boolean;
  readonly #entries = new Map<string, Entry>(); // in start order
  readonly #tombstones = new Set<string>();
  #closing = false;

  /**
   * Makes an empty system.
   *
   * @param options transport and name
   */
  constructor(options: ActorSystemOptions = {}) {
    this.name = options.name ?? "bios";
    this.#ownsTransport = options.transport === undefined;
    this.transport = options.transport ?? new LocalTransport();
  }

  /** True once `shutdown` has begun. */
  get isShuttingDown(): boolean {
    return this.#closing;
  }

  /**
   * Starts an actor at `address`: registers it, runs `init`, then opens its
   * mailbox. Resolves once `init` has finished.
   *
   * @throws {InvalidArgumentError} for a malformed address
   * @throws {ConflictError} when the address is taken or the system is shutting down
   * @throws what the factory or `init` threw (the actor is then not running)
   */
  async spawn<M = unknown, R = unknown>(
    address: string,
    factory: () => Actor<M, R>,
    options: SpawnOptions = {},
  ): Promise<ActorRef<M, R>> {
    validateAddress(address);
    if (this.#closing) {
      throw new ConflictError(
        `cannot spawn "${address}": actor system "${this.name}" is shutting down`,
      );
    }
    if (this.#entries.has(address)) {
      throw new ConflictError(`address "${address}" is already taken`);
    }
    const actor = factory() as Actor;
    const ref = new ActorRef<M, R>(address, this);
    const cell = new ActorCell({
      address,
      actor,
      ref: ref as ActorRef,
      system: this,
      transport: this.transport,
      shutdown: options.shutdown ?? DEFAULT_SHUTDOWN_MS,
    });
    this.#entries.set(address, { cell, parent: options.parent });
    this.#tombstones.delete(address);
    cell.onExit(() => this.#onExit(address, cell));
    if (options.onExit) cell.onExit(options.onExit);
    try {
      await cell.start();
    } catch (e) {
      if (this.#entries.get(address)?.cell === cell) {
        this.#entries.delete(address);
      }
      throw e;
    }
    // On a cluster transport, the actor is reachable from every node once
    // spawn resolves.
    await this.transport.flush?.();
    return ref;
  }

  /**
   * A reference to whatever runs at `address` (here or, with a remote
   * transport, elsewhere). Nothing needs to run there yet.
   *
   * @throws {InvalidArgumentError} for a malformed address
   */
  ref<M = unknown, R = unknown>(address: string): ActorRef<M, R> {
    validateAddress(address);
    return new ActorRef<M, R>(address, this);
  }

  /**
   * Stops the actor at `address` and resolves with its final exit reason
   * (`killed` when it outlasted its shutdown).
   *
   * @throws {UnknownActorError} when no actor of this system is there
   */
  stop(address: string, options: StopOptions = {}): Promise<ExitReason> {
    const entry = this.#entries.get(address);
    if (!entry) return Promise.reject(new UnknownActorError(address));
    return entry.cell.stop(
      options.reason ?? { kind: "shutdown" },
      options.shutdown ?? entry.cell.shutdown,
    );
  }

  /**
   * Calls `fn` once when the actor at `address` exits. Returns a function
   * that cancels the watch.
   *
   * @throws {UnknownActorError} when no actor of this system is there
   */
  monitor(address: string, fn: (reason: ExitReason) => void): () => void {
    const entry = this.#entries.get(address);
    if (!entry) throw new UnknownActorError(address);
    return entry.cell.onExit(fn);
  }

  /** Resolves with the exit reason of the actor at `address`. */
  whenExited(address: string): Promise<ExitReason> {
    const entry = this.#entries.get(address);
    if (!entry) return Promise.reject(new UnknownActorError(address));
    return entry.cell.exited;
  }

  /** Addresses of the actors of this system that have not exited, in start order. */
  liveActors(): string[] {
    return [...this.#entries.keys()];
  }

  /** True when this system stopped an actor at `address` and none runs there now. */
  wasStopped(address: string): boolean {
    const entry = this.#entries.get(address);
    if (entry) return entry.cell.state !== "running";
    return this.#tombstones.has(address);
  }

  /**
   * Stops every actor: top-level ones (no live owner) in reverse start order,
   * each taking its subtree down, then any left, and closes the transport if
   * this system made it. Idempotent.
   */
  async shutdown(): Promise<void> {
    this.#closing = true;
    const topLevel = () =>
      [...this.#entries].filter(([, e]) =>
        e.parent === undefined || !this.#entries.has(e.parent)
      ).map(([a]) => a);
    for (const address of topLevel().reverse()) {
      await this.stop(address).catch(() => {});
    }
    for (const address of this.liveActors().reverse()) {
      await this.stop(address).catch(() => {});
    }
    if (this.#ownsTransport) await this.transport.close();
  }

  /** Same as {@link ActorSystem.shutdown}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  #onExit(address: string, cell: ActorCell): void {
    if (this.#entries.get(address)?.cell !== cell) return;
    this.#entries.delete(address);
    this.#tombstones.add(address);
    if (this.#tombstones.size > MAX_TOMBSTONES) {
      const oldest = this.#tombstones.values().next().value;
      if (oldest !== undefined) this.#tombstones.delete(oldest);
    }
    // Orphans of an owner that exited without stopping them are killed.
    for (const e of [...this.#entries.values()].reverse()) {
      if (e.parent === address) {
        void e.cell.stop({ kind: "killed" }, "brutal_kill");
      }
    }
  }
}
