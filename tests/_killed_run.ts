/**
 * A pipelined training run with an actor of its own killed at random
 * moments meanwhile, for the crash tests: the losses it reports and the
 * shards' final LoRA and Adam state, to set against an uninterrupted run.
 *
 * @module
 */
import assert from "node:assert/strict";
import type * as bios from "../mod.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
} from "./_helpers.ts";
import { shardAddress } from "../protocol/addresses.ts";
import type { ShardState } from "../actors/param_shard.ts";
import { Prng } from "../model/prng.ts";

/** What a run gave. */
export interface RunOutcome {
  /** The two forwardBackward losses of every step, in order. */
  losses: number[];
  /** Each shard's LoRA + Adam state at the end (replica by replica). */
  state: ShardState[];
  /** Kills that landed. */
  kills: number;
}

/** How to run. */
export interface KilledRunOptions {
  /** The run to create. */
  run: bios.types.CreateLoraTrainingClientOptionsInput;
  /** Optimizer steps, each two forwardBackwards then optimStep. */
  steps: number;
  /** Seed of the kill schedule. */
  seed: number;
  /** Most microtask turns before a step's kill. */
  maxTurns: number;
  /**
   * The address to kill at a step, from the run id, its shard count and the
   * schedule's generator; null runs without kills.
   */
  target: ((runId: string, shards: number, rng: Prng) => string) | null;
}

const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

/**
 * Train `steps` steps, brutally killing `target` at random moments (in
 * process, messages run on microtasks: the killer waits a random number of
 * microtask turns, so kills land inside operations).
 */
export async function trainWhileKilling(
  opts: KilledRunOptions,
): Promise<RunOutcome> {
  const ts = await startTestService();
  try {
    const tc = await ts.service.createLoraTrainingClient(opts.run);
    const conn = await ts.service.connection();
    const shards = (await tc.getInfo()).shards;
    const rng = new Prng(opts.seed);
    let kills = 0;
    const killAfter = async (turns: number, addr: string) => {
      for (let i = 0; i < turns; i++) await null;
      if (!conn.system.liveActors().includes(addr)) return;
      // It may be stopping already (an earlier kill): then this one does not count.
      const stopped = await conn.system.stop(addr, {
        reason: { kind: "killed" },
        shutdown: "brutal_kill",
      }).then(() => true, () => false);
      if (stopped) kills++;
    };
    const losses: number[] = [];
    const killers: Promise<void>[] = [];
    for (let s = 0; s < opts.steps; s++) {
      if (opts.target) {
        const turns = rng.nextInt(opts.maxTurns);
        killers.push(killAfter(turns, opts.target(tc.runId, shards, rng)));
      }
      const fb = tc.forwardBackward(batch, "cross_entropy");
      const fb2 = tc.forwardBackward(batch.slice(1), "cross_entropy");
      const opt = tc.optimStep({ learningRate: 1e-2 });
      losses.push((await fb).loss, (await fb2).loss);
      assert.equal((await opt).metrics["step:max"], s + 1);
    }
    await Promise.all(killers);
    // A kill may land after the last op: one more op through the trainer
    // brings any restarted actor back to the committed state before we look.
    await tc.forward(batch, "cross_entropy");
    const info = await tc.getInfo();
    assert.equal(info.step, opts.steps, "every acknowledged step applied once");
    assert.equal(info.lastSeq, 3 * opts.steps + 1, "every seq applied once");
    const state: ShardState[] = [];
    for (let r = 0; r < (opts.run.dataParallel ?? 1); r++) {
      for (let i = 0; i < shards; i++) {
        state.push(
          await conn.system.ref(shardAddress(tc.runId, i, r)).ask({
            type: "get_state",
            optimizer: true,
          }),
        );
      }
    }
    return { losses, state, kills };
  } finally {
    await ts.close();
  }
}

/** The two runs' losses, weights and Adam moments are bit-identical. */
export function assertSameRun(crashed: RunOutcome, clean: RunOutcome): void {
  assert.deepEqual(crashed.losses, clean.losses);
  assert.equal(crashed.state.length, clean.state.length);
  for (let i = 0; i < clean.state.length; i++) {
    assert.equal(crashed.state[i].step, clean.state[i].step);
    for (const part of ["params", "m", "v"] as const) {
      const a = clean.state[i][part]!, b = crashed.state[i][part]!;
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const k of Object.keys(a)) {
        assert.deepEqual(b[k].data, a[k].data, `shard ${i} ${part} ${k}`);
      }
    }
  }
}
