/**
 * The RestClient (`service.createRestClient()`) on each deployment
 * (BIOS_TEST_DEPLOYMENT: embedded, nats, gateway): runs and checkpoints
 * listed and paged, a run's summary, weights info, the archive (untarred by
 * the system's `tar` and compared with the saved files), TTL set and
 * cleared, an expiry that deletes the checkpoint (no request touching it),
 * deletion; refused requests change nothing.
 */
import assert from "node:assert/strict";
import { InvalidArgumentError, NotFoundError } from "../runtime/errors.ts";
import { sha256Hex } from "../actors/checkpoint_files.ts";
import {
  nextTokenDatum,
  SAMPLE_TEXTS,
  startTestService,
  textIds,
  TINY,
} from "./_helpers.ts";

const RUN = { baseModel: TINY, rank: 4, alpha: 8, seed: 3 } as const;
const BATCH = SAMPLE_TEXTS.map((t) => nextTokenDatum(textIds(t)));

async function untar(bytes: Uint8Array): Promise<Map<string, Uint8Array>> {
  const dir = await Deno.makeTempDir({ prefix: "bios-untar-" });
  try {
    await Deno.writeFile(`${dir}/a.tar`, bytes);
    await Deno.mkdir(`${dir}/x`);
    const out = await new Deno.Command("tar", {
      args: ["-xf", `${dir}/a.tar`, "-C", `${dir}/x`],
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const files = new Map<string, Uint8Array>();
    for await (const e of Deno.readDir(`${dir}/x`)) {
      assert.ok(e.isFile, `${e.name} is a plain file`);
      files.set(e.name, await Deno.readFile(`${dir}/x/${e.name}`));
    }
    return files;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("RestClient: runs, checkpoints, weights info, archive, TTL, delete", async (t) => {
  const ts = await startTestService();
  const { service } = ts;
  const rest = service.createRestClient();
  try {
    const tc = await service.createLoraTrainingClient(RUN);
    await tc.train(BATCH, { learningRate: 1e-2 });
    const a = (await tc.saveState("a")).path;
    const s = (await tc.saveWeightsForSampler("s")).path;
    await tc.train(BATCH, { learningRate: 1e-2 });
    const b = (await tc.saveState("b")).path;
    const other = await service.createLoraTrainingClient({ ...RUN, rank: 2 });

    await t.step("listTrainingRuns and getTrainingRun", async () => {
      const all = await rest.listTrainingRuns();
      assert.equal(all.cursor.totalCount, 2);
      assert.deepEqual(
        all.trainingRuns.map((r) => r.runId),
        [other.runId, tc.runId],
        "newest first",
      );
      const r = all.trainingRuns[1];
      assert.equal(r.baseModel, TINY);
      assert.equal(r.lora.rank, 4);
      assert.equal(r.lora.alpha, 8);
      assert.equal(r.lora.seed, 3);
      assert.equal(r.step, 2);
      assert.equal(r.live, true);
      assert.ok(r.createdAt !== null && !Number.isNaN(Date.parse(r.createdAt)));
      assert.equal(r.lastCheckpoint?.path, b);
      assert.equal(r.lastSamplerCheckpoint?.path, s);
      assert.deepEqual(await rest.getTrainingRun(tc.runId), r);
      const second = await rest.listTrainingRuns({ limit: 1, offset: 1 });
      assert.deepEqual(second.trainingRuns.map((x) => x.runId), [tc.runId]);
      assert.deepEqual(second.cursor, { offset: 1, limit: 1, totalCount: 2 });
      const fresh = await rest.getTrainingRun(other.runId);
      assert.equal(fresh.step, 0);
      assert.equal(fresh.lastCheckpoint, null);
      await assert.rejects(rest.getTrainingRun("run-nothere"), NotFoundError);
      await assert.rejects(
        rest.listTrainingRuns({ limit: 0 }),
        InvalidArgumentError,
      );
    });

    await t.step(
      "listCheckpoints, listUserCheckpoints, getWeightsInfo",
      async () => {
        const cs = await rest.listCheckpoints(tc.runId);
        assert.deepEqual(cs.map((c) => c.path), [a, s, b], "oldest first");
        assert.deepEqual(cs.map((c) => c.checkpointId), [
          "weights/a",
          "sampler_weights/s",
          "weights/b",
        ]);
        assert.deepEqual(cs.map((c) => c.step), [1, 1, 2]);
        assert.ok(cs.every((c) => c.sizeBytes > 0 && c.expiresAt === null));
        const mine = await rest.listUserCheckpoints();
        assert.deepEqual(mine.checkpoints.map((c) => c.path), [b, s, a]);
        assert.equal(mine.cursor.totalCount, 3);
        const page = await rest.listUserCheckpoints({ limit: 2, offset: 1 });
        assert.deepEqual(page.checkpoints.map((c) => c.path), [s, a]);
        const info = await rest.getWeightsInfo(a);
        assert.equal(info.baseModel, TINY);
        assert.equal(info.loraRank, 4);
        assert.equal(info.kind, "weights");
        assert.equal(info.step, 1);
      },
    );

    await t.step(
      "getCheckpointArchiveUrl: a tar of the verified files",
      async () => {
        const { url, expires } = await rest.getCheckpointArchiveUrl(b);
        const res = await fetch(url);
        assert.equal(res.status, 200);
        const files = await untar(new Uint8Array(await res.arrayBuffer()));
        if (ts.deployment === "gateway") {
          assert.match(url, /^http:\/\//);
          assert.ok(expires !== null && expires.getTime() > Date.now());
        } else {
          assert.match(url, /^file:\/\//);
          assert.equal(expires, null);
          await Deno.remove(new URL(url));
        }
        assert.deepEqual([...files.keys()].sort(), [
          "adapter_config.json",
          "adapter_model.safetensors",
          "checkpoint_complete",
          "manifest.json",
          "optimizer.safetensors",
        ]);
        const manifest = JSON.parse(
          new TextDecoder().decode(files.get("manifest.json")),
        );
        assert.equal(manifest.name, "b");
        for (const [name, sha] of Object.entries(manifest.files)) {
          assert.equal(await sha256Hex(files.get(name)!), sha, name);
        }
        const record = JSON.parse(
          new TextDecoder().decode(files.get("checkpoint_complete")),
        );
        assert.equal(
          await sha256Hex(files.get("manifest.json")!),
          record.manifest_sha256,
        );
        if (ts.checkpoints === "files") {
          const dir = `${ts.checkpointDir}/${tc.runId}/weights/b`;
          for (const [name, bytes] of files) {
            assert.deepEqual(
              bytes,
              await Deno.readFile(`${dir}/${name}`),
              name,
            );
          }
        }
      },
    );

    await t.step(
      "setCheckpointTtl: set, then clear; refusals change nothing",
      async () => {
        const expiry = async () =>
          (await rest.listCheckpoints(tc.runId)).find((c) => c.path === a)
            ?.expiresAt;
        const before = Date.now();
        await rest.setCheckpointTtl(a, 3600);
        const at = Date.parse((await expiry())!);
        assert.ok(
          at >= before + 3_600_000 - 1000 && at <= Date.now() + 3_600_000,
        );
        for (const bad of [0, -5, 1.5, Number.NaN]) {
          await assert.rejects(
            rest.setCheckpointTtl(a, bad),
            InvalidArgumentError,
          );
        }
        assert.equal(Date.parse((await expiry())!), at);
        await rest.setCheckpointTtl(a, null);
        assert.equal(await expiry(), null);
        await assert.rejects(
          rest.setCheckpointTtl(`bios://${tc.runId}/weights/nothere`, 60),
          NotFoundError,
        );
        await tc.loadState(a); // still there, no expiry
      },
    );

    await t.step(
      "an expired checkpoint is deleted by the store's timer",
      async () => {
        await rest.setCheckpointTtl(s, 1);
        // Nothing asks about it: the store deletes it when its time comes.
        await new Promise((r) => setTimeout(r, 1500));
        if (ts.checkpoints === "files") {
          await until("its folder is gone", async () => {
            try {
              await Deno.stat(
                `${ts.checkpointDir}/${tc.runId}/sampler_weights/s`,
              );
              return false;
            } catch {
              return true;
            }
          });
        }
        // The name is free again (a save without overwrite would be refused).
        await until(
          "the name is free",
          () => tc.saveWeightsForSampler("s").then(() => true, () => false),
        );
        await rest.setCheckpointTtl(s, 1);
        await new Promise((r) => setTimeout(r, 1200));
        assert.ok(
          !(await rest.listCheckpoints(tc.runId)).some((c) => c.path === s),
        );
        await assert.rejects(rest.getWeightsInfo(s), NotFoundError);
      },
    );

    await t.step("deleteCheckpoint", async () => {
      await rest.deleteCheckpoint(a);
      assert.deepEqual(
        (await rest.listCheckpoints(tc.runId)).map((c) => c.path),
        [b],
      );
      await assert.rejects(tc.loadState(a).result(), NotFoundError);
      await assert.rejects(rest.deleteCheckpoint(a), NotFoundError);
      await assert.rejects(
        rest.deleteCheckpoint("bios://x/y/z"),
        InvalidArgumentError,
      );
      assert.equal(
        (await rest.getTrainingRun(tc.runId)).lastCheckpoint?.path,
        b,
      );
      await tc.loadState(b);
    });
  } finally {
    await ts.close();
  }
});
