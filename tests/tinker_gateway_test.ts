/**
 * The official Tinker SDK, unmodified, trains and samples on Bios through the
 * HTTP gateway, in both wire versions: 0.24.1 (JSON) and 0.25.0 (protobuf
 * forward_backward and results). `deno task serve` runs as a real process on
 * a free port; tests/tinker_gateway_sdk.py drives the SDK through each flow,
 * once per version on the same gateway (vendored runner; a version it cannot
 * run here is skipped in one line, failing under `BIOS_REQUIRE_ALL=1`;
 * likewise the `forward_backward_custom` flow where torch cannot be installed
 * into the runner's torch venv). The auth, tenant and limit checks that need no SDK
 * speak HTTP directly. With `BIOS_TEST_DEPLOYMENT=nats` the gateway joins a
 * nats-server and a node process instead of running an embedded node.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type ChunkMsg,
  DType,
  ForwardBackwardOutputSchema,
  ForwardBackwardRequestSchema,
} from "../server/proto/schema.ts";
import { runTinkerSdk, tinkerSdkForTests } from "./_tinker_sdk_python.ts";
import {
  type GatewayProcess,
  gatewayRefusal,
  startTestGateway,
} from "./_gateway_process.ts";

/**
 * The SDK versions every flow runs with, on one gateway: 0.24.1 sends JSON
 * (and `forward` on its own route); 0.25.0 sends `forward_backward` and
 * `forward` as protobuf and takes ForwardBackwardOutput and SampleResponse
 * only as protobuf. A version the runner cannot run here is skipped alone.
 */
const SDKS = ["0.24.1", "0.25.0"] as const;
type SdkVersion = typeof SDKS[number];
const probes = await Promise.all(
  SDKS.map((v) => tinkerSdkForTests(`Tinker SDK ${v} gateway tests`, v)),
);
/** forward_backward_custom needs torch in the SDK's venv (its own, kept). */
const torchProbes = await Promise.all(
  SDKS.map((v) =>
    tinkerSdkForTests(`Tinker SDK ${v} forward_backward_custom`, v, {
      torch: true,
    })
  ),
);

const KEY_A = "tml-tenant-a-0123456789";
const KEY_B = "tml-tenant-b-0123456789";

/** A gateway with two tenants' keys (one given as its sha256 only). */
async function twoTenantGateway(
  extra: string[] = [],
): Promise<GatewayProcess> {
  const keys = await Deno.makeTempFile({ suffix: ".json" });
  const hashB = Array.from(
    new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(KEY_B)),
    ),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
  await Deno.writeTextFile(
    keys,
    JSON.stringify({
      keys: [{ tenant: "a", key: KEY_A }, { tenant: "b", sha256: hashB }],
    }),
  );
  try {
    return await startTestGateway(["--keys", keys, ...extra]);
  } finally {
    await Deno.remove(keys);
  }
}

function sdk<T>(
  version: SdkVersion,
  mode: string,
  gw: GatewayProcess,
  key: string,
  ...args: string[]
) {
  return runTinkerSdk<T>(version, "tinker_gateway_sdk.py", [
    mode,
    gw.url,
    key,
    ...args,
  ]);
}

interface Failure {
  type: string;
  message: string;
  category: string;
  status: number | null;
}

