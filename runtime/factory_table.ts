/**
 * Child specs as data: a spec names a *kind* and its plain arguments, and a
 * node's factory table turns it into the {@link ChildSpecInput} a
 * {@link Supervisor} starts. Such a spec can cross the wire, so a supervisor
 * or a registry on one node can start a child on another by message; in one
 * process the same table resolves it.
 *
 * The arguments are checked once, when the spec is resolved (a bad one is
 * refused before anything starts); each (re)start builds a fresh actor from
 * the checked arguments.
 *
 * @module
 */

import type { Actor, ShutdownSpec } from "./actor.ts";
import type { ChildSpecInput, RestartType } from "./child_spec.ts";
import { InvalidArgumentError } from "./errors.ts";

/** A child spec as data: what to start and how to supervise it. */
export interface DataChildSpec {
  /** Unique among the supervisor's children. */
  id: string;
  /** A kind of the node's factory table. */
  kind: string;
  /** The kind's arguments: plain data, checked by the kind's parser. */
  args: unknown;
  /** When to restart. @default {"permanent"} */
  restart?: RestartType;
  /** Time the child gets to stop. */
  shutdown?: ShutdownSpec;
  /** Address to run at. @default {`<supervisor address>.<id>`} */
  address?: string;
}

/** How to build one kind of actor from its arguments. */
export interface Factory<A = unknown> {
  /**
   * Checks raw arguments and returns them typed.
   *
   * @throws {InvalidArgumentError} naming the faulty field
   */
  parse(args: unknown): A;
  /** Builds a fresh actor from checked arguments (called on every start). */
  build(args: A, table: FactoryTable): Actor;
  /** Whether the actor is a supervisor. @default {"worker"} */
  type?: "worker" | "supervisor";
}

/**
 * A node's factory table: kind → {@link Factory}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FactoryTable } from "./factory_table.ts";
 * const table = new FactoryTable({
 *   echo: { parse: (a) => a as { reply: string }, build: (a) => ({ receive: () => a.reply }) },
 * });
 * const spec = table.childSpec({ id: "e", kind: "echo", args: { reply: "hi" } });
 * assert.equal(spec.id, "e");
 * ```
 */
export class FactoryTable {
  // deno-lint-ignore no-explicit-any
  readonly #factories: Map<string, Factory<any>>;

  /** @param factories the table's kinds */
  // deno-lint-ignore no-explicit-any
  constructor(factories: Record<string, Factory<any>>) {
    this.#factories = new Map(Object.entries(factories));
  }

  /** The kinds this table builds. */
  get kinds(): string[] {
    return [...this.#factories.keys()];
  }

  /**
   * Resolves a data spec: checks its kind and arguments now and returns a
   * spec whose `start` builds the actor from them.
   *
   * @throws {InvalidArgumentError} for an unknown kind or bad arguments
   */
  childSpec(spec: DataChildSpec): ChildSpecInput {
    const factory = this.#factories.get(spec.kind);
    if (!factory) {
      throw new InvalidArgumentError(
        "kind",
        `child spec "${spec.id}": kind must be one of ${
          this.kinds.join(", ")
        }: got ${JSON.stringify(spec.kind)}`,
      );
    }
    const args = factory.parse(spec.args);
    return {
      id: spec.id,
      start: () => factory.build(args, this),
      type: factory.type ?? "worker",
      ...(spec.restart !== undefined ? { restart: spec.restart } : {}),
      ...(spec.shutdown !== undefined ? { shutdown: spec.shutdown } : {}),
      ...(spec.address !== undefined ? { address: spec.address } : {}),
    };
  }
}
