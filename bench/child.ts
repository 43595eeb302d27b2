/**
 * Runs one benchmark worker as a child process and reads its answer: the last
 * line of its stdout, a JSON object.
 *
 * @module
 */

/** A worker process to run. */
export interface ChildSpec {
  /** Program, e.g. `Deno.execPath()` or `/usr/bin/python3`. */
  cmd: string;
  /** Its arguments. */
  args: string[];
  /** Variables to set on top of this process's environment. */
  env?: Record<string, string>;
  /** Variables to remove from the child's environment. */
  unsetEnv?: readonly string[];
  /** Working directory. */
  cwd?: string;
  /** Kill the child after this many milliseconds. */
  timeoutMs: number;
}

/** What a worker answered, or why there is no answer. */
export type ChildResult =
  | { ok: true; json: Record<string, unknown>; seconds: number }
  | { ok: false; error: string; seconds: number };

/** Thrown for a worker's stdout whose last line is not a JSON object. */
export class WorkerOutputError extends Error {
  /** @param message what was wrong */
  constructor(message: string) {
    super(message);
    this.name = "WorkerOutputError";
  }
}

/**
 * The JSON object on the last non-empty line of `stdout`.
 *
 * @example
 * ```ts
 * import { lastJsonLine } from "./child.ts";
 * lastJsonLine('warming up\n{"gflops": 12}\n'); // { gflops: 12 }
 * ```
 */
export function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  const last = lines.at(-1);
  if (last === undefined) {
    throw new WorkerOutputError("the worker printed nothing on stdout");
  }
  let v: unknown;
  try {
    v = JSON.parse(last);
  } catch {
    throw new WorkerOutputError(
      `the worker's last stdout line is not JSON: ${last.slice(0, 200)}`,
    );
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new WorkerOutputError(
      `the worker's last stdout line is not a JSON object: ${
        last.slice(0, 200)
      }`,
    );
  }
  return v as Record<string, unknown>;
}

/** The environment a child gets: ours, less `unset`, plus `set`. */
export function childEnv(
  base: Record<string, string>,
  set: Record<string, string> = {},
  unset: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (!unset.includes(k)) out[k] = v;
  return { ...out, ...set };
}

/** Run the worker to completion (or its timeout) and parse its answer. */
export async function runChild(spec: ChildSpec): Promise<ChildResult> {
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spec.cmd, {
      args: spec.args,
      cwd: spec.cwd,
      env: childEnv(Deno.env.toObject(), spec.env, spec.unsetEnv),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    return {
      ok: false,
      error: `could not start ${spec.cmd}: ${(e as Error).message}`,
      seconds: seconds(),
    };
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, spec.timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (timedOut) {
    return {
      ok: false,
      error: `timed out after ${spec.timeoutMs / 1000} s`,
      seconds: seconds(),
    };
  }
  if (!out.success) {
    const tail = stderr.trim().split("\n").filter((l) =>
      !/XDG_RUNTIME_DIR/.test(l)
    ).slice(-3).join(" | ");
    return {
      ok: false,
      error: `exit code ${out.code}: ${tail.slice(0, 400)}`,
      seconds: seconds(),
    };
  }
  try {
    return { ok: true, json: lastJsonLine(stdout), seconds: seconds() };
  } catch (e) {
    return { ok: false, error: (e as Error).message, seconds: seconds() };
  }
}