/** Every SDK flow, in `version`, against `gw`. */
async function sdkFlows(
  t: Deno.TestContext,
  gw: GatewayProcess,
  version: SdkVersion,
  withTorch: boolean,
): Promise<void> {
  await t.step(
    "a pipelined supervised loop, save_state, load_state, save_weights_for_sampler, sampling with stop and logprobs",
    async () => {
      const r = await sdk<{
        "sdk_version": string;
        "model_id": string;
        "lora_rank": number;
        "model_name": string;
        losses: number[];
        "logprobs_len": number[];
        saved: string;
        "after_save": number;
        moved: number;
        "loaded_path": string;
        "after_load": number;
        "after_load_opt": number;
        "sampler_path": string;
        greedy: {
          tokens: number[];
          "stop_reason": string;
          logprobs: number[];
        };
        "stop_at": number;
        stopped: {
          tokens: number[];
          "stop_reason": string;
          logprobs: number[];
        };
        "compute_logprobs": (number | null)[];
        ephemeral: number[][];
        "resumed_id": string;
        "resumed_loss": number;
      }>(version, "supervised", gw, KEY_A);
      assert.equal(r.sdk_version, version, "the runner ran that SDK");
      assert.equal(r.lora_rank, 8);
      assert.equal(r.model_name, "test/tiny");
      const l = r.losses;
      assert.equal(l.length, 6);
      assert.ok(l.every(Number.isFinite), `losses ${l}`);
      assert.ok(l[3] < l[0] * 0.6 && l[5] < l[0] * 0.6, `loss falls: ${l}`);
      assert.deepEqual(r.logprobs_len, [13, 13]);
      assert.equal(r.saved, `tinker://${r.model_id}/weights/step6`);
      assert.notEqual(
        r.moved,
        r.after_save,
        "a further step changed the weights",
      );
      assert.equal(r.loaded_path, r.saved);
      assert.equal(
        r.after_load,
        r.after_save,
        "load_state restores the weights",
      );
      assert.equal(r.after_load_opt, r.after_save);
      assert.equal(
        r.sampler_path,
        `tinker://${r.model_id}/sampler_weights/final`,
      );
      assert.ok(r.greedy.tokens.length >= 1);
      assert.equal(r.greedy.logprobs.length, r.greedy.tokens.length);
      assert.equal(r.stopped.stop_reason, "stop");
      assert.ok(
        r.stopped.tokens.length < r.greedy.tokens.length ||
          r.greedy.tokens.length === 1,
      );
      assert.deepEqual(
        r.stopped.tokens,
        r.greedy.tokens.slice(0, r.stopped.tokens.length),
      );
      assert.ok(r.stopped.logprobs.every((x) => x <= 0));
      assert.equal(r.compute_logprobs[0], null);
      assert.equal(r.compute_logprobs.length, 11);
      assert.ok(
        r.compute_logprobs.slice(1).every((x) => x !== null && x < 0),
      );
      // The ephemeral sampler samples the same weights: greedy agrees.
      assert.deepEqual(
        r.ephemeral[0],
        r.greedy.tokens.slice(0, r.ephemeral[0].length),
      );
      assert.notEqual(r.resumed_id, r.model_id);
      assert.equal(
        r.resumed_loss,
        r.after_save,
        "a client from the state has its weights",
      );
    },
  );

  await t.step(
    "sampling a base model: num_samples, seed, prompt logprobs, top-k, compute_logprobs",
    async () => {
      const r = await sdk<{
        sequences: {
          tokens: number[];
          logprobs: number[];
          "stop_reason": string;
        }[];
        again: number[][];
        "prompt_len": number;
        "prompt_logprobs": (number | null)[];
        topk: ([number, number][] | null)[];
        "compute_logprobs": (number | null)[];
        "base_model": string;
      }>(version, "base", gw, KEY_A);
      assert.equal(r.sequences.length, 3);
      for (const s of r.sequences) {
        assert.equal(s.tokens.length, 5);
        assert.equal(s.stop_reason, "length");
        assert.equal(s.logprobs.length, 5);
      }
      assert.deepEqual(
        r.again,
        r.sequences.map((s) => s.tokens),
        "a seed repeats",
      );
      assert.equal(r.prompt_logprobs.length, r.prompt_len);
      assert.equal(r.prompt_logprobs[0], null);
      assert.equal(r.topk.length, r.prompt_len);
      assert.equal(r.topk[0], null);
      assert.ok(r.topk.slice(1).every((k) => k?.length === 2));
      assert.deepEqual(r.compute_logprobs, r.prompt_logprobs);
      assert.equal(r.base_model, "test/tiny");
    },
  );

  await t.step("the async API (*_async, double await)", async () => {
    const r = await sdk<{
      losses: number[];
      "forward_loss": number;
      path: string;
      tokens: number[][];
      models: string[];
    }>(version, "async", gw, KEY_A);
    assert.equal(r.losses.length, 4);
    assert.ok(r.losses[3] < r.losses[0], `loss falls: ${r.losses}`);
    assert.ok(r.forward_loss < r.losses[0]);
    assert.match(
      r.path,
      /^tinker:\/\/run-[0-9a-f]+\/sampler_weights\/async$/,
    );
    assert.equal(r.tokens.length, 2);
    assert.deepEqual(r.tokens[0], r.tokens[1], "greedy twice is the same");
    assert.ok(r.models.includes("test/tiny"));
  });

  await t.step({
    name:
      "forward_backward_custom (sync and async): -Σ logprob·w in torch takes cross_entropy's step; a signed loss lowers one target and raises the other",
    ignore: !withTorch,
    fn: async () => {
      type Metrics = Record<string, number>;
      const r = await runTinkerSdk<{
        "ce_metrics": Metrics;
        "custom_metrics": Metrics;
        "ce_logprobs": number[][];
        "custom_logprobs": number[][];
        "ce_next": number[][];
        "custom_next": number[][];
        "ce_next_loss": number;
        "custom_next_loss": number;
        "logprob_shapes": number[][];
        "signed_metrics": Metrics;
        "signed_before": number[][];
        "signed_after": number[][];
      }>(version, "tinker_gateway_sdk.py", ["custom", gw.url, KEY_A], {
        torch: true,
      });
      const close = (a: number, b: number, what: string) =>
        assert.ok(
          Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)),
          `${what}: ${a} vs ${b}`,
        );
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      // The forward's logprobs reached the loss in their shape, one per target.
      assert.deepEqual(r.logprob_shapes, [[13], [13]]);
      assert.deepEqual(r.custom_logprobs, r.ce_logprobs);
      // The backward is cross_entropy with weights -dL/dlogprob = w: the same
      // loss, the user's metric merged in beside the server's.
      const ce = r.ce_metrics["loss:sum"];
      assert.equal(r.custom_metrics["loss:sum"], ce);
      assert.equal(r.custom_metrics["num_tokens:sum"], 26);
      close(r.custom_metrics.nll, ce, "the torch loss is the server's");
      // The same step: the next forward is the same on both runs, and lower.
      assert.deepEqual(r.custom_next, r.ce_next);
      assert.equal(r.custom_next_loss, r.ce_next_loss);
      assert.ok(r.ce_next_loss < ce, `${r.ce_next_loss} < ${ce}`);
      // Signed: weights -1 on datum 0 and +1 on datum 1 (sent with no weights,
      // so the SDK's forward sent zeros).
      const m = r.signed_metrics;
      close(m["down:sum"], sum(r.signed_before[0]), "down");
      close(m["up:sum"], sum(r.signed_before[1]), "up");
      close(m["loss:sum"], m["down:sum"] - m["up:sum"], "signed loss");
      assert.ok(
        sum(r.signed_after[0]) < sum(r.signed_before[0]),
        "the step lowered datum 0's target logprobs",
      );
      assert.ok(
        sum(r.signed_after[1]) > sum(r.signed_before[1]),
        "and raised datum 1's",
      );
    },
  });

  await t.step(
    "bad input reaches the script as RequestFailedError with Bios's message, and the run goes on",
    async () => {
      const r = await sdk<Record<string, Failure> & { after: number }>(
        version,
        "errors",
        gw,
        KEY_A,
      );
      const user = (f: Failure | undefined, re: RegExp) => {
        assert.ok(f, "an error was raised");
        assert.equal(f.type, "RequestFailedError", JSON.stringify(f));
        assert.match(f.category, /user/i);
        assert.match(f.message, re);
      };
      user(
        r.bad_token,
        /forward_backward_input\.data\[0\]\.model_input\.tokens\[1\] must be a token id in \[0, 258\].*got 5000/,
      );
      user(
        r.mismatched,
        /forward_backward_input\.data\[0\]\.loss_fn_inputs\.target_tokens must have one value per model-input token \(3\)/,
      );
      user(
        r.huge_target,
        version === "0.24.1"
          ? /forward_backward_input\.data\[0\]\.loss_fn_inputs\.target_tokens\.data\[2\] must be a token id.*got 1099511627776/
          : /data\[0\]\.loss_fn_inputs\.target_tokens\.dense\[2\] must fit in 32 bits.*got 1099511627776/,
      );
      user(
        r.bad_lr,
        /adam_params\.learning_rate must be a finite number in \(0, 10\]: got -1/,
      );
      user(r.missing_checkpoint, /tinker:\/\/run-nope\/weights\/none/);
      user(r.bad_model, /base_model "no\/such-model" is not a known model/);
      user(
        r.too_many_tokens,
        /sampling_params\.max_tokens must be an integer in \[1, 4096\]: got 100000/,
      );
      assert.ok(Number.isFinite(r.after) && r.after > 0);
    },
  );

  await t.step(
    "another tenant's run, sampler and checkpoints are not found",
    async () => {
      const a = await sdk<{
        "model_id": string;
        "sampler_path": string;
        "state_path": string;
      }>(version, "tenant_a", gw, KEY_A);
      const b = await sdk<Record<string, Failure>>(
        version,
        "tenant_b",
        gw,
        KEY_B,
        a.model_id,
        a.sampler_path,
        a.state_path,
      );
      assert.equal(b.get_info?.status, 404, JSON.stringify(b.get_info));
      assert.equal(
        b.sample_other?.status,
        404,
        JSON.stringify(b.sample_other),
      );
      assert.equal(
        b.from_state_other?.status,
        404,
        JSON.stringify(b.from_state_other),
      );
      // Inside a training op of B's own run, A's checkpoint fails the op as missing.
      assert.equal(b.load_other?.type, "RequestFailedError");
      assert.match(b.load_other.message, /no checkpoint "tinker:\/\/run-/);
      // A still reaches its own.
      const res = await fetch(`${gw.url}/api/v1/weights_info`, {
        method: "POST",
        headers: { "x-api-key": KEY_A, "content-type": "application/json" },
        body: JSON.stringify({ "tinker_path": a.state_path }),
      });
      assert.equal(res.status, 200);
      const info = await res.json();
      assert.equal(info.base_model, "test/tiny");
      assert.equal(info.lora_rank, 4);
    },
  );
}

