/**
 * Robustness of the HTTP gateway (a real `deno task serve` process, two
 * tenants): over a thousand malformed and hostile requests from a seeded
 * generator (tests/_hostile_requests.ts; every route of `/openapi.json`) are
 * all refused — a 4xx whose JSON names the field or the reason, or, where
 * the Tinker wire answers a future (an operation's body is checked in its
 * future, in `seq_id` order), a future that fails as the caller's error —
 * and none is a 5xx or accepted; the process stays up; and nothing changed:
 * the victim's run, with gradients pending, takes its next step exactly
 * where an undisturbed run does, its checkpoints' files and samplers are as
 * they were, a seeded sample is the same, and the attacker's own run (whose
 * refused operations took their seqs) still trains as if it saw none.
 */
import assert from "node:assert/strict";
import { startGateway } from "./_gateway_process.ts";
import { type HostileRequest, hostileRequests } from "./_hostile_requests.ts";
import { type Json, WireCaller, wireDatum } from "./_wire_caller.ts";
import { TINY, TINY_VOCAB } from "./_helpers.ts";

const KEY_A = "tml-hostile-a-0123456789";
const KEY_B = "tml-hostile-b-0123456789";
const SEED = 20_251_107;
const MAX_BODY = 256 * 1024;
const LR = 1e-2;
const LORA = { rank: 4, seed: 7 };
const DATUM = wireDatum([256, 81, 58, 32, 50, 43, 50, 63, 257]);
const PROMPT = [256, 81, 58];

/** Every file under `dir`: path → size, mtime and SHA-256. */
async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else {
        const st = await Deno.stat(p);
        const hash = new Uint8Array(
          await crypto.subtle.digest("SHA-256", await Deno.readFile(p)),
        );
        out.set(
          p.slice(dir.length),
          `${st.size} ${st.mtime?.getTime()} ${
            Array.from(hash, (x) => x.toString(16).padStart(2, "0")).join("")
          }`,
        );
      }
    }
  };
  await walk(dir);
  return out;
}

