/**
 * One training script for the data-parallel tests: a few pipelined steps of
 * a run, then what it gave — its losses and every shard's LoRA and Adam
 * state, replica by replica, read from the shards themselves.
 *
 * @module
 */
import assert from "node:assert/strict";
import type * as bios from "../mod.ts";
import { nextTokenDatum, SAMPLE_TEXTS, textIds, TINY } from "./_helpers.ts";
import { shardAddress } from "../protocol/addresses.ts";
import type { ShardState } from "../protocol/shard_messages.ts";
import type { Connection } from "../client/connection.ts";

/** What a run gave. */
export interface DpOutcome {
  /** Each forwardBackward's loss, in order. */
  losses: number[];
  /** `state[replica][stage]` at the end. */
  state: ShardState[][];
}

/** How to run. */
export interface DpScript {
  /** Pipeline replicas. */
  dataParallel: number;
  /** Optimizer steps. */
  steps: number;
  /** The datums of each forwardBackward of a step (default: the sample texts, then all but the first). */
  batches?: bios.types.DatumInput[][];
  /** LoRA dropout. @default {0} */
  dropout?: number;
  /** Called with the training client after the steps. */
  onRun?: (tc: bios.TrainingClient) => Promise<void>;
}

/** The sample texts as next-token datums. */
export const SAMPLE_BATCH: bios.types.DatumInput[] = SAMPLE_TEXTS.map((t) =>
  nextTokenDatum(textIds(t))
);

/**
 * Train `steps` steps (each: the batches' forwardBackwards, then
 * optimStep, pipelined) on `service`; `connection` reaches the shards.
 */
export async function trainDp(
  service: bios.ServiceClient,
  connection: () => Promise<Connection>,
  s: DpScript,
): Promise<DpOutcome> {
  const tc = await service.createLoraTrainingClient({
    baseModel: TINY,
    rank: 4,
    seed: 7,
    dropout: s.dropout ?? 0,
    dataParallel: s.dataParallel,
  });
  const batches = s.batches ?? [SAMPLE_BATCH, SAMPLE_BATCH.slice(1)];
  const losses: number[] = [];
  for (let step = 0; step < s.steps; step++) {
    const fbs = batches.map((b) => tc.forwardBackward(b, "cross_entropy"));
    const opt = tc.optimStep({ learningRate: 1e-2, gradClipNorm: 1 });
    for (const fb of fbs) losses.push((await fb).loss);
    assert.equal((await opt).metrics["step:max"], step + 1);
  }
  await s.onRun?.(tc);
  const info = await tc.getInfo();
  const conn = await connection();
  const state: ShardState[][] = [];
  for (let r = 0; r < s.dataParallel; r++) {
    const row: ShardState[] = [];
    for (let i = 0; i < info.shards; i++) {
      row.push(
        await conn.system.ref(shardAddress(tc.runId, i, r)).ask({
          type: "get_state",
          optimizer: true,
        }) as ShardState,
      );
    }
    state.push(row);
  }
  return { losses, state };
}

/**
 * Every tensor of `a` and `b` (params, m, v of each stage) is equal within
 * `tol(x)` of its value x (bit-identical when omitted).
 */
export function assertSameState(
  a: readonly ShardState[],
  b: readonly ShardState[],
  what: string,
  tol?: (x: number) => number,
): void {
  assert.equal(a.length, b.length, `${what}: stages`);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].step, b[i].step, `${what}: stage ${i} step`);
    for (const part of ["params", "m", "v"] as const) {
      const x = a[i][part]!, y = b[i][part]!;
      assert.deepEqual(Object.keys(y).sort(), Object.keys(x).sort());
      for (const k of Object.keys(x)) {
        if (!tol) {
          assert.deepEqual(y[k].data, x[k].data, `${what}: ${i} ${part} ${k}`);
          continue;
        }
        x[k].data.forEach((v, j) => {
          const d = Math.abs(v - y[k].data[j]);
          if (!(d <= tol(v))) {
            assert.fail(
              `${what}: stage ${i} ${part} ${k}[${j}]: ${v} vs ${
                y[k].data[j]
              } (off by ${d}, allowed ${tol(v)})`,
            );
          }
        });
      }
    }
  }
}
