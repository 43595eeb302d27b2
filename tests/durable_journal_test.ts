/**
 * The durable run journal on a real JetStream server: what one trainer
 * instance writes, the next reads back whole (record, counters, commit point
 * bit for bit, the ops since it); once a newer instance claims, the older
 * one's writes are refused and leave nothing the journal names. Prints the
 * journal's cost per step (two forward_backwards and an optimizer step with
 * its commit point).
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { JournalBucket, type RunArgs } from "../actors/durable_journal.ts";
import { RunJournal, StaleTrainerError } from "../actors/run_journal.ts";
import type { ShardState } from "../actors/param_shard.ts";
import type { NormalizedDatum } from "../protocol/types/datum.ts";

const ignore = await natsTestsIgnored();

const args: RunArgs = {
  spec: {
    runId: "run-0123456789abcdef",
    baseModel: "tiny",
    lora: { rank: 4, alpha: 8, dropout: 0, targets: ["q_proj"], seed: 1 },
    shards: 2,
    microBatchTokens: 4096,
  },
  ranges: [{ first: 0, last: 1, head: false }, {
    first: 1,
    last: 2,
    head: true,
  }],
} as unknown as RunArgs;

/** A stage's state with `n` floats per tensor, filled from `seed`. */
function state(seed: number, n = 4096): ShardState {
  const t = (k: number) => ({
    shape: [n],
    data: Float32Array.from({ length: n }, (_, i) => Math.sin(seed + k + i)),
  });
  return {
    params: { a: t(1), b: t(2) },
    m: { a: t(3), b: t(4) },
    v: { a: t(5), b: t(6) },
    step: seed,
  };
}

const op = {
  data: [{
    tokens: Int32Array.from([1, 2, 3]),
    inputs: { targetTokens: Int32Array.from([2, 3, 4]) },
  }] as unknown as NormalizedDatum[],
  lossFn: "cross_entropy" as const,
  lossFnConfig: {},
};

Deno.test({
  name:
    "durable journal: written by one instance, read back whole by the next; a replaced instance's writes are refused",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = await NatsServer.start(undefined, [], { jetstream: true });
    const nc = await connect({ servers: server.url });
    try {
      const bucket = await JournalBucket.open(nc, "test-journals");
      assert.equal(await bucket.head(args.spec.runId), null);
      const j1 = new RunJournal();
      const d1 = bucket.run(args);
      await d1.claim(j1);
      assert.equal(j1.epoch, 1);
      await d1.write(
        { step: 0, version: 0, pendingGrads: false, mb: 0 },
        undefined,
        [state(0), state(100)],
      );
      await d1.write(
        { step: 0, version: 0, pendingGrads: true, mb: 2 },
        { seq: 1, outcome: { ok: true, value: { loss: 1.5 } }, op },
      );
      await d1.write(
        { step: 1, version: 1, pendingGrads: false, mb: 2 },
        {
          seq: 2,
          outcome: { ok: true, value: { metrics: { "step:max": 1 } } },
        },
        [state(1), state(101)],
      );
      await d1.write(
        { step: 1, version: 1, pendingGrads: true, mb: 4 },
        { seq: 3, outcome: { ok: true, value: { loss: 1.25 } }, op },
      );
      // The next instance (on any node) reads it all back.
      const j2 = new RunJournal();
      const d2 = bucket.run(args);
      await d2.claim(j2);
      assert.equal(j2.epoch, 2);
      assert.deepEqual(
        [j2.lastSeq, j2.step, j2.version, j2.pendingGrads, j2.mb],
        [3, 1, 1, true, 4],
      );
      assert.deepEqual([...j2.record.keys()], [1, 2, 3]);
      assert.deepEqual(j2.record.get(1), { ok: true, value: { loss: 1.5 } });
      assert.deepEqual(j2.committed, [state(1), state(101)]);
      assert.equal(j2.sinceCommit.length, 1);
      assert.deepEqual(j2.sinceCommit[0], op);
      assert.equal(
        (await bucket.head(args.spec.runId))!.args.spec.runId,
        args.spec.runId,
      );
      // The replaced instance is fenced: its write is refused, and the head
      // still names what the new one read.
      await assert.rejects(
        d1.write(
          { step: 2, version: 2, pendingGrads: false, mb: 4 },
          { seq: 4, outcome: { ok: true, value: {} } },
          [state(9), state(109)],
        ),
        StaleTrainerError,
      );
      const head = (await bucket.head(args.spec.runId))!;
      assert.equal(head.epoch, 2);
      assert.equal(head.lastSeq, 3);
      // The new one writes on.
      await d2.write(
        { step: 1, version: 1, pendingGrads: true, mb: 6 },
        { seq: 4, outcome: { ok: true, value: { loss: 1 } }, op },
      );
      const j3 = new RunJournal();
      await bucket.run(args).claim(j3);
      assert.deepEqual([j3.epoch, j3.lastSeq, j3.sinceCommit.length], [
        3,
        4,
        2,
      ]);
      assert.deepEqual(j3.committed, [state(1), state(101)]);

      // Cost per step: two forward_backward entries, then the optimizer
      // step's entry with a commit point of two stages (6 × 4096 f32 each).
      const d = bucket.run({
        ...args,
        spec: { ...args.spec, runId: "run-cost" },
      });
      await d.claim(new RunJournal());
      const steps = 30;
      const t0 = performance.now();
      let seq = 0;
      for (let s = 0; s < steps; s++) {
        for (let k = 0; k < 2; k++) {
          await d.write(
            { step: s, version: s, pendingGrads: true, mb: 0 },
            { seq: ++seq, outcome: { ok: true, value: { loss: 1 } }, op },
          );
        }
        await d.write(
          { step: s + 1, version: s + 1, pendingGrads: false, mb: 0 },
          { seq: ++seq, outcome: { ok: true, value: {} } },
          [state(s), state(s + 1)],
        );
      }
      const perStep = (performance.now() - t0) / steps;
      console.log(
        `durable journal: ${
          perStep.toFixed(2)
        } ms per step (2 forward_backward entries + optimizer step with a ${
          (2 * 6 * 4096 * 4 / 1024).toFixed(0)
        } KiB commit point), ${(perStep / 3).toFixed(2)} ms per write`,
      );
      await bucket.remove("run-cost");
    } finally {
      await nc.close();
      await server.kill();
    }
  },
});
