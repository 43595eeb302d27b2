// The JetStream object-store storage alone, on a real nats-server with
// JetStream: round trips, saves killed between objects, tampered objects,
// overwrites racing readers, and two saves racing for one name.
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { NatsServer, natsTestsIgnored } from "../runtime/_nats_server.ts";
import { ObjectCheckpointStorage } from "./checkpoint_object_store.ts";
import {
  type CheckpointData,
  type SaveStep,
  SimulatedCrash,
} from "./checkpoint_files.ts";
import { CorruptCheckpointError } from "./checkpoint_verify.ts";
import { ConflictError, NotFoundError } from "../runtime/errors.ts";
import type { CheckpointPathParts } from "../protocol/types/checkpoint_path.ts";

const ignore = await natsTestsIgnored();
const RUN = "run-1";
const A = "base_model.model.lm_head.lora_A.weight";
const B = "base_model.model.lm_head.lora_B.weight";

/** A small self-consistent checkpoint whose every number depends on `version`. */
function data(
  name: string,
  version: number,
  kind: "weights" | "sampler_weights" = "weights",
): CheckpointData {
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
      kind,
      name,
      baseModel: "test/tiny",
      lora: { rank: 2, alpha: 4, dropout: 0, targets: ["lm_head"], seed: 1 },
      step: version,
      seq: version,
    },
    params,
    optimizer: kind === "weights" ? { m: params, v: params } : undefined,
  };
}

const at = (name: string): CheckpointPathParts => ({
  runId: RUN,
  kind: "weights",
  name,
});

/** A JetStream server, two storages on one bucket (two "nodes") and raw access. */
async function withBucket(
  body: (c: {
    store: ObjectCheckpointStorage;
    other: ObjectCheckpointStorage;
    objects: () => Promise<string[]>;
    put: (name: string, bytes: Uint8Array) => Promise<void>;
    get: (name: string) => Promise<Uint8Array | null>;
    withFault: (f: (s: SaveStep) => void) => Promise<ObjectCheckpointStorage>;
  }) => Promise<void>,
): Promise<void> {
  const server = await NatsServer.start(undefined, [], { jetstream: true });
  const nc = await connect({ servers: server.url });
  const nc2 = await connect({ servers: server.url });
  try {
    const bucket = "ckpt-test";
    const store = await ObjectCheckpointStorage.open(nc, bucket);
    const other = await ObjectCheckpointStorage.open(nc2, bucket);
    const os = await new Objm(nc).open(bucket);
    await body({
      store,
      other,
      objects: async () => (await os.list()).map((o) => o.name).sort(),
      put: async (name, bytes) => {
        await os.putBlob({ name }, bytes);
      },
      get: (name) => os.getBlob(name),
      withFault: (fault) =>
        ObjectCheckpointStorage.open(nc, bucket, { fault, staleMs: 0 }),
    });
  } finally {
    await nc.close();
    await nc2.close();
    await server.stop();
  }
}

