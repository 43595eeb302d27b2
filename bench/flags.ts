/**
 * A small command-line reader for the benchmark's workers: `--name value`
 * pairs and bare `--switch`es.
 *
 * @module
 */

/** Thrown for a flag that is missing or malformed, naming it. */
export class FlagError extends Error {
  /** @param message what was wrong, naming the flag */
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/** Parsed flags with typed getters. */
export class Flags {
  readonly #values = new Map<string, string>();

  /**
   * @param args e.g. `["--backend", "native", "--quick"]`
   * @example
   * ```ts
   * import { Flags } from "./flags.ts";
   * const f = new Flags(["--sizes", "512,1024", "--quick"]);
   * f.ints("sizes"); // [512, 1024]
   * f.has("quick"); // true
   * ```
   */
  constructor(args: readonly string[]) {
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (!a.startsWith("--")) {
        throw new FlagError(`expected a --flag: got ${JSON.stringify(a)}`);
      }
      const eq = a.indexOf("=");
      if (eq > 0) {
        this.#values.set(a.slice(2, eq), a.slice(eq + 1));
      } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
        this.#values.set(a.slice(2), args[++i]);
      } else {
        this.#values.set(a.slice(2), "");
      }
    }
  }

  /** Whether `--name` was given. */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** The string value of `--name`, or `fallback`. */
  str(name: string, fallback?: string): string {
    const v = this.#values.get(name) ?? fallback;
    if (v === undefined) throw new FlagError(`--${name} is required`);
    return v;
  }

  /** A positive integer `--name`, or `fallback`. */
  int(name: string, fallback?: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) {
      if (fallback === undefined) throw new FlagError(`--${name} is required`);
      return fallback;
    }
    return positiveInt(name, raw);
  }

  /** A comma-separated list of positive integers `--name`, or `fallback`. */
  ints(name: string, fallback?: number[]): number[] {
    const raw = this.#values.get(name);
    if (raw === undefined) {
      if (fallback === undefined) throw new FlagError(`--${name} is required`);
      return fallback;
    }
    return raw.split(",").map((s) => positiveInt(name, s));
  }

  /** A finite non-negative number `--name`, or `fallback`. */
  num(name: string, fallback: number): number {
    const raw = this.#values.get(name);
    if (raw === undefined) return fallback;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0) {
      throw new FlagError(
        `--${name} must be a finite number ≥ 0: got ${JSON.stringify(raw)}`,
      );
    }
    return v;
  }
}

function positiveInt(name: string, raw: string): number {
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new FlagError(
      `--${name} must be a positive integer: got ${JSON.stringify(raw)}`,
    );
  }
  return v;
}
