/**
 * A run survives SIGKILL of the node hosting its trainer, on a real cluster:
 * a JetStream nats-server, node processes beating every 200 ms, a 50-step
 * pipelined run of a tiny model with dropout. At random moments the node
 * hosting the run's trainer is killed (and a fresh node started, so there is
 * somewhere to go); another node starts the run again from its durable
 * journal (`actors/durable_journal.ts`), the client resends what got no
 * answer, and the run completes with losses, LoRA weights and Adam moments
 * bit-identical to an uninterrupted run on the same cluster, every step and
 * seq applied once. Prints the recovery times (kill → next answer).
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import { nextTokenDatum, SAMPLE_TEXTS, textIds, TINY } from "./_helpers.ts";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { type NodeProcess, startNodeProcess } from "./_node_process.ts";
import type { Member } from "../protocol/node_messages.ts";
import { shardAddress } from "../protocol/addresses.ts";
import type { ShardState } from "../actors/param_shard.ts";
import { Prng } from "../model/prng.ts";
import { assertSameRun, type RunOutcome } from "./_killed_run.ts";

const ignore = await natsTestsIgnored();
const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 21, dropout: 0.1 };
const STEPS = 50;
const KILLS = 4;
const NODE_ARGS = [
  "--heartbeat-ms",
  "200",
  "--missed-beats",
  "3",
  "--shards-per-run",
  "2",
];
const batch = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The live node (of `alive`) the view says hosts `runId`. */
async function hostOf(
  service: bios.ServiceClient,
  runId: string,
  alive: Map<string, NodeProcess>,
): Promise<string> {
  const conn = await service.connection();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const view = await conn.registry.ask<Member[]>({ type: "members" })
      .catch(() => [] as Member[]);
    const m = view.find((x) => alive.has(x.id) && x.runs.includes(runId));
    if (m) return m.id;
    if (Date.now() > deadline) throw new Error(`no live host of ${runId}`);
    await sleep(50);
  }
}

/**
 * Train STEPS steps (two forwardBackwards and an optimStep each, pipelined);
 * `onStep` runs (not awaited) after a step's ops are sent. Returns the
 * outcome and when each answer came.
 */
async function train(
  service: bios.ServiceClient,
  onStep: (step: number, runId: string) => void,
): Promise<RunOutcome & { answers: number[]; runId: string }> {
  const tc = await service.createLoraTrainingClient(RUN);
  const answers: number[] = [];
  const at = <T>(p: PromiseLike<T>): Promise<T> =>
    Promise.resolve(p).then((v) => {
      answers.push(performance.now());
      return v;
    });
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    const fb = at(tc.forwardBackward(batch, "cross_entropy"));
    const fb2 = at(tc.forwardBackward(batch.slice(1), "cross_entropy"));
    const opt = at(tc.optimStep({ learningRate: 1e-2 }));
    onStep(s, tc.runId);
    losses.push((await fb).loss, (await fb2).loss);
    assert.equal((await opt).metrics["step:max"], s + 1);
  }
  await tc.forward(batch, "cross_entropy");
  const info = await tc.getInfo();
  assert.equal(info.step, STEPS, "every acknowledged step applied once");
  assert.equal(info.lastSeq, 3 * STEPS + 1, "every seq applied once");
  const conn = await service.connection();
  const state: ShardState[] = [];
  for (let i = 0; i < info.shards; i++) {
    state.push(
      await conn.system.ref(shardAddress(tc.runId, i, 0)).ask<ShardState>({
        type: "get_state",
        optimizer: true,
      }),
    );
  }
  return { losses, state, kills: 0, answers, runId: tc.runId };
}

Deno.test({
  name:
    "trainer node: SIGKILL of the node hosting a run's trainer at random points of a 50-step run: it resumes on another node from its durable journal, bit-identical, every step applied once",
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = await NatsServer.start(undefined, [], { jetstream: true });
    const dir = await Deno.makeTempDir({ prefix: "bios-trainer-node-" });
    const nodes = new Map<string, NodeProcess>();
    let named = 0;
    const startNode = async () => {
      const name = `n${++named}`;
      nodes.set(
        name,
        await startNodeProcess(server.url, [
          "--checkpoint-dir",
          dir,
          "--name",
          name,
          ...NODE_ARGS,
        ]),
      );
    };
    const service = new bios.ServiceClient({ nats: server.url });
    try {
      await Promise.all([startNode(), startNode()]);
      const t0 = performance.now();
      const clean = await train(service, () => {});
      const perStep = (performance.now() - t0) / STEPS;
      const rng = new Prng(7);
      const steps = new Set<number>();
      while (steps.size < KILLS) steps.add(2 + rng.nextInt(STEPS - 8));
      const killedAt: number[] = [];
      let chain = Promise.resolve();
      const crashed = await train(service, (s, runId) => {
        if (!steps.has(s)) return;
        const delay = rng.nextInt(300);
        // One kill at a time: each waits for the run's new host.
        chain = chain.then(async () => {
          await sleep(delay);
          const host = await hostOf(service, runId, nodes);
          const victim = nodes.get(host)!;
          nodes.delete(host);
          killedAt.push(performance.now());
          assert.equal(await victim.stop("SIGKILL"), 137);
          await startNode(); // somewhere to go next time
        });
      });
      await chain;
      crashed.kills = killedAt.length;
      assert.equal(crashed.kills, KILLS);
      assertSameRun(crashed, clean);
      const recovery = killedAt.map((k) =>
        (Math.min(...crashed.answers.filter((a) => a > k)) - k) / 1000
      ).sort((a, b) => a - b);
      assert.ok(recovery.every(Number.isFinite), `${recovery}`);
      console.log(
        `trainer node kills: ${KILLS} over ${STEPS} steps; recovery (kill → next answer) median ${
          recovery[Math.floor(recovery.length / 2)].toFixed(2)
        } s, worst ${recovery.at(-1)!.toFixed(2)} s; uninterrupted run ${
          perStep.toFixed(1)
        } ms/step`,
      );
    } finally {
      await service.close();
      await Promise.all([...nodes.values()].map((n) => n.stop("SIGKILL")));
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
