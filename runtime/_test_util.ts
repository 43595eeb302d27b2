// Helpers shared by the runtime tests: a fake clock, a poller, and a
// scripted worker actor that logs its starts and stops.

import type { Actor, ActorContext, ExitReason } from "./actor.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { SupervisorReport } from "./supervisor.ts";

/** A clock the test moves by hand. */
export class FakeClock {
  t = 0;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** Resolves once `pred()` is true; rejects after `timeoutMs`. */
export async function until(
  pred: () => boolean,
  what = "condition",
  timeoutMs = 1000,
): Promise<void> {
  const start = performance.now();
  while (!pred()) {
    if (performance.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Never resolves: stands in for a hung handler without leaking a timer. */
export function forever(): Promise<never> {
  return new Promise<never>(() => {});
}

export type WorkerMsg =
  | "ping"
  | "crash"
  | "user_error"
  | "stop"
  | "stop_shutdown"
  | "whoami"
  | "hang";

/** Counts and logs of the workers made by {@link workerFactory}. */
export class Log {
  lines: string[] = [];
  starts = new Map<string, number>();
  exits: { name: string; reason: ExitReason }[] = [];
  startsOf(name: string): number {
    return this.starts.get(name) ?? 0;
  }
}

/** Options of a scripted worker. */
export interface WorkerOptions {
  /** `init` throws on these start numbers (1-based), or on all if `true`. */
  failInit?: (n: number) => boolean;
  /** `terminate` never finishes. */
  hangInTerminate?: boolean;
}

/**
 * Makes a factory of scripted workers named `name`. Each instance knows its
 * start number, so tests can tell an old instance from a restarted one.
 */
export function workerFactory(
  name: string,
  log: Log,
  opts: WorkerOptions = {},
): () => Actor<WorkerMsg, unknown> {
  return () => {
    const n = log.startsOf(name) + 1;
    log.starts.set(name, n);
    return {
      init(): void {
        if (opts.failInit?.(n)) throw new Error(`${name} init failed`);
        log.lines.push(`start:${name}`);
      },
      async receive(msg: WorkerMsg, ctx: ActorContext): Promise<unknown> {
        switch (msg) {
          case "ping":
            return "pong";
          case "whoami":
            return `${name}#${n}`;
          case "crash":
            throw new Error(`${name} boom`);
          case "user_error":
            throw new InvalidArgumentError("x", "x must be positive: got -1");
          case "stop":
            ctx.stop();
            return "stopping";
          case "stop_shutdown":
            ctx.stop({ kind: "shutdown" });
            return "stopping";
          case "hang":
            return await forever();
        }
      },
      async terminate(reason: ExitReason): Promise<void> {
        log.lines.push(`stop:${name}`);
        log.exits.push({ name, reason });
        if (opts.hangInTerminate) await forever();
      },
    };
  };
}

/** Collects supervisor reports instead of printing them. */
export function reports(): {
  list: SupervisorReport[];
  onReport: (r: SupervisorReport) => void;
} {
  const list: SupervisorReport[] = [];
  return { list, onReport: (r) => list.push(r) };
}
