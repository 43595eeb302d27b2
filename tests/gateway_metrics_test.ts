/**
 * The gateway's metrics: `/metrics` after training steps, a refusal and
 * samples through the Tinker wire shows the counters moved by exactly what
 * was done and parses as the exposition format; each run's metrics.jsonl
 * has one line per optimizer step with the losses the client got; the
 * metrics registry's own rules. The app runs in this process (hono's
 * `app.request`) over a test service (embedded, or NATS with
 * `BIOS_TEST_DEPLOYMENT=nats`).
 */
import assert from "node:assert/strict";
import { createApp } from "../server/app.ts";
import { KeyRing } from "../server/auth/keys.ts";
import { Gateway } from "../server/gateway.ts";
import { MetricsRegistry } from "../server/metrics/registry.ts";
import { parseExposition } from "./_prometheus_text.ts";
import { startTestService, TINY } from "./_helpers.ts";

const KEY_A = "tml-metrics-a-0123456789";
const KEY_B = "tml-metrics-b-0123456789";
const LOOPBACK = {
  remoteAddr: { hostname: "127.0.0.1", port: 40000, transport: "tcp" },
};
const REMOTE = {
  remoteAddr: { hostname: "10.1.2.3", port: 40000, transport: "tcp" },
};

Deno.test("the metrics registry: exposition text, label escaping, histogram buckets", () => {
  const m = new MetricsRegistry();
  const c = m.counter("t_total", "A counter.\nTwo lines.", ["route"]);
  const h = m.histogram("t_seconds", "A histogram.", ["route"], [0.1, 1]);
  const g = m.gauge("t_depth", "A gauge.");
  c.inc({ route: 'a"b\\c\nd' }, 2);
  h.observe({ route: "/x" }, 0.05);
  h.observe({ route: "/x" }, 0.5);
  h.observe({ route: "/x" }, 5);
  g.set({}, -3);
  const text = m.render();
  const e = parseExposition(text);
  assert.equal(e.value("t_total", { route: 'a"b\\c\nd' }), 2);
  assert.ok(text.includes('t_total{route="a\\"b\\\\c\\nd"} 2'));
  assert.ok(text.includes("# HELP t_total A counter.\\nTwo lines."));
  assert.equal(e.value("t_seconds_bucket", { route: "/x", le: "0.1" }), 1);
  assert.equal(e.value("t_seconds_bucket", { route: "/x", le: "1" }), 2);
  assert.equal(e.value("t_seconds_bucket", { route: "/x", le: "+Inf" }), 3);
  assert.equal(e.value("t_seconds_count", { route: "/x" }), 3);
  assert.equal(e.value("t_seconds_sum", { route: "/x" }), 5.55);
  assert.equal(e.value("t_depth"), -3);
  assert.equal(e.types.get("t_seconds"), "histogram");
  assert.throws(() => c.inc({ route: "/x" }, -1), /cannot go down/);
  assert.throws(() => c.inc({}), /needs label route/);
  assert.throws(() => c.inc({ route: "/x", other: "y" }), /no label other/);
  assert.throws(() => m.counter("t_total", "again"), /twice/);
  assert.throws(() => m.counter("bad-name", "x"), /bad metric name/);
  // The reader refuses what the format does not allow.
  assert.throws(() => parseExposition("x 1\n"), /no # TYPE/);
  assert.throws(
    () => parseExposition('# TYPE x counter\nx{a="1} 1\n'),
    /bad/,
  );
  assert.throws(
    () =>
      parseExposition(
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n',
      ),
    /not cumulative/,
  );
});

interface Json {
  [k: string]: unknown;
}

/** A datum over `ids` for next-token cross-entropy with `weights`. */
function datum(ids: number[], weights: number[]): Json {
  const n = ids.length - 1;
  return {
    "model_input": {
      chunks: [{ type: "encoded_text", tokens: ids.slice(0, n) }],
    },
    "loss_fn_inputs": {
      "target_tokens": { data: ids.slice(1), dtype: "int64", shape: [n] },
      weights: { data: weights, dtype: "float32", shape: [n] },
    },
  };
}

Deno.test({
  name:
    "/metrics and metrics.jsonl after training steps, a refusal and samples through the gateway",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const svc = await startTestService();
    const runsDir = await Deno.makeTempDir({ prefix: "bios-gw-runs-" });
    const gateway = new Gateway({
      service: svc.service,
      tenants: true,
      runsDir,
    });
    const keys = await KeyRing.of([
      { tenant: "a", key: KEY_A },
      { tenant: "b", key: KEY_B },
    ]);
    const app = createApp({ gateway, keys });
    const post = async (path: string, body: Json, key = KEY_A) => {
      const res = await app.request(`/api/v1/${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: JSON.stringify(body),
      });
      return { status: res.status, json: await res.json() as Json };
    };
    /** The future's result (its failure as `{error, category}`). */
    const result = async (started: { json: Json }) => {
      for (;;) {
        const r = await post("retrieve_future", {
          "request_id": started.json.request_id,
        });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        if (r.json.type !== "try_again") return r.json;
      }
    };
    const scrape = async (env = LOOPBACK) => {
      const res = await app.request("/metrics", {}, env);
      const text = await res.text();
      return { res, text };
    };
    try {
      const session = await post("create_session", {});
      const sessionId = session.json.session_id;
      const modelId = (await result(
        await post("create_model", {
          "session_id": sessionId,
          "model_seq_id": 0,
          "base_model": TINY,
          "lora_config": { rank: 4 },
        }),
      )).model_id as string;
      // Step 1: one forward_backward; step 2: two (their losses add up);
      // step 3: one. Weights leave the first target out of the loss.
      const batches = [
        [[datum([1, 5, 9, 13, 17], [0, 1, 1, 1])]],
        [[datum([2, 6, 10, 14], [0, 1, 1])], [
          datum([3, 7, 11, 15, 19], [0, 1, 1, 1]),
          datum([4, 8, 12], [1, 1]),
        ]],
        [[datum([1, 5, 9, 13, 17], [0, 1, 1, 1])]],
      ];
      const lrs = [0.02, 0.01, 0.005];
      let seq = 1;
      const want: { loss: number; tokens: number; weights: number }[] = [];
      for (let s = 0; s < batches.length; s++) {
        let loss = 0, tokens = 0, weights = 0;
        for (const data of batches[s]) {
          const out = await result(
            await post("forward_backward", {
              "model_id": modelId,
              "seq_id": seq++,
              "forward_backward_input": { data, "loss_fn": "cross_entropy" },
            }),
          );
          const metrics = out.metrics as Record<string, number>;
          loss += metrics["loss:sum"];
          tokens += metrics["num_tokens:sum"];
          for (const d of data) {
            weights += ((d.loss_fn_inputs as Json).weights as {
              data: number[];
            }).data.reduce((a, b) => a + b, 0);
          }
        }
        const opt = await result(
          await post("optim_step", {
            "model_id": modelId,
            "seq_id": seq++,
            "adam_params": { "learning_rate": lrs[s] },
          }),
        );
        assert.equal((opt.metrics as Json)["step:max"], s + 1);
        want.push({ loss, tokens, weights });
      }
      // A retried submission is answered from the record, not counted again.
      const again = await result(
        await post("optim_step", {
          "model_id": modelId,
          "seq_id": seq - 1,
          "adam_params": { "learning_rate": lrs[2] },
        }),
      );
      assert.equal((again.metrics as Json)["step:max"], 3);
      // A refused body fails its future: a user error of forward_backward.
      const refused = await result(
        await post("forward_backward", {
          "model_id": modelId,
          "seq_id": seq++,
          "forward_backward_input": {
            data: batches[0][0],
            "loss_fn": "no_such_loss",
          },
        }),
      );
      assert.equal(refused.category, "user");
      // Sampling: 3 sequences of at most 4 tokens from the base model.
      const sampler = await post("create_sampling_session", {
        "session_id": sessionId,
        "sampling_session_seq_id": 0,
        "base_model": TINY,
      });
      assert.equal(sampler.status, 200, JSON.stringify(sampler.json));
      const sampled = await result(
        await post("asample", {
          "sampling_session_id": sampler.json.sampling_session_id,
          prompt: { chunks: [{ type: "encoded_text", tokens: [1, 2, 3] }] },
          "num_samples": 3,
          "sampling_params": { "max_tokens": 4, seed: 7, temperature: 1 },
        }),
      );
      const seqs = sampled.sequences as { tokens: number[] }[];
      assert.equal(seqs.length, 3);
      const generated = seqs.reduce((a, s) => a + s.tokens.length, 0);
      // Refusals at the edge: no key; another tenant's run.
      const noKey = await app.request("/api/v1/get_info", {
        method: "POST",
        body: "{}",
      });
      assert.equal(noKey.status, 401);
      await noKey.body?.cancel();
      const theirs = await app.request(
        `/api/v1/runs/${modelId}/metrics.jsonl`,
        { headers: { "X-API-Key": KEY_B } },
      );
      assert.equal(theirs.status, 404);
      await theirs.body?.cancel();

      // metrics.jsonl: one line per step, the losses the client got.
      const jsonl = await app.request(
        `/api/v1/runs/${modelId}/metrics.jsonl`,
        { headers: { "X-API-Key": KEY_A } },
      );
      assert.equal(jsonl.status, 200);
      assert.match(jsonl.headers.get("content-type")!, /^application\/jsonl/);
      const text = await jsonl.text();
      assert.equal(
        text,
        await Deno.readTextFile(`${runsDir}/${modelId}/metrics.jsonl`),
      );
      assert.ok(text.endsWith("\n"));
      const lines = text.trimEnd().split("\n").map((l) =>
        JSON.parse(l) as Record<string, number>
      );
      assert.deepEqual(lines.map((l) => l.step), [1, 2, 3]);
      for (let s = 0; s < 3; s++) {
        const l = lines[s];
        assert.equal(l["loss:sum"], want[s].loss, `step ${s + 1}'s loss:sum`);
        assert.equal(l["loss:mean"], want[s].loss / want[s].weights);
        assert.equal(l.learning_rate, lrs[s]);
        assert.equal(l.num_tokens, want[s].tokens);
        assert.equal(l["num_tokens:sum"], want[s].tokens);
        assert.equal(
          l.num_sequences,
          batches[s].reduce((a, d) => a + d.length, 0),
        );
        assert.equal(l.forward_backward_calls, batches[s].length);
        for (const k of ["time/forward_backward", "time/optim_step"]) {
          assert.ok(l[k] > 0 && l[k] < 600, `${k} ${l[k]}`);
        }
        assert.equal(
          l["time/total"],
          l["time/forward_backward"] + l["time/optim_step"],
        );
      }

      // /metrics: the counters moved by exactly what was done.
      const { res, text: exposition } = await scrape();
      assert.equal(res.status, 200);
      assert.equal(
        res.headers.get("content-type"),
        "text/plain; version=0.0.4; charset=utf-8",
      );
      const e = parseExposition(exposition);
      assert.equal(e.value("bios_training_steps_total"), 3);
      assert.equal(
        e.value("bios_training_operations_total", { op: "forward_backward" }),
        4,
      );
      assert.equal(
        e.value("bios_training_operations_total", { op: "optim_step" }),
        3,
      );
      assert.equal(
        e.value("bios_tokens_trained_total"),
        want.reduce((a, w) => a + w.tokens, 0),
      );
      assert.equal(e.value("bios_samples_generated_total"), 3);
      assert.equal(e.value("bios_tokens_generated_total"), generated);
      assert.equal(e.value("bios_futures_pending"), 0);
      assert.equal(e.value("bios_alive", { kind: "run" }), 1);
      assert.equal(e.value("bios_alive", { kind: "sampler" }), 1);
      assert.equal(e.value("bios_alive", { kind: "session" }), 1);
      assert.equal(
        e.value("bios_errors_total", {
          route: "/api/v1/forward_backward",
          category: "user",
          stage: "future",
        }),
        1,
      );
      assert.equal(
        e.value("bios_errors_total", {
          route: "/api/v1/get_info",
          category: "auth",
          stage: "request",
        }),
        1,
      );
      assert.equal(
        e.value("bios_errors_total", {
          route: "/api/v1/runs/:id/metrics.jsonl",
          category: "not_found",
          stage: "request",
        }),
        1,
      );
      // Five forward_backward requests (4 steps' and the refused one), by pattern.
      assert.equal(
        e.value("bios_http_request_duration_seconds_count", {
          method: "POST",
          route: "/api/v1/forward_backward",
        }),
        5,
      );
      assert.equal(
        e.value("bios_http_requests_total", {
          method: "POST",
          route: "/api/v1/optim_step",
          status: "200",
        }),
        4,
      );
      // No id reaches a label: only route patterns.
      assert.ok(!exposition.includes(modelId));
      assert.ok(!exposition.includes(String(sessionId)));

      // Loopback only without a key; with --metrics-key, that bearer only.
      assert.equal((await scrape(REMOTE)).res.status, 401);
      const keyed = createApp({
        gateway,
        keys,
        metricsKey: "operator-key-0123456789",
      });
      const withKey = await keyed.request("/metrics", {
        headers: { Authorization: "Bearer operator-key-0123456789" },
      }, REMOTE);
      assert.equal(withKey.status, 200);
      parseExposition(await withKey.text());
      for (const auth of ["Bearer wrong-key-0123456789", `Bearer ${KEY_A}`]) {
        const r = await keyed.request("/metrics", {
          headers: { Authorization: auth },
        }, LOOPBACK);
        assert.equal(r.status, 401);
        await r.body?.cancel();
      }
    } finally {
      await gateway.close();
      await svc.close();
      await Deno.remove(runsDir, { recursive: true });
    }
  },
});
