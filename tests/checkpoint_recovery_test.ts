/**
 * An overwrite interrupted at any point leaves its name loadable as the old or
 * the new checkpoint: when the store crashes mid-save (it restarts alone, and
 * its start-up recovery finishes or undoes the save, while the runs live on),
 * and when the whole process is killed with SIGKILL mid-overwrite (the next
 * node's recovery does it).
 */
import assert from "node:assert/strict";
import * as bios from "../mod.ts";
import type { TrainingClient } from "../client/training_client.ts";
import {
  type CheckpointManifest,
  SAVE_STEPS,
  type SaveStep,
  SimulatedCrash,
} from "../actors/checkpoint_files.ts";
import { CHECKPOINT_STORE } from "../actors/checkpoint_store.ts";
import type { WireTensors } from "../actors/wire_tensors.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";
import { type FaultNode, startFaultNode } from "./_fault_node.ts";

const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 21 } as const;
const DATUM = nextTokenDatum(textIds(SAMPLE_TEXTS[2]));
const PROBE = [nextTokenDatum(textIds("Q: 5-1?\nA: 4"))];

async function probe(tc: TrainingClient): Promise<number> {
  return (await tc.forward(PROBE, "cross_entropy")).loss;
}

interface Loaded {
  manifest: CheckpointManifest;
  params: WireTensors;
  m?: WireTensors;
  v?: WireTensors;
}

/** A checkpoint as the store loads it, and the probe loss of a run holding it. */
interface Version {
  ck: Loaded;
  probe: number;
}

async function load(node: FaultNode, path: string): Promise<Loaded> {
  return await node.conn.system.ref(CHECKPOINT_STORE).ask<Loaded>({
    type: "load",
    path,
    optimizer: true,
    forTraining: true,
  });
}

function saveAsLatest(
  node: FaultNode,
  v: Version,
  overwrite: boolean,
): Promise<unknown> {
  const { format: _f, createdAt: _c, files: _files, ...manifest } =
    v.ck.manifest;
  return node.conn.system.ref(CHECKPOINT_STORE).ask({
    type: "save",
    overwrite,
    manifest: { ...manifest, name: "latest" },
    params: v.ck.params,
    m: v.ck.m,
    v: v.ck.v,
  });
}

