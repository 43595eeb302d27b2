/**
 * A gateway that crashes loses no tenant's work: a run's record names the
 * tenant whose key made it, so a new gateway on the same cluster knows whose
 * it is. After `kill -9` of the gateway with an operation in flight, the
 * tenant carries on training the same run through a new gateway (the
 * in-flight operation resent under its seq applies once: the next losses
 * equal an uninterrupted run's), lists it, loads its checkpoints and sees
 * it on the dashboard; another tenant gets 404 for all of it. The
 * TypeScript client over HTTP rides the same crash: its in-flight step is
 * resent, its sampler made again, its session renewed.
 */
import assert from "node:assert/strict";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { startNodeProcess } from "./_node_process.ts";
import { startGateway } from "./_gateway_process.ts";
import {
  type Json,
  nextTokenDatum,
  TinkerHttp,
  trainStepLoss,
} from "./_tinker_http.ts";
import * as bios from "../mod.ts";
import {
  nextTokenDatum as clientDatum,
  SAMPLE_TEXTS,
  textIds,
  TINY,
} from "./_helpers.ts";

const ignore = await natsTestsIgnored();
const KEY_A = "tml-restart-a-0123456789";
const KEY_B = "tml-restart-b-0123456789";
const BATCHES = SAMPLE_TEXTS.map((t) => [nextTokenDatum(textIds(t))]);

/** A run of `wire`'s tenant with a fixed seed; its id. */
async function createRun(wire: TinkerHttp): Promise<string> {
  const out = await wire.call("create_model", {
    "session_id": await wire.session(),
    "model_seq_id": 0,
    "base_model": TINY,
    "lora_config": { rank: 4, seed: 5 },
  });
  return out.model_id as string;
}