/** The version `name` loads as through `s`, or undefined when there is none. */
async function loaded(
  s: ObjectCheckpointStorage,
  name: string,
): Promise<number | undefined> {
  try {
    const ck = await s.load(at(name), true);
    assert.deepEqual(ck.params, data(name, ck.manifest.step).params);
    assert.deepEqual(ck.optimizer?.v, data(name, ck.manifest.step).params);
    return ck.manifest.step;
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

const crashAt = (step: SaveStep) => (s: SaveStep) => {
  if (s === step) throw new SimulatedCrash(s);
};

Deno.test({
  name:
    "object store: save, load, info, list and remove round-trip; another connection sees the same",
  ignore,
  fn: () =>
    withBucket(async ({ store, other, objects }) => {
      const m = await store.save(data("a", 1), { overwrite: false });
      await store.save(data("s", 2, "sampler_weights"), { overwrite: false });
      assert.equal(await loaded(other, "a"), 1);
      const s = await other.load(
        { runId: RUN, kind: "sampler_weights", name: "s" },
        false,
      );
      assert.deepEqual(s.params, data("s", 2).params);
      assert.deepEqual(await other.info(at("a")), m);
      assert.ok(await other.exists(at("a")));
      const list = await other.list(RUN);
      assert.deepEqual(list.map((e) => e.path), [
        `bios://${RUN}/weights/a`,
        `bios://${RUN}/sampler_weights/s`,
      ]);
      assert.ok(list.every((e) => e.sizeBytes > 100), JSON.stringify(list));
      assert.deepEqual(await other.list("run-2"), []);
      // The objects are named by path: files in a version folder, record last.
      const names = await objects();
      assert.ok(names.includes(`${RUN}/weights/a/checkpoint_complete`));
      assert.equal(
        names.filter((n) => n.startsWith(`${RUN}/weights/a/`)).length,
        5,
        names.join("\n"),
      );
      await assert.rejects(
        () =>
          store.load({ runId: RUN, kind: "sampler_weights", name: "s" }, true),
        { name: "InvalidArgumentError", message: /holds no optimizer state/ },
      );
      await store.remove(at("a"));
      assert.equal(await loaded(other, "a"), undefined);
      assert.ok(!await other.exists(at("a")));
      assert.deepEqual((await other.list(RUN)).map((e) => e.name), ["s"]);
      assert.deepEqual(
        (await objects()).filter((n) => n.startsWith(`${RUN}/weights/a/`)),
        [],
      );
      await assert.rejects(() => store.remove(at("a")), NotFoundError);
      await assert.rejects(() => store.info(at("a")), {
        name: "NotFoundError",
        message: `path bios://${RUN}/weights/a names no checkpoint`,
      });
      // The name is free again.
      await store.save(data("a", 3), { overwrite: false });
      assert.equal(await loaded(other, "a"), 3);
    }),
});

Deno.test({
  name:
    "object store: a save killed between objects is invisible to list, load and exists; recovery sweeps what it left",
  ignore,
  fn: () =>
    withBucket(async ({ store, objects, withFault }) => {
      const steps: SaveStep[] = [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "manifest.json",
      ];
      for (const step of steps) {
        const s = await withFault(crashAt(step));
        await assert.rejects(
          () => s.save(data("p", 1), { overwrite: false }),
          SimulatedCrash,
        );
        assert.ok(
          (await objects()).some((n) => n.startsWith(`${RUN}/weights/p/`)),
          `the crash at ${step} left objects`,
        );
        assert.equal(await loaded(store, "p"), undefined, step);
        assert.ok(!await store.exists(at("p")), step);
        assert.deepEqual(await store.list(RUN), [], step);
        await assert.rejects(() => store.info(at("p")), NotFoundError);
        // A fresh node's recovery (age threshold 0) removes the orphans.
        assert.deepEqual(await s.recover(), []);
        assert.deepEqual(await objects(), [], step);
      }
      // An ordinary failure between objects cleans up at once.
      const failing = await withFault((s) => {
        if (s === "adapter_model.safetensors") throw new Error("disk gone");
      });
      await assert.rejects(
        () => failing.save(data("p", 1), { overwrite: false }),
        /disk gone/,
      );
      assert.deepEqual(await objects(), []);
      // Recovery with the default threshold keeps a young orphan: it may be
      // a save still running on another node.
      await assert.rejects(
        () =>
          withFault(crashAt("manifest.json")).then((s) =>
            s.save(data("p", 1), { overwrite: false })
          ),
        SimulatedCrash,
      );
      const before = await objects();
      assert.deepEqual(await store.recover(), []);
      assert.deepEqual(await objects(), before);
    }),
});

Deno.test({
  name:
    "object store: a tampered object is refused by hash, and listing agrees with loading",
  ignore,
  fn: () =>
    withBucket(async ({ store, objects, put, get }) => {
      const cases: {
        what: string;
        tamper: (version: string, name: string) => Promise<void>;
        listed: boolean;
        message: RegExp;
      }[] = [{
        what: "an adapter file",
        tamper: async (v) => {
          const f = `${v}/adapter_model.safetensors`;
          const bytes = (await get(f))!.slice();
          bytes[bytes.length - 1] ^= 1;
          await put(f, bytes);
        },
        listed: true,
        message: /file adapter_model\.safetensors does not match its sha256/,
      }, {
        what: "an optimizer file",
        tamper: (v) => put(`${v}/optimizer.safetensors`, new Uint8Array(9)),
        listed: true,
        message: /file optimizer\.safetensors does not match its sha256/,
      }, {
        what: "the manifest",
        tamper: async (v) => {
          const f = `${v}/manifest.json`;
          const text = new TextDecoder().decode((await get(f))!);
          await put(
            f,
            new TextEncoder().encode(text.replace('"step": 1', '"step": 9')),
          );
        },
        listed: false,
        message:
          /manifest\.json does not match the sha256 in checkpoint_complete/,
      }, {
        what: "a record naming another version",
        tamper: (_, name) =>
          put(
            `${RUN}/weights/${name}/checkpoint_complete`,
            new TextEncoder().encode(
              JSON.stringify({ manifest_sha256: "0".repeat(64) }),
            ),
          ),
        listed: false,
        message: /manifest\.json is missing/,
      }, {
        what: "a missing data file",
        tamper: async (v) => {
          await put(`${v}/adapter_config.json`, new Uint8Array());
        },
        listed: true,
        message: /adapter_config\.json does not match its sha256/,
      }];
      for (const [i, c] of cases.entries()) {
        const name = `t${i}`;
        await store.save(data(name, 1), { overwrite: false });
        const version = (await objects()).find((n) =>
          n.startsWith(`${RUN}/weights/${name}/`) &&
          n.endsWith("/manifest.json")
        )!.replace(/\/manifest\.json$/, "");
        await c.tamper(version, name);
        await assert.rejects(
          () => store.load(at(name), true),
          (e: Error) => {
            assert.ok(e instanceof CorruptCheckpointError, e.message);
            assert.match(e.message, c.message);
            assert.match(
              e.message,
              new RegExp(`bios://${RUN}/weights/${name}`),
            );
            return true;
          },
          c.what,
        );
        assert.equal(
          (await store.list(RUN)).some((e) => e.name === name),
          c.listed,
          c.what,
        );
        // A new save over it is whole again.
        await store.save(data(name, 2), { overwrite: true });
        assert.equal(await loaded(store, name), 2, c.what);
      }
    }),
});

Deno.test({
  name:
    "object store: an overwrite keeps the old checkpoint loadable, by another node, until the new one is complete",
  ignore,
  fn: () =>
    withBucket(async ({ store, other, objects, withFault }) => {
      await store.save(data("o", 1), { overwrite: false });
      // Read at every step of the overwrite through the other connection.
      const steps: SaveStep[] = [];
      const reads: Promise<number | undefined>[] = [];
      const probe = await withFault((s) => {
        steps.push(s);
        reads.push(loaded(other, "o"));
      });
      await probe.save(data("o", 2), { overwrite: true });
      const got = await Promise.all(reads);
      assert.deepEqual(steps, [
        "adapter_config.json",
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "manifest.json",
        "new-in-place",
        "old-removed",
      ]);
      // A read started at a step before the record is put sees 1 (or 2, if
      // it ends after the put), never a mix and never an error; one started
      // after the put sees 2.
      for (const [i, v] of got.entries()) {
        assert.ok(v === 1 || v === 2, `${steps[i]}: ${v}`);
        if (steps[i] === "new-in-place" || steps[i] === "old-removed") {
          assert.equal(v, 2, steps[i]);
        }
      }
      // Killed at each step before the record: the old one stays.
      for (
        const step of [
          "adapter_config.json",
          "adapter_model.safetensors",
          "optimizer.safetensors",
          "manifest.json",
        ] as const
      ) {
        const s = await withFault(crashAt(step));
        await assert.rejects(
          () => s.save(data("o", 3), { overwrite: true }),
          SimulatedCrash,
        );
        assert.equal(await loaded(other, "o"), 2, step);
        assert.deepEqual((await other.list(RUN)).map((e) => e.name), ["o"]);
        assert.deepEqual(await s.recover(), []);
        assert.equal(await loaded(other, "o"), 2, step);
      }
      // Killed once the record is in, before the old version is deleted:
      // the new one loads; recovery deletes the old version.
      const late = await withFault(crashAt("new-in-place"));
      await assert.rejects(
        () => late.save(data("o", 4), { overwrite: true }),
        SimulatedCrash,
      );
      assert.equal(await loaded(other, "o"), 4);
      const under = async () =>
        (await objects()).filter((n) => n.startsWith(`${RUN}/weights/o/`));
      assert.equal((await under()).length, 9, (await under()).join("\n"));
      assert.deepEqual(await late.recover(), []);
      assert.equal((await under()).length, 5);
      assert.equal(await loaded(other, "o"), 4);
      // Without overwrite, a taken name is refused and nothing is left over.
      await assert.rejects(
        () => store.save(data("o", 5), { overwrite: false }),
        (e: Error) => {
          assert.ok(e instanceof ConflictError, e.message);
          assert.match(e.message, /is taken/);
          return true;
        },
      );
      assert.equal((await under()).length, 5);
      assert.equal(await loaded(other, "o"), 4);
    }),
});

Deno.test({
  name:
    "object store: of two nodes saving one free name at once exactly one wins; overwrites race to one whole checkpoint",
  ignore,
  fn: () =>
    withBucket(async ({ store, other, objects }) => {
      for (let round = 0; round < 5; round++) {
        const name = `race${round}`;
        const results = await Promise.allSettled([
          store.save(data(name, 1), { overwrite: false }),
          other.save(data(name, 2), { overwrite: false }),
        ]);
        const won = results.filter((r) => r.status === "fulfilled");
        assert.equal(won.length, 1, JSON.stringify(results));
        const lost = results.find((r) => r.status === "rejected")!;
        assert.ok(lost.reason instanceof ConflictError, String(lost.reason));
        const v = await loaded(store, name);
        const winner = results[0].status === "fulfilled" ? 1 : 2;
        assert.equal(v, winner);
        const under = (await objects()).filter((n) =>
          n.startsWith(`${RUN}/weights/${name}/`)
        );
        assert.equal(under.length, 5, under.join("\n"));
      }
      await Promise.all([
        store.save(data("race0", 7), { overwrite: true }),
        other.save(data("race0", 8), { overwrite: true }),
      ]);
      const v = await loaded(store, "race0");
      assert.ok(v === 7 || v === 8);
      const under = (await objects()).filter((n) =>
        n.startsWith(`${RUN}/weights/race0/`)
      );
      assert.equal(under.length, 5, under.join("\n"));
    }),
});