/** The `bios_alive` gauges of `/metrics` (sessions, runs, samplers held). */
async function alive(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^bios_alive\{kind="(\w+)"\} (\S+)$/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/** How one answer went. */
type Outcome =
  | { kind: "refused"; status: number }
  | { kind: "refused in its future" }
  | { kind: "bad"; why: string };

/** Send `r`; classify its answer (a future is settled). */
async function send(url: string, r: HostileRequest): Promise<Outcome> {
  const req = r.build();
  let res: Response;
  try {
    res = await fetch(`${url}${req.path}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    });
  } catch (e) {
    return { kind: "bad", why: `no answer: ${(e as Error).message}` };
  }
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text);
  } catch { /* checked below */ }
  if (res.status >= 500) return { kind: "bad", why: `${res.status} ${text}` };
  if (res.status >= 400 && res.status < 500) {
    const err = json?.error;
    const reason = typeof err === "string"
      ? err
      : (err as Json | undefined)?.message;
    if (typeof reason !== "string" || reason.length === 0) {
      return { kind: "bad", why: `${res.status} without a reason: ${text}` };
    }
    return { kind: "refused", status: res.status };
  }
  if (res.status === 200 && typeof json?.request_id === "string") {
    const key = req.headers.get("x-api-key");
    const got = await new WireCaller(url, key).settle(json.request_id);
    if (
      got.category === "user" && typeof got.error === "string" &&
      got.error.length > 0
    ) return { kind: "refused in its future" };
    return {
      kind: "bad",
      why: `accepted into a future: ${JSON.stringify(got).slice(0, 300)}`,
    };
  }
  return { kind: "bad", why: `accepted: ${res.status} ${text.slice(0, 300)}` };
}

Deno.test({
  name:
    "1,000+ seeded hostile requests on every route: all refused (4xx naming why, or a future failed as the caller's error), none 5xx, the gateway up, nothing changed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const keys = await Deno.makeTempFile({ suffix: ".txt" });
    await Deno.writeTextFile(keys, `a ${KEY_A}\nb ${KEY_B}\n`);
    const gw = await startGateway([
      "--keys",
      keys,
      "--rate-limit",
      "0",
      "--max-body-bytes",
      String(MAX_BODY),
    ]).finally(() => Deno.remove(keys));
    try {
      const A = new WireCaller(gw.url, KEY_A);
      const B = new WireCaller(gw.url, KEY_B);
      const fbBody = (model: string, seq: number): Json => ({
        "model_id": model,
        "seq_id": seq,
        "forward_backward_input": { data: [DATUM], "loss_fn": "cross_entropy" },
      });

      // An undisturbed run: its loss before and after one step.
      const sa = await A.session();
      const ref = await A.createModel(sa, 0, TINY, LORA);
      const before = await A.forwardBackward(ref, 1, [DATUM], "forward");
      await A.forwardBackward(ref, 2, [DATUM]);
      await A.optimStep(ref, 3, LR);
      const after = await A.forwardBackward(ref, 4, [DATUM], "forward");
      assert.notEqual(after, before, "a step moves the loss");

      // The victim: gradients pending, a checkpoint, two samplers.
      const victim = await A.createModel(sa, 1, TINY, LORA);
      const used: { route: string; body: Json }[] = [];
      const use = async (route: string, extra: Json) => {
        const body = {
          "model_id": victim,
          "seq_id": used.length + 1,
          ...extra,
        };
        used.push({ route, body });
        return await A.result(route, body);
      };
      const fbStart = await A.ok("forward_backward", fbBody(victim, 1));
      used.push({ route: "forward_backward", body: fbBody(victim, 1) });
      await A.settle(fbStart.request_id);
      const weightsPath = (await use("save_weights", { path: "keep" }))
        .path as string;
      const samplerPath = (await use("save_weights_for_sampler", {
        path: "keep-s",
      })).path as string;
      const sampler = (await use("save_weights_for_sampler", {
        "sampling_session_seq_id": 0,
      })).sampling_session_id as string;
      const named = (await A.ok("create_sampling_session", {
        "session_id": sa,
        "sampling_session_seq_id": 1,
        "model_path": samplerPath,
      })).sampling_session_id as string;

      // The attacker's own run (the same start), session and samplers.
      const sb = await B.session();
      const bModel = await B.createModel(sb, 0, TINY, LORA);
      await B.forwardBackward(bModel, 1, [DATUM]);
      assert.equal(
        await B.forwardBackward(bModel, 2, [DATUM], "forward"),
        before,
      );
      let bNext = 3;
      const bSampler = (await B.ok("create_sampling_session", {
        "session_id": sb,
        "sampling_session_seq_id": 0,
        "base_model": TINY,
      })).sampling_session_id as string;
      await B.sample(bSampler, PROMPT, { "max_tokens": 2, seed: 1 });
      const bRequest = (await B.ok("asample", {
        "base_model": TINY,
        prompt: { chunks: [{ type: "encoded_text", tokens: PROMPT }] },
        "sampling_params": { "max_tokens": 2, seed: 1 },
      })).request_id as string;
      await B.settle(bRequest);
      assert.equal(
        (await B.fetch("/v1/completions", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({
            model: TINY,
            prompt: PROMPT,
            "max_tokens": 2,
            seed: 1,
          }),
        })).status,
        200,
      );

      // What must not change.
      const seeded = { "max_tokens": 8, temperature: 1, seed: 11 };
      const snapshot = async () => ({
        info: await A.ok("get_info", { "model_id": victim }),
        samplers: [
          (await A.fetch(`/api/v1/samplers/${encodeURIComponent(sampler)}`))
            .json,
          (await A.fetch(`/api/v1/samplers/${encodeURIComponent(named)}`))
            .json,
          (await B.fetch(`/api/v1/samplers/${encodeURIComponent(bSampler)}`))
            .json,
        ],
        samples: [
          await A.sample(sampler, PROMPT, seeded, 2),
          await A.sample(named, PROMPT, seeded, 2),
        ],
        files: await tree(gw.checkpointDir),
        alive: await alive(gw.url),
      });
      const was = await snapshot();
      assert.equal(was.info.last_seq, 4);
      assert.ok(was.files.size > 0, "the victim's checkpoints are on disk");

      const doc = (await A.fetch("/openapi.json")).json;
      const requests = hostileRequests(doc, {
        maxBodyBytes: MAX_BODY,
        baseModel: TINY,
        vocab: TINY_VOCAB,
        a: {
          key: KEY_A,
          session: sa,
          model: victim,
          sampler,
          weightsPath,
          samplerPath,
          requestId: fbStart.request_id as string,
          used,
        },
        b: {
          key: KEY_B,
          session: sb,
          model: bModel,
          sampler: bSampler,
          requestId: bRequest,
          nextSeq: () => bNext,
        },
      }, SEED);
      assert.ok(requests.length >= 1000, `${requests.length} requests`);
      // Every route of the document is attacked (by path: the open GET
      // routes only with methods they do not take).
      const attacked = new Set(requests.map((r) => r.route.split(" ")[1]));
      for (const p of Object.keys(doc.paths as Json)) {
        const concrete = p.replace("{id}", encodeURIComponent(bSampler));
        assert.ok(attacked.has(concrete), `no hostile request for ${p}`);
      }

      const statuses = new Map<string, number>();
      const bad: string[] = [];
      for (const r of requests) {
        const o = await send(gw.url, r);
        const k = o.kind === "refused" ? String(o.status) : o.kind;
        statuses.set(k, (statuses.get(k) ?? 0) + 1);
        if (o.kind === "bad") bad.push(`${r.route} (${r.label}): ${o.why}`);
        if (o.kind === "refused in its future") {
          // A refused operation of B's run took its seq.
          const info = await B.ok("get_info", { "model_id": bModel });
          bNext = (info.last_seq as number) + 1;
        }
      }
      console.log(
        `${requests.length} hostile requests (seed ${SEED}): ${
          JSON.stringify(Object.fromEntries([...statuses].sort()))
        }`,
      );
      assert.deepEqual(
        bad,
        [],
        `${bad.length} not refused:\n${bad.join("\n")}`,
      );

      // Still up, and nothing changed.
      assert.equal((await A.fetch("/api/v1/healthz")).status, 200);
      const now = await snapshot();
      assert.deepEqual(now.info, was.info, "the victim's run info changed");
      assert.deepEqual(now.samplers, was.samplers, "samplers changed");
      assert.deepEqual(now.samples, was.samples, "seeded samples changed");
      assert.deepEqual(now.files, was.files, "checkpoint files changed");
      assert.deepEqual(
        now.alive,
        was.alive,
        "sessions, runs or samplers changed",
      );
      await use("optim_step", {
        "adam_params": {
          "learning_rate": LR,
          beta1: 0.9,
          beta2: 0.95,
          eps: 1e-8,
          "weight_decay": 0,
        },
      });
      assert.equal(
        await A.forwardBackward(victim, used.length + 1, [DATUM], "forward"),
        after,
        "the victim's pending step did not land where an undisturbed run's does",
      );
      assert.equal(
        await B.forwardBackward(bModel, bNext, [DATUM], "forward"),
        before,
        "the attacker's refused operations changed its weights",
      );
      await B.optimStep(bModel, bNext + 1, LR);
      assert.equal(
        await B.forwardBackward(bModel, bNext + 2, [DATUM], "forward"),
        after,
        "the attacker's refused operations changed its pending gradients",
      );
    } finally {
      assert.equal(await gw.stop(), 0, "the gateway exits cleanly");
    }
  },
});