Deno.test({
  name:
    "kill -9 of the gateway: through a new one the tenant trains on the same run (the op in flight applied once), lists it and loads its checkpoints; another tenant gets 404",
  ignore,
  fn: async () => {
    const server = await NatsServer.start(undefined, [], { jetstream: true });
    const dir = await Deno.makeTempDir({ prefix: "bios-gw-restart-" });
    const keys = `${dir}/keys.txt`;
    await Deno.writeTextFile(keys, `a ${KEY_A}\nb ${KEY_B}\n`);
    const node = await startNodeProcess(server.url, [
      "--checkpoints",
      "jetstream",
    ]);
    const args = ["--nats", server.url, "--keys", keys, "--rate-limit", "0"];
    const gateways = [await startGateway(args)];
    try {
      const a1 = new TinkerHttp(gateways[0].url, KEY_A);
      const run = await createRun(a1);
      const reference = await createRun(a1); // the same seed, never interrupted
      const want: number[] = [];
      for (const [i, data] of BATCHES.entries()) {
        want.push(await trainStepLoss(a1, reference, 1 + 2 * i, data));
      }
      const got = [await trainStepLoss(a1, run, 1, BATCHES[0])];
      const saved = await a1.call("save_weights", {
        "model_id": run,
        "seq_id": 3,
        path: "before-crash",
      });
      const ckpt = saved.path as string;
      assert.equal(ckpt, `tinker://${run}/weights/before-crash`);
      // The next step's forward_backward is in flight when the gateway dies.
      const started = await a1.post("forward_backward", {
        "model_id": run,
        "seq_id": 4,
        "forward_backward_input": {
          data: BATCHES[1],
          "loss_fn": "cross_entropy",
        },
      });
      assert.equal(started.status, 200);
      await gateways[0].stop("SIGKILL");

      gateways.push(await startGateway(args));
      const a = new TinkerHttp(gateways[1].url, KEY_A);
      const b = new TinkerHttp(gateways[1].url, KEY_B);
      // Another tenant: not found, on every route, and nothing changes.
      const theirs = await b.post("forward_backward", {
        "model_id": run,
        "seq_id": 4,
        "forward_backward_input": {
          data: BATCHES[1],
          "loss_fn": "cross_entropy",
        },
      });
      assert.equal(theirs.status, 404, JSON.stringify(theirs.json));
      const info = await b.post("get_info", { "model_id": run });
      assert.equal(info.status, 404);
      const listB = await fetch(`${gateways[1].url}/api/v1/training_runs`, {
        headers: { "X-API-Key": KEY_B },
      }).then((r) => r.json());
      assert.deepEqual(listB.training_runs, []);
      await assert.rejects(
        () =>
          b.call("create_sampling_session", {
            "session_id": "none",
            "sampling_session_seq_id": 0,
            "model_path": ckpt,
          }),
        /404/,
      );

      // The tenant resends seq 4 (its future was lost with the gateway)
      // and goes on: each step applied once, as in the reference run.
      got.push(await trainStepLoss(a, run, 4, BATCHES[1]));
      got.push(await trainStepLoss(a, run, 6, BATCHES[2]));
      assert.deepEqual(got, want);
      const infoA = await a.post("get_info", { "model_id": run });
      assert.equal(infoA.status, 200, JSON.stringify(infoA.json));

      const listA = await fetch(`${gateways[1].url}/api/v1/training_runs`, {
        headers: { "X-API-Key": KEY_A },
      }).then((r) => r.json());
      const mine = (listA.training_runs as Json[]).map((
        r,
      ) => [r.training_run_id, r.model_owner]).sort();
      assert.deepEqual(mine, [[reference, "a"], [run, "a"]].sort());
      // Its checkpoint from before the crash loads into a new run.
      const resumed = await createRun(a);
      await a.call("load_weights", {
        "model_id": resumed,
        "seq_id": 1,
        path: ckpt,
        optimizer: true,
      });
      const dash = await fetch(`${gateways[1].url}/api/v1/dashboard/runs`, {
        headers: { "X-API-Key": KEY_A },
      }).then((r) => r.json());
      assert.ok(
        (dash.runs as Json[]).some((r) => r.model_id === run),
        JSON.stringify(dash),
      );
      const dashB = await fetch(`${gateways[1].url}/api/v1/dashboard/runs`, {
        headers: { "X-API-Key": KEY_B },
      }).then((r) => r.json());
      assert.deepEqual(dashB.runs, []);
    } finally {
      for (const g of gateways) await g.stop();
      await node.stop("SIGTERM");
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "the TypeScript client through a gateway killed mid-step and started again on its port: its run trains on (each step once), its sampler samples, a new run starts",
  ignore,
  fn: async () => {
    const server = await NatsServer.start(undefined, [], { jetstream: true });
    const dir = await Deno.makeTempDir({ prefix: "bios-gw-restart-ts-" });
    const keys = `${dir}/keys.txt`;
    await Deno.writeTextFile(keys, `a ${KEY_A}\n`);
    const node = await startNodeProcess(server.url, [
      "--checkpoints",
      "jetstream",
    ]);
    const args = ["--nats", server.url, "--keys", keys, "--rate-limit", "0"];
    const gateways = [await startGateway(args)];
    const service = new bios.ServiceClient({
      baseUrl: gateways[0].url,
      apiKey: KEY_A,
    });
    try {
      const batches = SAMPLE_TEXTS.map((t) => [clientDatum(textIds(t))]);
      const opts = { baseModel: TINY, rank: 4, seed: 9 };
      const reference = await service.createLoraTrainingClient(opts);
      const want: number[] = [];
      for (const b of batches) {
        want.push((await reference.train(b, { learningRate: 0.02 })).loss);
      }
      const tc = await service.createLoraTrainingClient(opts);
      const got = [(await tc.train(batches[0], { learningRate: 0.02 })).loss];
      const sc = await tc.saveWeightsAndGetSamplingClient("before-crash");
      const args0 = {
        prompt: bios.types.ModelInput.fromInts(textIds("Q:").slice(0, -1)),
        samplingParams: { maxTokens: 6, seed: 3 },
      };
      const before = await sc.sample(args0);
      const snapshot = await tc.sample(args0); // a sampler of the weights now
      const port = new URL(gateways[0].url).port;
      const restart = async () => {
        await gateways.at(-1)!.stop("SIGKILL");
        gateways.push(await startGateway([...args, "--port", port]));
      };

      // The gateway dies and comes back: the snapshot's sampler is gone
      // with it, and is taken again of the same (unchanged) weights.
      await restart();
      assert.deepEqual((await tc.sample(args0)).sequences, snapshot.sequences);

      // It dies with the next step in flight, and comes back.
      const inFlight = tc.train(batches[1], { learningRate: 0.02 });
      await restart();
      got.push((await inFlight).loss);
      got.push((await tc.train(batches[2], { learningRate: 0.02 })).loss);
      assert.deepEqual(got, want);
      assert.equal((await tc.getInfo()).step, 3);
      // The sampler of the checkpoint is made again on the new gateway.
      assert.deepEqual((await sc.sample(args0)).sequences, before.sequences);
      // A new run starts in a new session.
      const fresh = await service.createLoraTrainingClient(opts);
      assert.equal(
        (await fresh.train(batches[0], { learningRate: 0.02 })).loss,
        want[0],
      );
    } finally {
      await service.close();
      for (const g of gateways) await g.stop();
      await node.stop("SIGTERM");
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
