/**
 * Shared pieces of the crash-recovery tests on real processes: node
 * processes with roles, waiting for the membership view, one pipelined
 * training script with a hook for faults, progress times after a fault,
 * and the shards' final state.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";
import { SAMPLE_BATCH } from "./_dp_run.ts";
import { ensureTinyModels, TINY } from "./_helpers.ts";
import { shardAddress } from "../protocol/addresses.ts";
import type { ShardState } from "../protocol/shard_messages.ts";
import type { Connection } from "../client/connection.ts";
import type { Member } from "../protocol/node_messages.ts";

/** The run of every recovery test: the tiny model, LoRA dropout on. */
export const RECOVERY_RUN = {
  baseModel: TINY,
  rank: 4,
  seed: 7,
  dropout: 0.1,
};

/** Heartbeat of the test nodes (ms); a node is dropped after 3 missed. */
export const BEAT_MS = 100;

/** Starts node `name` with `roles` on `url`, checkpoints in `dir`. */
export function startRoleNode(
  url: string,
  name: string,
  roles: string,
  dir: string,
  catalog: string,
): Promise<NodeProcess> {
  return startNodeProcess(url, [
    "--checkpoint-dir",
    dir,
    "--name",
    name,
    "--roles",
    roles,
    "--heartbeat-ms",
    String(BEAT_MS),
    "--missed-beats",
    "3",
  ], { BIOS_MODELS: catalog });
}

/** Waits until node `at` sees every member of `ids` (15 s at most). */
export async function waitForMembers(
  conn: Connection,
  at: string,
  ids: readonly string[],
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const view = await conn.system.ref(`node.${at}`).ask<Member[]>({
      type: "members",
    }).catch(() => [] as Member[]);
    if (ids.every((id) => view.some((m) => m.id === id))) return;
    if (Date.now() > deadline) {
      throw new Error(`node ${at} never saw ${ids.join(", ")}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Times from each fault to the run's next finished operation: call
 * `fault()` at a fault, `progress()` when an operation finishes.
 */
export class ProgressClock {
  #since?: number;
  /** Milliseconds from each fault to the next progress. */
  readonly times: number[] = [];

  /** A fault happened now. */
  fault(): void {
    this.#since = performance.now();
  }

  /** An operation finished now. */
  progress(): void {
    if (this.#since === undefined) return;
    this.times.push(performance.now() - this.#since);
    this.#since = undefined;
  }

  /** `label: n faults, recovery median X s, worst Y s`. */
  summary(label: string): string {
    const t = [...this.times].sort((a, b) => a - b);
    const median = t.length % 2
      ? t[(t.length - 1) / 2]
      : (t[t.length / 2 - 1] + t[t.length / 2]) / 2;
    return `${label}: ${t.length} faults, recovery median ${
      (median / 1000).toFixed(2)
    } s, worst ${(t[t.length - 1] / 1000).toFixed(2)} s (all: ${
      t.map((x) => (x / 1000).toFixed(2)).join(", ")
    })`;
  }
}

/** What a run gave. */
export interface RecoveryOutcome {
  /** Each forwardBackward's loss. */
  losses: number[];
  /** Each stage's LoRA and Adam state at the end. */
  state: ShardState[];
  /** The trainer's step and last seq at the end. */
  step: number;
  /** The last seq the trainer applied. */
  lastSeq: number;
}

/**
 * Trains `steps` pipelined steps (a forwardBackward of the sample batch,
 * then optimStep) on `tc`; `fault(step, pending)` runs once both are sent
 * (it may kill things; `pending()` says whether either is unanswered);
 * `clock` hears every finished operation.
 */
export async function trainWithFaults(
  tc: bios.TrainingClient,
  conn: () => Promise<Connection>,
  steps: number,
  fault?: (step: number, pending: () => boolean) => Promise<void>,
  clock?: ProgressClock,
): Promise<RecoveryOutcome> {
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const fb = tc.forwardBackward(SAMPLE_BATCH, "cross_entropy");
    const opt = tc.optimStep({ learningRate: 1e-2, gradClipNorm: 1 });
    let open = 2;
    const tick = () => {
      open--;
      clock?.progress();
    };
    fb.then(tick, () => {});
    opt.then(tick, () => {});
    await fault?.(step, () => open > 0);
    losses.push((await fb).loss);
    assert.equal((await opt).metrics["step:max"], step + 1);
  }
  const info = await tc.getInfo();
  const c = await conn();
  const state: ShardState[] = [];
  for (let i = 0; i < info.shards; i++) {
    state.push(
      await c.system.ref(shardAddress(tc.runId, i, 0)).ask({
        type: "get_state",
        optimizer: true,
      }) as ShardState,
    );
  }
  return { losses, state, step: info.step, lastSeq: info.lastSeq };
}

/** The same run embedded (one process), for the reference. */
export async function embeddedOutcome(
  service: bios.ServiceClient,
  steps: number,
): Promise<RecoveryOutcome> {
  const tc = await service.createLoraTrainingClient(RECOVERY_RUN);
  return await trainWithFaults(tc, () => service.connection(), steps);
}

/** A seeded generator of numbers in [0, 1) (mulberry32). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs `fn` with the tiny models as `BIOS_MODELS` and a temporary folder
 * (both put back after), given the reference: the same run of `steps`
 * steps embedded, in this process.
 */
export async function withRecoveryReference(
  prefix: string,
  steps: number,
  fn: (ctx: {
    catalog: string;
    dir: string;
    want: RecoveryOutcome;
  }) => Promise<void>,
): Promise<void> {
  const catalog = await ensureTinyModels();
  const prev = Deno.env.get("BIOS_MODELS");
  Deno.env.set("BIOS_MODELS", catalog);
  const dir = await Deno.makeTempDir({ prefix });
  try {
    const local = new bios.ServiceClient({ checkpointDir: `${dir}/local` });
    let want: RecoveryOutcome;
    try {
      want = await embeddedOutcome(local, steps);
    } finally {
      await local.close();
    }
    await fn({ catalog, dir, want });
  } finally {
    if (prev === undefined) Deno.env.delete("BIOS_MODELS");
    else Deno.env.set("BIOS_MODELS", prev);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