Deno.test({
  name:
    "the Tinker SDK (0.24.1 JSON, 0.25.0 protobuf) through the gateway: supervised loop, checkpoints, sampling, async, forward_backward_custom, errors, tenants",
  ignore: probes.every((p) => p.ignore),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const gw = await twoTenantGateway();
    try {
      for (const [i, version] of SDKS.entries()) {
        await t.step({
          name: `SDK ${version}`,
          ignore: probes[i].ignore,
          fn: (t) => sdkFlows(t, gw, version, !torchProbes[i].ignore),
        });
      }
    } finally {
      assert.equal(await gw.stop(), 0, "the gateway stops cleanly on SIGTERM");
    }
  },
});

Deno.test({
  name:
    "the gateway's edge: keys, 401/400/404/413/429 as JSON, refusing to start without keys",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await t.step(
      "no keys and no --insecure-no-auth: it refuses to start",
      async () => {
        const r = await gatewayRefusal([], { BIOS_API_KEYS: "" });
        assert.equal(r.code, 2);
        assert.match(
          r.stderr,
          /no API keys: give --keys FILE or BIOS_API_KEYS/,
        );
        const bad = await gatewayRefusal([], {
          BIOS_API_KEYS: "sk-not-tinker-000000",
        });
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /must start with "tml-"/);
      },
    );
    const gw = await twoTenantGateway([
      "--rate-limit",
      "1",
      "--rate-burst",
      "6",
      "--max-body-bytes",
      "2048",
    ]);
    const post = (path: string, body: unknown, key: string | null = KEY_A) =>
      fetch(`${gw.url}/api/v1/${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key !== null ? { "x-api-key": key } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    try {
      await t.step(
        "401 without a key or with an unknown one; healthz is open",
        async () => {
          const none = await post("client/config", {}, null);
          assert.equal(none.status, 401);
          assert.match((await none.json()).error, /API key is required/);
          const wrong = await post(
            "client/config",
            {},
            "tml-mallory-000000000",
          );
          assert.equal(wrong.status, 401);
          assert.match((await wrong.json()).error, /not known/);
          const h = await fetch(`${gw.url}/api/v1/healthz`);
          assert.deepEqual(await h.json(), { status: "ok" });
        },
      );
      await t.step(
        "client/config, 400 naming the field, 404 for another tenant's session, 413 over the body limit",
        async () => {
          const cfg =
            await (await post("client/config", { "sdk_version": "0.24.1" }))
              .json();
          assert.equal(cfg.use_pyqwest_transport, false);
          const s = await (await post("create_session", { tags: [] })).json();
          assert.equal(typeof s.session_id, "string");
          const missing = await post("session_heartbeat", {});
          assert.equal(missing.status, 400);
          assert.deepEqual(await missing.json(), {
            error: "session_id is required and must be a string id",
            field: "session_id",
          });
          const notJson = await post("session_heartbeat", "{nope");
          assert.equal(notJson.status, 400);
          assert.match((await notJson.json()).error, /must be JSON/);
          const other = await post("session_heartbeat", {
            "session_id": s.session_id,
          }, KEY_B);
          assert.equal(other.status, 404);
          assert.match((await other.json()).error, /no session/);
          const big = await post("create_session", {
            tags: ["x".repeat(4096)],
          });
          assert.equal(big.status, 413);
          assert.match((await big.json()).error, /limit of 2048 bytes/);
        },
      );
      await t.step(
        "429 with Retry-After past a tenant's rate; another tenant is not held up",
        async () => {
          let limited: Response | undefined;
          for (let i = 0; i < 10 && !limited; i++) {
            const r = await post("client/config", {});
            if (r.status === 429) limited = r;
            else await r.body?.cancel();
          }
          assert.ok(limited, "the limit was reached");
          assert.ok(Number(limited.headers.get("retry-after")) >= 1);
          assert.match((await limited.json()).error, /rate limit/);
          const b = await post("client/config", {}, KEY_B);
          assert.equal(b.status, 200);
          await b.body?.cancel();
        },
      );
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  },
});

Deno.test({
  name:
    "the gateway orders a run's operations by seq_id however they arrive, long-polls futures, and speaks SDK 0.25's protobuf",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const gw = await startTestGateway([
      "--insecure-no-auth",
      "--poll-hold-s",
      "1",
    ]);
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${gw.url}/api/v1/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.json() };
    };
    const poll = async (id: string) => {
      for (;;) {
        const r = await post("retrieve_future", { "request_id": id });
        assert.equal(r.status, 200);
        if (r.body.type !== "try_again") return r.body;
      }
    };
    try {
      const s = (await post("create_session", {})).body.session_id;
      const created = await post("create_model", {
        "session_id": s,
        "model_seq_id": 0,
        "base_model": "test/tiny",
        "lora_config": { rank: 4, seed: 5 },
      });
      const model = (await poll(created.body.request_id)).model_id;
      const seq = [256, 72, 105, 257];
      const fb = (seqId: number) =>
        post("forward_backward", {
          "model_id": model,
          "seq_id": seqId,
          "forward_backward_input": {
            data: [{
              "model_input": {
                chunks: [{ type: "encoded_text", tokens: seq.slice(0, -1) }],
              },
              "loss_fn_inputs": {
                "target_tokens": {
                  data: seq.slice(1),
                  dtype: "int64",
                  shape: [3],
                },
                weights: { data: [1, 1, 1], dtype: "float32", shape: [3] },
              },
            }],
            "loss_fn": "cross_entropy",
          },
        });
      // seq 2 first: it waits for seq 1, and a poll of it answers try_again after the hold.
      const second = await fb(2);
      assert.equal(second.status, 200);
      const t0 = Date.now();
      const early = await post("retrieve_future", {
        "request_id": second.body.request_id,
      });
      assert.equal(early.body.type, "try_again");
      assert.equal(early.body.queue_state, "active");
      assert.ok(Date.now() - t0 >= 900, "the poll was held");
      const first = await fb(1);
      const r1 = await poll(first.body.request_id);
      const r2 = await poll(second.body.request_id);
      // Both forward_backward on the same weights (no optim_step between): the same loss.
      assert.equal(r1.metrics["loss:sum"], r2.metrics["loss:sum"]);
      assert.equal(r1.loss_fn_outputs[0].logprobs.dtype, "float32");
      assert.deepEqual(r1.loss_fn_outputs[0].logprobs.shape, [3]);
      // A replayed seq_id (a retried submission) is answered, not applied again.
      const again = await poll((await fb(1)).body.request_id);
      assert.deepEqual(again, r1);
      const info = await post("get_info", { "model_id": model });
      assert.equal(info.body.lora_rank, 4);
      // A future this gateway does not hold is gone (410): the SDK takes
      // that as "send the original request again".
      const gone = await post("retrieve_future", { "request_id": "req-nope" });
      assert.equal(gone.status, 410);
      assert.equal(gone.body.field, "request_id");

      // SDK 0.25's side of the wire, over raw HTTP (what the SDK never sends too).
      const dyn = await post("client/dynamic_config", {
        "sdk_version": "0.25.0",
      });
      assert.deepEqual(dyn.body, {
        "refresh_interval_sec": 300,
        "proto_compress_fwdbwd": false,
      });
      const PB = "application/x-protobuf";
      /** Polls with `Accept: application/x-protobuf`: bytes, or a JSON body. */
      const pollPb = async (id: string) => {
        for (;;) {
          const r = await fetch(`${gw.url}/api/v1/retrieve_future`, {
            method: "POST",
            headers: { "content-type": "application/json", accept: PB },
            body: JSON.stringify({ "request_id": id }),
          });
          assert.equal(r.status, 200);
          if (r.headers.get("content-type") === PB) {
            return new Uint8Array(await r.arrayBuffer());
          }
          const j = await r.json();
          if (j.type !== "try_again") return j;
        }
      };
      const asPb = await pollPb(first.body.request_id);
      assert.ok(asPb instanceof Uint8Array, "a result asked as protobuf is");
      const out = fromBinary(ForwardBackwardOutputSchema, asPb);
      assert.equal(out.metrics["loss:sum"], r1.metrics["loss:sum"]);
      assert.equal(out.lossFnOutputs[0].numDatums, 1n);
      assert.deepEqual(
        Array.from(
          new Float32Array(
            out.lossFnOutputs[0].fields.logprobs.data.slice().buffer,
          ),
        ),
        r1.loss_fn_outputs[0].logprobs.data,
      );
      const bytesOf = (a: Int32Array | Float32Array | BigInt64Array) =>
        new Uint8Array(a.buffer);
      const request = (
        seqId: number,
        opts: { forwardOnly?: boolean; image?: boolean } = {},
      ) =>
        toBinary(
          ForwardBackwardRequestSchema,
          create(ForwardBackwardRequestSchema, {
            modelId: model,
            seqId,
            lossFn: "cross_entropy",
            forwardOnly: opts.forwardOnly ?? false,
            data: [{
              modelInput: [
                {
                  chunk: {
                    case: "encodedText",
                    value: {
                      tokens: bytesOf(new Int32Array(seq.slice(0, -1))),
                    },
                  },
                },
                ...(opts.image
                  ? [{
                    chunk: {
                      case: "image",
                      value: {
                        data: new Uint8Array([0x89, 0x50]),
                        format: "png",
                      },
                    },
                  } as unknown as ChunkMsg]
                  : []),
              ],
              lossFnInputs: {
                "target_tokens": {
                  encoding: {
                    case: "dense",
                    value: bytesOf(new BigInt64Array(seq.slice(1).map(BigInt))),
                  },
                  dtype: DType.INT64,
                  shape: [3n],
                },
                weights: {
                  encoding: {
                    case: "dense",
                    value: bytesOf(new Float32Array([1, 1, 1])),
                  },
                  dtype: DType.FLOAT32,
                  shape: [3n],
                },
              },
            }],
          }),
        );
      const postPb = async (
        body: Uint8Array,
        headers: Record<string, string> = {},
      ) => {
        const r = await fetch(`${gw.url}/api/v1/forward_backward`, {
          method: "POST",
          headers: { "content-type": PB, ...headers },
          body: body as Uint8Array<ArrayBuffer>,
        });
        return { status: r.status, body: await r.json() };
      };
      // forward_only is a forward at its seq_id: the same loss (no step since).
      const fwd = await postPb(request(3, { forwardOnly: true }));
      assert.equal(fwd.status, 200);
      assert.equal(fwd.body.model_id, model);
      const r3 = await poll(fwd.body.request_id);
      assert.equal(r3.metrics["loss:sum"], r1.metrics["loss:sum"]);
      // A body the decoder refuses, with a readable head, takes its seq_id and
      // fails its future naming the field (as JSON, whatever the Accept)...
      const image = await postPb(request(4, { image: true }));
      assert.equal(image.status, 200);
      const refused = await pollPb(image.body.request_id);
      assert.equal(refused.category, "user");
      assert.match(
        refused.error,
        /data\[0\]\.model_input\[1\]\.image is an image chunk: Bios trains text models only/,
      );
      // ...so the run goes on at the next seq_id.
      const r5 = await poll((await fb(5)).body.request_id);
      assert.equal(r5.metrics["loss:sum"], r1.metrics["loss:sum"]);
      // A bad head, unreadable bytes, a compressed body: 400 at once, naming why.
      const noSeq = await postPb(request(0));
      assert.equal(noSeq.status, 400);
      assert.equal(noSeq.body.field, "seq_id");
      const cut = await postPb(request(6).slice(0, 20));
      assert.equal(cut.status, 400, JSON.stringify(cut.body));
      assert.match(cut.body.error, /truncated/);
      assert.equal(typeof cut.body.field, "string");
      const zstd = await postPb(request(6), { "content-encoding": "zstd" });
      assert.equal(zstd.status, 400);
      assert.match(zstd.body.error, /uncompressed body/);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  },
});