/** Retry `f` while the store is still coming back from its crash. */
async function whenBack<T>(f: () => Promise<T>): Promise<T> {
  for (let i = 0;; i++) {
    try {
      return await f();
    } catch (e) {
      const down = e instanceof bios.errors.ActorStoppedError ||
        e instanceof bios.errors.UnknownActorError;
      if (!down || i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

Deno.test("a store crash at any step of an overwrite: the store restarts alone, and the name loads as the old or the new checkpoint", async () => {
  const ts = await startTestService(); // the tiny models, a temporary folder
  let crashAt: SaveStep | null = null;
  const startNode = () =>
    startFaultNode(ts.checkpointDir, (s) => {
      if (s !== crashAt) return;
      crashAt = null;
      throw new SimulatedCrash(s);
    });
  try {
    // Two versions to overwrite `latest` with, in turn.
    const versions: Version[] = [];
    const setup = await startNode();
    try {
      const tc = await setup.createRun(RUN);
      for (const name of ["a", "b"]) {
        await tc.train([DATUM], { learningRate: 1e-2 });
        const { path } = await tc.saveState(name);
        versions.push({ ck: await load(setup, path), probe: await probe(tc) });
      }
      await saveAsLatest(setup, versions[0], false);
    } finally {
      await setup.close();
    }
    const runId = versions[0].ck.manifest.runId;
    const path = `bios://${runId}/weights/latest`;
    let cur = versions[0];
    // One node per step: the node's root gives up after 3 restarts in 5 s.
    for (const step of SAVE_STEPS) {
      const node = await startNode();
      try {
        const tc = await node.createRun(RUN);
        const next = cur === versions[0] ? versions[1] : versions[0];
        crashAt = step;
        // Asked directly, the store's crash reaches the caller (a trainer
        // would retry the save once the store is back).
        await assert.rejects(saveAsLatest(node, next, true), (e: unknown) => {
          assert.ok(e instanceof bios.errors.ActorCrashedError, String(e));
          assert.match(e.message, /simulated crash at save step/);
          return true;
        });
        // The run (not a restarted one) loads `latest` from the restarted store.
        await whenBack(() => tc.loadStateWithOptimizer(path).result());
        const isNew =
          SAVE_STEPS.indexOf(step) >= SAVE_STEPS.indexOf("old-aside");
        const want = isNew ? next : cur;
        const what = `crashed at ${step}`;
        assert.equal((await tc.getInfo()).step, want.ck.manifest.step, what);
        assert.equal(await probe(tc), want.probe, what);
        cur = want;
        const names = await node.conn.registry.ask<{ name: string }[]>({
          type: "list_checkpoints",
          runId,
        });
        assert.deepEqual(names.map((e) => e.name).sort(), [
          "a",
          "b",
          "latest",
        ]);
        if (step === "old-removed") {
          // Through a trainer, a save that meets a store crash is retried
          // once the store is back, and lands.
          await tc.train([DATUM], { learningRate: 1e-2 });
          const now = (await tc.getInfo()).step;
          crashAt = "new-in-place";
          await tc.saveState("latest", { overwrite: true });
          assert.equal(crashAt, null, "the crash happened");
          await tc.loadStateWithOptimizer(`bios://${tc.runId}/weights/latest`);
          assert.equal((await tc.getInfo()).step, now);
        }
      } finally {
        await node.close();
      }
    }
  } finally {
    await ts.close();
  }
});

Deno.test("a process killed with SIGKILL mid-overwrite: the next node recovers latest as the old or the new checkpoint", async () => {
  const ts = await startTestService();
  const script = new URL("./_crash_overwriter.ts", import.meta.url).pathname;
  const config = new URL("../deno.json", import.meta.url).pathname;
  try {
    for (const step of ["checkpoint_complete", "old-aside", "new-in-place"]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", config, script, ts.checkpointDir, step],
        env: { BIOS_MODELS: ts.catalogFile },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let out = "";
      while (!out.includes(`at ${step}\n`)) {
        const { value, done } = await lines.read();
        if (done) break;
        out += value;
      }
      try {
        child.kill("SIGKILL");
      } catch {
        // It exited by itself: the assertions below say why.
      }
      const status = await child.status;
      await lines.cancel();
      const err = new TextDecoder().decode(
        await new Response(child.stderr).arrayBuffer(),
      );
      assert.ok(
        out.includes(`at ${step}\n`),
        `never reached ${step}: ${out}${err}`,
      );
      assert.equal(status.signal, "SIGKILL");
      const runId = /run (\S+)\n/.exec(out)![1];

      // A fresh node over the same folder: its store's start-up recovery runs.
      const service = new bios.ServiceClient({
        checkpointDir: ts.checkpointDir,
      });
      try {
        const path = `bios://${runId}/weights/latest`;
        const tc = await service.createTrainingClientFromState(path, {
          withOptimizer: true,
        });
        const want = step === "checkpoint_complete" ? 1 : 2;
        assert.equal((await tc.getInfo()).step, want, `killed at ${step}`);
        const conn = await service.connection();
        const names = await conn.registry.ask<{ name: string }[]>({
          type: "list_checkpoints",
          runId,
        });
        assert.deepEqual(names.map((e) => e.name), ["latest"]);
        const left = await Array.fromAsync(
          Deno.readDir(`${ts.checkpointDir}/${runId}/weights`),
        );
        assert.ok(
          !left.some((e) => e.name.startsWith(".old-")),
          `${left.map((e) => e.name)}`,
        );
      } finally {
        await service.close();
      }
    }
  } finally {
    await ts.close();
  }
});
