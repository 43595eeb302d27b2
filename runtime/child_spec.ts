/**
 * Child specs and supervisor flags, after OTP's `supervisor`: plain objects,
 * checked up front with zod, defaults merged in.
 *
 * @module
 */

import { z } from "zod";
import type { Actor, ShutdownSpec } from "./actor.ts";
import { InvalidArgumentError } from "./errors.ts";
import { validateAddress } from "./system.ts";

/** When a child is restarted: always, after abnormal exits only, or never. */
export type RestartType = "permanent" | "transient" | "temporary";

/** Which children restart when one fails. */
export type Strategy = "one_for_one" | "one_for_all" | "rest_for_one";

/** A child spec as written by the user; defaults fill the rest. */
export interface ChildSpecInput {
  /** Unique among the supervisor's children; a token of `[A-Za-z0-9_-]`. */
  id: string;
  /** Makes a fresh actor instance (called on every (re)start). */
  start: () => Actor;
  /** When to restart. @default {"permanent"} */
  restart?: RestartType;
  /** Time the child gets to stop. @default {5000} for a worker, `"infinity"` for a supervisor */
  shutdown?: ShutdownSpec;
  /** Worker or supervisor. @default {"worker"} */
  type?: "worker" | "supervisor";
  /** Address to run at. @default {`<supervisor address>.<id>`} */
  address?: string;
}

/** A validated child spec with every default filled in (except address). */
export interface ChildSpec {
  /** Unique id among siblings. */
  id: string;
  /** Fresh actor factory. */
  start: () => Actor;
  /** Restart type. */
  restart: RestartType;
  /** Time the child gets to stop. */
  shutdown: ShutdownSpec;
  /** Worker or supervisor. */
  type: "worker" | "supervisor";
  /** Explicit address, if given. */
  address?: string;
}

/** Supervisor flags as written by the user. */
export interface SupervisorFlagsInput {
  /** Which children restart when one fails. @default {"one_for_one"} */
  strategy?: Strategy;
  /** Max restarts within `period` before the supervisor gives up. @default {1} */
  intensity?: number;
  /** Window for `intensity`, in ms. @default {5000} */
  period?: number;
}

/** Validated supervisor flags. */
export interface SupervisorFlags {
  /** Restart strategy. */
  strategy: Strategy;
  /** Max restarts within `period`. */
  intensity: number;
  /** Window in ms. */
  period: number;
}

const isShutdown = (v: unknown): v is ShutdownSpec =>
  v === "brutal_kill" || v === "infinity" ||
  (typeof v === "number" && Number.isInteger(v) && v >= 0);

const childSchema = z.object({
  id: z.string({ error: "id must be a string" }).regex(
    /^[A-Za-z0-9_-]{1,64}$/,
    "id must be 1 to 64 characters of [A-Za-z0-9_-]",
  ),
  start: z.custom<() => Actor>((v) => typeof v === "function", {
    error: "start must be a function returning an Actor",
  }),
  restart: z.enum(["permanent", "transient", "temporary"], {
    error:
      'restart must be one of "permanent", "transient", "temporary" (invalid_restart_type)',
  }).default("permanent"),
  shutdown: z.custom<ShutdownSpec>(isShutdown, {
    error:
      'shutdown must be an integer >= 0 (ms), "brutal_kill" or "infinity" (invalid_shutdown)',
  }).optional(),
  type: z.enum(["worker", "supervisor"], {
    error: 'type must be "worker" or "supervisor" (invalid_child_type)',
  }).default("worker"),
  address: z.string({ error: "address must be a string" }).optional(),
});

const flagsSchema = z.object({
  strategy: z.enum(["one_for_one", "one_for_all", "rest_for_one"], {
    error:
      'strategy must be one of "one_for_one", "one_for_all", "rest_for_one"',
  }).default("one_for_one"),
  intensity: z.number({ error: "intensity must be a number" }).int(
    "intensity must be an integer >= 0",
  ).min(0, "intensity must be an integer >= 0").default(1),
  period: z.number({ error: "period must be a number" }).int(
    "period must be an integer > 0 (ms)",
  ).positive("period must be an integer > 0 (ms)").default(5000),
});

function toError(
  where: string,
  issue: z.core.$ZodIssue & { input?: unknown },
): InvalidArgumentError {
  const field = issue.path.map(String).join(".") || "spec";
  if (issue.input === undefined) {
    return new InvalidArgumentError(
      field,
      `${where}: missing ${field} (missing_${field})`,
    );
  }
  let got: string;
  try {
    got = typeof issue.input === "function"
      ? "a function"
      : JSON.stringify(issue.input) ?? String(issue.input);
  } catch {
    got = String(issue.input);
  }
  return new InvalidArgumentError(
    field,
    `${where}: ${issue.message}: got ${got}`,
  );
}

/**
 * Checks a child spec and merges the OTP defaults.
 *
 * @param input the spec as written
 * @param index its position, for messages
 * @throws {InvalidArgumentError} naming the field, e.g. `missing id`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseChildSpec } from "./child_spec.ts";
 * const spec = parseChildSpec({ id: "w", start: () => ({ receive: () => 1 }) });
 * assert.equal(spec.restart, "permanent");
 * assert.equal(spec.shutdown, 5000);
 * assert.equal(spec.type, "worker");
 * ```
 */
export function parseChildSpec(input: unknown, index = 0): ChildSpec {
  if (input === null || typeof input !== "object") {
    throw new InvalidArgumentError(
      "spec",
      `child spec at index ${index} must be an object: got ${
        String(input)
      } (invalid_child_spec)`,
    );
  }
  const id = (input as { id?: unknown }).id;
  const where = typeof id === "string"
    ? `child spec "${id}"`
    : `child spec at index ${index}`;
  const r = childSchema.safeParse(input, { reportInput: true });
  if (!r.success) throw toError(where, r.error.issues[0]);
  const d = r.data;
  if (d.address !== undefined) validateAddress(d.address);
  return {
    id: d.id,
    start: d.start,
    restart: d.restart,
    shutdown: d.shutdown ?? (d.type === "supervisor" ? "infinity" : 5000),
    type: d.type,
    ...(d.address !== undefined ? { address: d.address } : {}),
  };
}

/**
 * Checks supervisor flags and merges the OTP defaults
 * (`one_for_one`, intensity 1, period 5000 ms).
 *
 * @throws {InvalidArgumentError} naming the field and its limit
 */
export function parseSupervisorFlags(
  input: SupervisorFlagsInput = {},
): SupervisorFlags {
  const r = flagsSchema.safeParse(input, { reportInput: true });
  if (!r.success) throw toError("supervisor flags", r.error.issues[0]);
  return r.data;
}
