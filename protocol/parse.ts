/**
 * Turning a zod failure into one clear {@link InvalidArgumentError}.
 *
 * The error's `field` is the dotted path of the first problem
 * (`data[0].lossFnInputs.weights`), and its message reads
 * `<field> <rule>: got <value>`, e.g.
 * `samplingParams.topP must be in (0, 1]: got 1.5`.
 *
 * @module
 */

import type { z } from "zod";
import { InvalidArgumentError } from "../runtime/errors.ts";

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/**
 * Joins a root name and a zod path into a field name: `data[0].modelInput`.
 * An empty root gives the bare path (`"value"` when both are empty).
 */
export function fieldName(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else if (typeof p === "string" && /^[A-Za-z_$][\w$]*$/.test(p)) {
      out += out === "" ? p : `.${p}`;
    } else out += `[${JSON.stringify(String(p))}]`;
  }
  return out === "" ? "value" : out;
}

/** A short, readable rendering of a received value. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null) return "null";
  if (typeof v === "string") {
    const s = JSON.stringify(v);
    return s.length > 64 ? `${s.slice(0, 60)}…" (${v.length} chars)` : s;
  }
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "bigint") return `${v}n`;
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) {
    const n = (v as unknown as { length?: number }).length ?? v.byteLength;
    return `a ${v.constructor.name} of length ${n}`;
  }
  if (typeof v === "function") return "a function";
  return "an object";
}

const ARTICLE: Record<string, string> = {
  object: "an object",
  array: "an array",
  string: "a string",
  number: "a finite number",
  int: "an integer",
  boolean: "a boolean",
};

// The rule for issues the schemas did not word themselves.
function fallbackRule(iss: RawIssue): string {
  switch (iss.code) {
    case "invalid_type":
      return `must be ${ARTICLE[iss.expected] ?? iss.expected}`;
    case "invalid_value":
      return `must be ${iss.values.length === 1 ? "" : "one of "}${
        iss.values.map((v) => JSON.stringify(v)).join(", ")
      }`;
    case "too_small":
      return iss.origin === "array" || iss.origin === "set"
        ? `must have at least ${iss.minimum} items`
        : iss.origin === "string"
        ? `must have at least ${iss.minimum} characters`
        : `must be ${iss.inclusive ? "≥" : ">"} ${iss.minimum}`;
    case "too_big":
      return iss.origin === "array" || iss.origin === "set"
        ? `must have at most ${iss.maximum} items`
        : iss.origin === "string"
        ? `must have at most ${iss.maximum} characters`
        : `must be ${iss.inclusive ? "≤" : "<"} ${iss.maximum}`;
    case "unrecognized_keys":
      return "has unknown keys";
    case "invalid_union":
      return "matches none of the accepted forms";
    default:
      return "is invalid";
  }
}

// How far a union branch got before failing: a problem inside the value
// beats one at its root, and any rule beats a plain type mismatch.
function progress(branch: readonly Issue[]): number {
  if (branch.length === 0) return -1;
  const iss = branch[0];
  const typeMismatch = iss.code === "invalid_type" ||
    (iss.code === "custom" && iss.params?.typeMismatch === true);
  return (iss.path.length > 0 ? 2 : 0) + (typeMismatch ? 0 : 1);
}

// Descends into a union failure when one branch got furthest: its problem is
// the one the user meant to fix.
function pickIssue(iss: Issue): Issue {
  // A bad record key carries its rule one level down.
  if (iss.code === "invalid_key" && iss.issues.length > 0) {
    const inner = pickIssue(iss.issues[0]);
    return { ...inner, path: [...iss.path, ...inner.path] } as Issue;
  }
  if (iss.code !== "invalid_union" || iss.errors.length === 0) return iss;
  const scores = iss.errors.map(progress);
  const best = Math.max(...scores);
  if (best <= 0 || scores.filter((s) => s === best).length !== 1) return iss;
  const inner = pickIssue(iss.errors[scores.indexOf(best)][0]);
  return { ...inner, path: [...iss.path, ...inner.path] } as Issue;
}

/**
 * Converts a zod issue into an {@link InvalidArgumentError}, with `root`
 * prefixed to the issue's path.
 */
export function issueToError(root: string, first: Issue): InvalidArgumentError {
  const iss = pickIssue(first);
  if (iss.code === "unrecognized_keys") {
    const key = iss.keys[0];
    const field = fieldName(root, [...iss.path, key]);
    const camel = key.replace(
      /_([a-z0-9])/g,
      (_m, c: string) => c.toUpperCase(),
    );
    const hint = camel !== key ? ` (Bios names are camelCase: ${camel}?)` : "";
    return new InvalidArgumentError(
      field,
      `${field} is not a known field${hint}`,
    );
  }
  const field = fieldName(root, iss.path);
  const rule = iss.message;
  const input = (iss as { input?: unknown }).input;
  const message = input === undefined
    ? rule.startsWith("is required")
      ? `${field} ${rule}`
      : `${field} is required and ${rule}`
    : `${field} ${rule}: got ${describeValue(input)}`;
  return new InvalidArgumentError(field, message);
}

/**
 * Parses `value` with `schema` and returns the (defaulted, transformed)
 * result, or throws an {@link InvalidArgumentError} for the first problem.
 * `what` names the value and becomes the root of the error's field
 * (`parseOrThrow(SamplingParamsSchema, p, "samplingParams")` reports
 * `samplingParams.topP`); pass `""` to report bare paths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { parseOrThrow } from "./parse.ts";
 * const n = parseOrThrow(z.object({ k: z.number().default(3) }), {}, "opts");
 * assert.deepEqual(n, { k: 3 });
 * assert.throws(() => parseOrThrow(z.object({ k: z.number() }), { k: "x" }, "opts"),
 *   { name: "InvalidArgumentError", field: "opts.k" });
 * ```
 */
export function parseOrThrow<T>(
  schema: z.ZodType<T>,
  value: unknown,
  what: string,
): T {
  const r = schema.safeParse(value, {
    reportInput: true,
    error: (iss) => fallbackRule(iss),
  });
  if (r.success) return r.data;
  throw issueToError(what, r.error.issues[0]);
}
