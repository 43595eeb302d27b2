import assert from "node:assert/strict";
import {
  type CheckpointData,
  exists,
  listCheckpoints,
  readCheckpoint,
  SAVE_STEPS,
  type SaveStep,
  SimulatedCrash,
  writeCheckpoint,
} from "./checkpoint_files.ts";
import { CheckpointStore } from "./checkpoint_store.ts";
import { FileCheckpointStorage } from "./checkpoint_file_storage.ts";
import { NotFoundError } from "../runtime/errors.ts";

const RUN = "run-1";
const A = "base_model.model.lm_head.lora_A.weight";
const B = "base_model.model.lm_head.lora_B.weight";

/** A small self-consistent checkpoint whose every number depends on `version`. */
function data(name: string, version: number): CheckpointData {
  const a = {
    shape: [2, 4],
    data: Float32Array.from({ length: 8 }, (_, i) => version + i),
  };
  const b = {
    shape: [6, 2],
    data: Float32Array.from({ length: 12 }, (_, i) => version * 10 + i),
  };
  const params = new Map([[A, a], [B, b]]);
  return {
    manifest: {
      runId: RUN,
      kind: "weights",
      name,
      baseModel: "test/tiny",
      lora: { rank: 2, alpha: 4, dropout: 0, targets: ["lm_head"], seed: 1 },
      step: version,
      seq: version,
    },
    params,
    optimizer: { m: params, v: params },
  };
}

async function withRoot(body: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "bios-ckpt-files-" });
  try {
    await body(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** The version `name` loads as, or undefined when it names no checkpoint. */
async function loadedVersion(
  root: string,
  name: string,
): Promise<number | undefined> {
  try {
    const ck = await readCheckpoint(`${root}/${RUN}/weights/${name}`, true);
    assert.deepEqual(ck.params, data(name, ck.manifest.step).params);
    assert.deepEqual(ck.optimizer?.m, data(name, ck.manifest.step).params);
    return ck.manifest.step;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

async function entries(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

const crashAt = (step: SaveStep) => (s: SaveStep) => {
  if (s === step) throw new SimulatedCrash(s);
};

Deno.test("a save or overwrite killed at any step loads as the old or the new checkpoint after recovery", async () => {
  for (const overwrite of [false, true]) {
    for (const step of SAVE_STEPS) {
      await withRoot(async (root) => {
        if (overwrite) await writeCheckpoint(root, data("latest", 1));
        const save = writeCheckpoint(root, data("latest", 2), {
          overwrite,
          fault: crashAt(step),
        });
        const reached = await save.then(() => false, (e) => {
          assert.ok(e instanceof SimulatedCrash, String(e));
          return true;
        });
        assert.equal(
          reached,
          overwrite || !step.startsWith("old-"),
          `${step} is a step of this save`,
        );
        await new CheckpointStore(new FileCheckpointStorage(root)).init(); // a fresh node's recovery
        const at = SAVE_STEPS.indexOf(step);
        const isNew = at >= SAVE_STEPS.indexOf("old-aside");
        const want = isNew ? 2 : overwrite ? 1 : undefined;
        const what = `${overwrite ? "overwrite" : "save"} killed at ${step}`;
        assert.equal(await loadedVersion(root, "latest"), want, what);
        const listed = await listCheckpoints(root, RUN);
        assert.deepEqual(
          listed.map((e) => e.name),
          want === undefined ? [] : ["latest"],
          `${what}: listing agrees with loading`,
        );
        const left = await entries(`${root}/${RUN}/weights`);
        assert.ok(
          !left.some((n) => n.startsWith(".old-")),
          `${what}: no old copy is left: ${left}`,
        );
        // The same name saves again.
        await writeCheckpoint(root, data("latest", 3), { overwrite: true });
        assert.equal(await loadedVersion(root, "latest"), 3, what);
      });
    }
  }
});

Deno.test("an overwrite that fails at any step before the new copy is in place leaves the old one and no leftovers", async () => {
  for (const step of SAVE_STEPS.slice(0, SAVE_STEPS.indexOf("old-aside") + 1)) {
    await withRoot(async (root) => {
      await writeCheckpoint(root, data("latest", 1));
      await assert.rejects(
        writeCheckpoint(root, data("latest", 2), {
          overwrite: true,
          fault: (s) => {
            if (s === step) throw new Error(`disk fault at ${s}`);
          },
        }),
        /disk fault/,
      );
      assert.equal(await loadedVersion(root, "latest"), 1, step);
      assert.deepEqual(await entries(`${root}/${RUN}/weights`), ["latest"]);
    });
  }
});

Deno.test("recovery at start-up never deletes the only copy, however old", async () => {
  await withRoot(async (root) => {
    const parent = `${root}/${RUN}/weights`;
    const old = new Date(Date.now() - 2 * 3_600_000);
    const id = "0b6f2a52-8a52-4f0e-9a56-6a1d8c1e0f11";
    // An earlier Bios's overwrite killed between its two renames: the only
    // copy of `a` is in its trash folder.
    await writeCheckpoint(root, data("a", 1));
    await Deno.rename(`${parent}/a`, `${parent}/.trash-a-${id}`);
    await Deno.utime(`${parent}/.trash-a-${id}`, old, old);
    // An overwrite of `b` killed while writing the new copy, after its old
    // copy was moved aside (only possible in a crash between steps).
    await writeCheckpoint(root, data("b", 1));
    await writeCheckpoint(root, data("b-new", 2));
    await Deno.rename(`${parent}/b`, `${parent}/.old-b-${id}`);
    await Deno.rename(`${parent}/b-new`, `${parent}/.tmp-b-${id}`);
    await Deno.remove(`${parent}/.tmp-b-${id}/checkpoint_complete`);
    // Orphan temporaries: a stale one and one a save may still be writing.
    await Deno.mkdir(`${parent}/.tmp-c-${id}`);
    await Deno.utime(`${parent}/.tmp-c-${id}`, old, old);
    await Deno.mkdir(`${parent}/.tmp-d-${id}`);
    for (const n of [".old-b", ".tmp-b"]) {
      await Deno.utime(`${parent}/${n}-${id}`, old, old);
    }

    await new CheckpointStore(new FileCheckpointStorage(root)).init();
    assert.equal(await loadedVersion(root, "b"), 1, "rolled back");
    assert.deepEqual(await entries(parent), [`.tmp-d-${id}`, "a", "b"]);
    // `a` was written by this version, so it loads too.
    assert.equal(await loadedVersion(root, "a"), 1);
    assert.equal(await exists(`${parent}/.tmp-d-${id}`), true);
  });
});
