/**
 * The official Tinker SDK's RestClient (0.24.1 and 0.25.0, unmodified; the
 * REST calls are JSON in both) against the gateway, as a real process with
 * two tenants' keys: tests/tinker_rest_sdk.py lists runs and checkpoints,
 * reads weights info, sets and clears a TTL, lets one expire, downloads the
 * archive (no key) and checks its hashes, deletes; then the other tenant
 * gets a 404 for every call on that run and its checkpoints, and what it
 * tried changed nothing. A version the runner cannot run here is skipped in
 * one line (failing under `BIOS_REQUIRE_ALL=1`).
 */
import assert from "node:assert/strict";
import { runTinkerSdk, tinkerSdkForTests } from "./_tinker_sdk_python.ts";
import { startTestGateway } from "./_gateway_process.ts";

const SDKS = ["0.24.1", "0.25.0"];

const KEY_A = "tml-rest-tenant-a-0123456789";
const KEY_B = "tml-rest-tenant-b-0123456789";

interface Failure {
  type: string;
  status: number | null;
}

interface Listed {
  "checkpoint_id": string;
  "checkpoint_type": string;
  "tinker_path": string;
  "size_bytes": number;
  public: boolean;
  "expires_at": string | null;
}

interface OwnerSeen {
  "model_id": string;
  paths: { a: string; s: string; b: string };
  runs: { ids: string[]; total: number };
  run: Record<string, unknown>;
  "by_path": string;
  listed: Listed[];
  user: { paths: string[]; total: number };
  info: Record<string, unknown>;
  "with_ttl": Record<string, string | null>;
  "bad_ttl": Failure | null;
  cleared: (string | null)[];
  archive: {
    url: string;
    expires: string;
    names: string[];
    "manifest_name": string;
    "hashes_ok": boolean;
  };
  "after_expiry": string[];
  "expired_info": Failure | null;
  "after_delete": string[];
  "delete_again": Failure | null;
  "load_deleted": Failure | null;
}

for (const SDK of SDKS) {
  const probe = await tinkerSdkForTests(
    `Tinker SDK ${SDK} RestClient tests`,
    SDK,
  );
  Deno.test({
    name:
      `Tinker SDK ${SDK} RestClient: runs, checkpoints, weights info, TTL, archive, delete; another tenant's is a 404`,
    ignore: probe.ignore,
    async fn() {
      const keys = await Deno.makeTempFile({ suffix: ".json" });
      await Deno.writeTextFile(
        keys,
        JSON.stringify({
          keys: [{ tenant: "a", key: KEY_A }, { tenant: "b", key: KEY_B }],
        }),
      );
      const gw = await startTestGateway(["--keys", keys]).finally(() =>
        Deno.remove(keys)
      );
      try {
        const seen = await runTinkerSdk<OwnerSeen>(SDK, "tinker_rest_sdk.py", [
          "owner",
          gw.url,
          KEY_A,
        ]);
        const { a, s, b } = seen.paths;
        const run = seen.model_id;
        assert.deepEqual(seen.runs, { ids: [run], total: 1 });
        assert.deepEqual(seen.run, {
          "training_run_id": run,
          "base_model": "test/tiny",
          "is_lora": true,
          "lora_rank": 4,
          "last_checkpoint": b,
          "last_sampler_checkpoint": "sampler_weights/s",
        });
        assert.equal(seen.by_path, run);
        assert.deepEqual(
          seen.listed.map((c) => [c.checkpoint_id, c.checkpoint_type]),
          [
            ["weights/a", "training"],
            ["sampler_weights/s", "sampler"],
            ["weights/b", "training"],
          ],
        );
        assert.deepEqual(seen.listed.map((c) => c.tinker_path), [a, s, b]);
        assert.ok(seen.listed.every((c) => c.size_bytes > 0 && !c.public));
        assert.ok(seen.listed.every((c) => c.expires_at === null));
        assert.deepEqual(seen.user, { paths: [b, s], total: 3 });
        assert.deepEqual(seen.info, {
          "base_model": "test/tiny",
          "is_lora": true,
          "lora_rank": 4,
        });
        const ttl = Date.parse(seen.with_ttl[a]!);
        assert.ok(Math.abs(ttl - (Date.now() + 3_600_000)) < 120_000);
        assert.equal(seen.with_ttl[b], null);
        assert.deepEqual(seen.bad_ttl, {
          type: "BadRequestError",
          status: 400,
        });
        assert.deepEqual(seen.cleared, [null]);
        assert.ok(seen.archive.url.startsWith(`${gw.url}/api/v1/`));
        assert.ok(Date.parse(seen.archive.expires) > Date.now());
        assert.deepEqual(seen.archive.names, [
          "adapter_config.json",
          "adapter_model.safetensors",
          "checkpoint_complete",
          "manifest.json",
          "optimizer.safetensors",
        ]);
        assert.equal(seen.archive.manifest_name, "a");
        assert.equal(seen.archive.hashes_ok, true);
        assert.deepEqual(seen.after_expiry, [a, b]);
        assert.equal(seen.expired_info?.status, 404);
        assert.deepEqual(seen.after_delete, [a]);
        assert.equal(seen.delete_again?.status, 404);
        assert.notEqual(seen.load_deleted, null);

        // Tenant b: a 404 for each call on a's run and checkpoint.
        const other = await runTinkerSdk<Record<string, unknown>>(
          SDK,
          "tinker_rest_sdk.py",
          ["stranger", gw.url, KEY_B, run, a],
        );
        const notFound = { type: "NotFoundError", status: 404 };
        assert.deepEqual(other, {
          "runs_total": 0,
          "user_total": 0,
          "get_run": notFound,
          list: notFound,
          info: notFound,
          ttl: notFound,
          archive: notFound,
          delete: notFound,
        });
        // And it changed nothing: a's checkpoint is there, with no expiry.
        const res = await fetch(
          `${gw.url}/api/v1/training_runs/${run}/checkpoints`,
          { headers: { "X-API-Key": KEY_A } },
        );
        const listed = (await res.json()).checkpoints as Listed[];
        assert.deepEqual(
          listed.map((c) => [c.tinker_path, c.expires_at]),
          [[a, null]],
        );
        // An archive URL that is not one is a 404, key or not.
        const bogus = await fetch(`${gw.url}/api/v1/checkpoint_archives/x`);
        assert.equal(bogus.status, 404);
        await bogus.body?.cancel();
      } finally {
        await gw.stop();
      }
    },
  });
}
