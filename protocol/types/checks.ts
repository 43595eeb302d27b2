/**
 * Building blocks for the protocol schemas: numbers whose every failure reads
 * one hand-written message, and fast loops over long numeric arrays.
 *
 * Messages are predicates ("must be …"); {@link parseOrThrow} puts the field
 * in front and the received value behind them.
 *
 * @module
 */

import { z } from "zod";

/** Largest token id the wire carries (token ids travel as int32). */
export const MAX_TOKEN_ID = 2 ** 31 - 1;

/**
 * Issue params marking a failed type guard (`z.custom`), so that error
 * reporting ranks it with zod's own type mismatches.
 */
export const TYPE_MISMATCH: { readonly typeMismatch: true } = {
  typeMismatch: true,
};

/** A numeric array as users and the wire hand it over. */
export type NumericArray = number[] | Float32Array | Int32Array;

/**
 * A finite number accepted by `ok`. Type errors (strings, NaN, ±Infinity) and
 * range errors share `message`, so the user reads one rule.
 *
 * @example
 * ```ts
 * import { finiteNumber } from "./checks.ts";
 * const beta = finiteNumber("must be in [0, 1)", (v) => v >= 0 && v < 1);
 * beta.parse(0.9);
 * ```
 */
export function finiteNumber(
  message: string,
  ok: (v: number) => boolean = () => true,
): z.ZodNumber {
  return z.number({ error: message }).refine(ok, {
    error: message,
    abort: true,
  });
}

/** A safe integer accepted by `ok`; every failure reads `message`. */
export function safeInteger(
  message: string,
  ok: (v: number) => boolean = () => true,
): z.ZodNumber {
  return z.number({ error: message }).refine(
    (v) => Number.isSafeInteger(v) && ok(v),
    { error: message, abort: true },
  );
}

/** True for a plain array or one of the typed arrays the protocol carries. */
export function isNumericArray(v: unknown): v is NumericArray {
  return Array.isArray(v) || v instanceof Float32Array ||
    v instanceof Int32Array;
}

/** Index of the first element `ok` refuses, or -1. */
export function firstBad(
  values: ArrayLike<unknown>,
  ok: (v: number) => boolean,
): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !ok(v)) return i;
  }
  return -1;
}

/** Whether `v` is a valid token id: an integer in [0, {@link MAX_TOKEN_ID}]. */
export function isTokenId(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= MAX_TOKEN_ID;
}

/** The message every token-id check uses. */
export const TOKEN_ID_RULE =
  `must be a token id: an integer in [0, ${MAX_TOKEN_ID}]`;

/**
 * A list of token ids (`number[]` or `Int32Array`), checked in one loop rather
 * than one schema per element, since batches hold millions of tokens. The
 * first bad element is reported with its index.
 */
export const TokenIdsSchema: z.ZodType<
  number[] | Int32Array,
  number[] | Int32Array
> = z.custom<
  number[] | Int32Array
>(
  (v) => Array.isArray(v) || v instanceof Int32Array,
  {
    error: "must be an array of token ids (number[] or Int32Array)",
    params: TYPE_MISMATCH,
  },
).superRefine((v, ctx) => {
  const i = firstBad(v, isTokenId);
  if (i >= 0) {
    ctx.addIssue({
      code: "custom",
      message: TOKEN_ID_RULE,
      path: [i],
      input: v[i],
      continue: false,
    });
  }
});

/**
 * Wraps a record schema so that an own `__proto__` key (JSON.parse makes
 * them) is refused as `keyRule`, naming the key: zod's records skip that
 * key, so it would otherwise vanish without a word.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { ownKeysChecked } from "./checks.ts";
 * const s = ownKeysChecked(z.record(z.string(), z.number()), "is not allowed");
 * assert.equal(s.safeParse(JSON.parse('{"__proto__": 1}')).success, false);
 * ```
 */
export function ownKeysChecked<T extends z.ZodType>(
  record: T,
  keyRule: string,
): T {
  // Typed as the record itself: it takes and gives what the record does.
  return z.unknown().superRefine((v, ctx) => {
    if (v !== null && typeof v === "object" && Object.hasOwn(v, "__proto__")) {
      ctx.addIssue({
        code: "custom",
        message: keyRule,
        path: ["__proto__"],
        input: (v as Record<string, unknown>)["__proto__"],
        continue: false,
      });
    }
  }).pipe(record) as unknown as T;
}
