/**
 * A seeded generator of malformed and hostile requests against the HTTP
 * gateway, for tests/gateway_hostile_test.ts. The routes come from the
 * gateway's own `/openapi.json` (so a new route is attacked too), with their
 * request schemas: every field that has a JSON type gets values of the other
 * types, every required field goes missing, every body gets bad JSON. On top
 * of that: unknown routes and methods, missing, wrong and malformed keys,
 * names and ids with `..`, `/`, NUL and great length, token ids outside the
 * model's vocabulary, numbers that are negative, huge or infinite, SDK 0.25
 * protobuf bodies truncated or garbage, bodies over the gateway's limit (with
 * Content-Length and chunked), another tenant's sessions, runs, samplers,
 * checkpoints and futures, and seq_ids replayed with another operation or
 * skipped far ahead.
 *
 * Every request is built when it is sent (`build`), so the attacker's own
 * run gets its next `seq_id` at that moment: a body refused inside its
 * future still takes its seq (the Tinker wire's rule), and the next request
 * must not be a replay by accident.
 *
 * @module
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { DType, ForwardBackwardRequestSchema } from "../server/proto/schema.ts";
import { type Json, wireAdam, wireDatum } from "./_wire_caller.ts";

/** What the generator attacks with: the fixture's ids and keys. */
export interface HostileContext {
  /** The gateway's body limit in bytes. */
  maxBodyBytes: number;
  /** The base model both tenants train. */
  baseModel: string;
  /** Its vocabulary size. */
  vocab: number;
  /** The victim (tenant A) and what it owns. */
  a: {
    key: string;
    session: string;
    model: string;
    sampler: string;
    weightsPath: string;
    samplerPath: string;
    requestId: string;
    /** Seqs the victim has used, each with the body it sent. */
    used: { route: string; body: Json }[];
  };
  /** The attacker (tenant B) and what it owns. */
  b: {
    key: string;
    session: string;
    model: string;
    sampler: string;
    requestId: string;
    /** The next seq_id of B's run (kept current by the test). */
    nextSeq(): number;
  };
}

/** One hostile request. */
export interface HostileRequest {
  /** What it tries, for the report. */
  label: string;
  /** The route it aims at (`POST /api/v1/asample`), or the raw path. */
  route: string;
  /** The request, built at send time. */
  build(): { method: string; path: string; headers: Headers; body?: BodyInit };
}

/** A small seeded PRNG (mulberry32). */
export class Rng {
  #s: number;
  /** A generator seeded with `seed`. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** One of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
}

type Schema = Record<string, unknown>;

/** The JSON kinds a schema admits; null when it admits anything. */
function kindsOf(s: Schema | undefined): Set<string> | null {
  if (!s) return null;
  const alts = (s.anyOf ?? s.oneOf) as Schema[] | undefined;
  if (alts) {
    const out = new Set<string>();
    for (const a of alts) {
      const k = kindsOf(a);
      if (k === null) return null;
      k.forEach((x) => out.add(x));
    }
    return out;
  }
  if (s.type === undefined) {
    if (s.const !== undefined) return new Set([typeof s.const]);
    if (Array.isArray(s.enum)) return new Set(s.enum.map((v) => typeof v));
    return null;
  }
  return new Set(Array.isArray(s.type) ? s.type : [s.type as string]);
}

/** Values of each JSON kind, each wrong for a field that does not admit its kind. */
const WRONG: readonly { kind: string; value: unknown }[] = [
  { kind: "string", value: "not-what-you-want" },
  { kind: "string", value: "" },
  { kind: "number", value: 1.5 },
  { kind: "integer", value: 7 },
  { kind: "integer", value: -3 },
  { kind: "boolean", value: true },
  { kind: "null", value: null },
  { kind: "array", value: [] },
  { kind: "array", value: [1, "x", null] },
  { kind: "object", value: {} },
  { kind: "object", value: { nested: { deeper: [1] } } },
];

function wrongValues(s: Schema): unknown[] {
  const kinds = kindsOf(s);
  if (kinds === null) return [];
  return WRONG.filter((w) => {
    if (kinds.has(w.kind)) return false;
    if (w.kind === "integer" && kinds.has("number")) return false;
    return true;
  }).map((w) => w.value);
}

/** Names and ids no route may take: traversal, separators, NUL, size. */
export const HOSTILE_NAMES: readonly string[] = [
  "..",
  ".",
  "../x",
  "../../etc/passwd",
  "/etc/passwd",
  "a/b",
  "a\\b",
  "%2e%2e%2f",
  "x\u0000y",
  "\u0000",
  "ｅｔｃ",
  "x".repeat(129),
  "y".repeat(5000),
  " ",
  "tinker://../weights/x",
];

const bytesOf = (a: ArrayBufferView): Uint8Array =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** SDK 0.25's ForwardBackwardRequest bytes. */
function protoRequest(
  modelId: string,
  seqId: number,
  tokens: number[],
  targets: bigint[],
  weights: number[],
  lossFn = "cross_entropy",
): Uint8Array<ArrayBuffer> {
  return toBinary(
    ForwardBackwardRequestSchema,
    create(ForwardBackwardRequestSchema, {
      modelId,
      seqId,
      lossFn,
      forwardOnly: false,
      data: [{
        modelInput: [{
          chunk: {
            case: "encodedText",
            value: { tokens: bytesOf(new Int32Array(tokens)) },
          },
        }],
        lossFnInputs: {
          "target_tokens": {
            encoding: {
              case: "dense",
              value: bytesOf(new BigInt64Array(targets)),
            },
            dtype: DType.INT64,
            shape: [BigInt(targets.length)],
          },
          weights: {
            encoding: {
              case: "dense",
              value: bytesOf(new Float32Array(weights)),
            },
            dtype: DType.FLOAT32,
            shape: [BigInt(weights.length)],
          },
        },
      }],
    }),
  ) as Uint8Array<ArrayBuffer>;
}

/** A body of `n` bytes streamed without a Content-Length (chunked). */
function chunked(n: number): ReadableStream<Uint8Array> {
  let left = n;
  return new ReadableStream({
    pull(c) {
      if (left <= 0) return c.close();
      const k = Math.min(left, 64 * 1024);
      c.enqueue(new Uint8Array(k).fill(0x20));
      left -= k;
    },
  });
}

/**
 * `v` as JSON text, except that ±Infinity and NaN are written as the
 * numbers `1e400` / `-1e400` (which JSON.parse reads as ±Infinity) and
 * `NaN` (which it refuses), where JSON.stringify would write `null`.
 */
export function jsonText(v: unknown): string {
  const text = JSON.stringify(
    v,
    (_k, x) =>
      typeof x !== "number" || Number.isFinite(x)
        ? x
        : `\u0000${Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf"}`,
  );
  return text.replace(
    /"\\u0000(-?inf|nan)"/g,
    (_m, w: string) => w === "nan" ? "NaN" : w === "inf" ? "1e400" : "-1e400",
  );
}

/** A route of the OpenAPI document. */
interface Route {
  method: string;
  /** OpenAPI path, `/api/v1/samplers/{id}`. */
  path: string;
  /** Its JSON request schema, if it takes one. */
  schema?: Schema;
  /** Whether it needs an API key. */
  auth: boolean;
}

/** The routes of an OpenAPI document. */
export function routesOf(doc: Json): Route[] {
  const out: Route[] = [];
  const paths = doc.paths as Record<string, Record<string, Schema>>;
  for (const [path, ops] of Object.entries(paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const content = (op.requestBody as Schema | undefined)?.content as
        | Record<string, { schema?: Schema }>
        | undefined;
      out.push({
        method: method.toUpperCase(),
        path,
        schema: content?.["application/json"]?.schema,
        auth: !(Array.isArray(op.security) && op.security.length === 0),
      });
    }
  }
  return out;
}

/**
 * Every hostile request for the gateway whose OpenAPI document is `doc`,
 * against the fixture `ctx`, in a seeded order; at least `min` of them.
 */
export function hostileRequests(
  doc: Json,
  ctx: HostileContext,
  seed: number,
  min = 1000,
): HostileRequest[] {
  const rng = new Rng(seed);
  const routes = routesOf(doc);
  const out: HostileRequest[] = [];
  const { a, b } = ctx;
  const V = ctx.vocab;
  const datum = wireDatum([256, 65, 66, 67, 257]);

  /** A JSON request from tenant `key` (null: no key). */
  const json = (
    label: string,
    method: string,
    path: string,
    body: () => unknown,
    key: string | null = b.key,
    extra: Record<string, string> = {},
  ) =>
    out.push({
      label,
      route: `${method} ${path}`,
      build: () => {
        const headers = new Headers({
          "Content-Type": "application/json",
          ...extra,
        });
        if (key !== null) headers.set("X-API-Key", key);
        const v = body();
        if (v === undefined) return { method, path, headers };
        return {
          method,
          path,
          headers,
          body: typeof v === "string" ? v : jsonText(v),
        };
      },
    });
  const raw = (
    label: string,
    method: string,
    path: string,
    body: () => BodyInit | undefined,
    headers: Record<string, string> = {},
    key: string | null = b.key,
  ) =>
    out.push({
      label,
      route: `${method} ${path}`,
      build: () => {
        const h = new Headers(headers);
        if (key !== null) h.set("X-API-Key", key);
        return { method, path, headers: h, body: body() };
      },
    });

  /** The attacker's valid-looking body of each route, mutated one field at a time. */
  const op = (extra: Json) => () => ({
    "model_id": b.model,
    "seq_id": b.nextSeq(),
    ...extra,
  });
  const fbInput = { data: [datum], "loss_fn": "cross_entropy" };
  const prompt = { chunks: [{ type: "encoded_text", tokens: [256, 65] }] };
  const BASE: Record<string, () => Json> = {
    "POST /api/v1/create_session": () => ({ tags: [], "sdk_version": "x" }),
    "POST /api/v1/session_heartbeat": () => ({ "session_id": b.session }),
    "POST /api/v1/create_model": () => ({
      "session_id": b.session,
      "model_seq_id": 99,
      "base_model": ctx.baseModel,
      "lora_config": { rank: 4, seed: 1 },
    }),
    "POST /api/v1/get_info": () => ({ "model_id": b.model }),
    "POST /api/v1/forward": op({ "forward_input": fbInput }),
    "POST /api/v1/forward_backward": op({ "forward_backward_input": fbInput }),
    "POST /api/v1/optim_step": op({ "adam_params": wireAdam(1e-2) }),
    "POST /api/v1/save_weights": op({ path: "never-saved" }),
    "POST /api/v1/save_weights_for_sampler": op({ path: "never-saved-s" }),
    "POST /api/v1/load_weights": op({
      path: `tinker://${b.model}/weights/none`,
      optimizer: false,
    }),
    "POST /api/v1/weights_info": () => ({
      "tinker_path": `tinker://${b.model}/weights/none`,
    }),
    "POST /api/v1/create_sampling_session": () => ({
      "session_id": b.session,
      "sampling_session_seq_id": 77,
      "base_model": ctx.baseModel,
    }),
    "POST /api/v1/asample": () => ({
      "sampling_session_id": b.sampler,
      prompt,
      "sampling_params": { "max_tokens": 2, seed: 1 },
      "num_samples": 1,
    }),
    "POST /api/v1/retrieve_future": () => ({ "request_id": b.requestId }),
    "POST /api/v1/unload_sampling_session": () => ({
      "sampling_session_id": b.sampler,
    }),
    "POST /api/v1/get_tokenizer": () => ({ "base_model": ctx.baseModel }),
    "POST /v1/completions": () => ({
      model: ctx.baseModel,
      prompt: [256, 65],
      "max_tokens": 2,
      seed: 1,
    }),
    "POST /v1/chat/completions": () => ({
      model: ctx.baseModel,
      messages: [{ role: "user", content: "hi" }],
      "max_tokens": 2,
      seed: 1,
    }),
  };
  /** A schema's properties and required keys. */
  const props = (s: Schema | undefined) => ({
    properties: (s?.properties ?? {}) as Record<string, Schema>,
    required: (s?.required ?? []) as string[],
  });
  const concrete = (p: string) =>
    p.replace("{id}", encodeURIComponent(b.sampler));

  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    const path = concrete(r.path);
    // Keys: none, unknown, malformed, wrong scheme.
    if (r.auth) {
      const body = () =>
        r.method === "GET"
          ? undefined
          : r.schema && BASE[key]
          ? BASE[key]()
          : {};
      json("no API key", r.method, path, body, null);
      json("unknown API key", r.method, path, body, "tml-nobody-0123456789");
      json("malformed API key", r.method, path, body, "not-a-key");
      json(
        "very long API key",
        r.method,
        path,
        body,
        "tml-" + "k".repeat(8000),
      );
      json("Bearer without a key", r.method, path, body, null, {
        Authorization: "Bearer",
      });
      json("unknown Bearer key", r.method, path, body, null, {
        Authorization: "Bearer tml-nobody-0123456789",
      });
    }
    // Methods the route does not take.
    for (const m of ["PUT", "DELETE", "PATCH", "OPTIONS", "BREW"]) {
      if (routes.some((x) => x.path === r.path && x.method === m)) continue;
      raw(`method ${m}`, m, path, () => undefined);
    }
    if (r.method === "POST") {
      raw("GET of a POST route", "GET", path, () => undefined);
    }
    if (!r.schema) continue;
    const base = BASE[key] ??
      (() =>
        Object.fromEntries(
          props(r.schema).required.map((k) => [k, "x"]),
        ));
    // Bad JSON.
    for (
      const text of [
        "",
        "{",
        '{"a":',
        "null",
        "[]",
        '"a string"',
        "123",
        "true",
        "{'single': 'quotes'}",
        '{"a":1}}',
        "NaN",
        '{"x": NaN}',
        "\u0000",
        "\uFEFF{}x",
        "[".repeat(20_000) + "]".repeat(19_999),
        '{"a":'.repeat(5_000) + "1" + "}".repeat(4_999),
      ]
    ) {
      json(
        `bad JSON ${JSON.stringify(text.slice(0, 12))}`,
        "POST",
        path,
        () => text,
      );
    }
    // Wrong JSON types, field by field; required fields missing.
    const { properties, required } = props(r.schema);
    for (const [field, s] of Object.entries(properties)) {
      for (const v of wrongValues(s)) {
        json(
          `${field}: wrong type ${JSON.stringify(v)}`,
          "POST",
          path,
          () => ({ ...base(), [field]: v }),
        );
      }
    }
    for (const field of required) {
      json(`${field} missing`, "POST", path, () => {
        const v = base();
        delete v[field];
        return v;
      });
    }
    // A duplicate key whose last value is of the wrong type.
    const first = required[0];
    if (first !== undefined && wrongValues(properties[first] ?? {}).length) {
      json(`${first} twice`, "POST", path, () => {
        const good = JSON.stringify(base());
        return `${good.slice(0, -1)},${JSON.stringify(first)}:[1,2]}`;
      });
    }
  }

  // Names and ids with traversal, separators, NUL and size, in every field that names something.
  const named: [string, string, (n: string) => unknown][] = [
    ["POST", "/api/v1/save_weights", (n) => op({ path: n })()],
    ["POST", "/api/v1/save_weights_for_sampler", (n) => op({ path: n })()],
    [
      "POST",
      "/api/v1/load_weights",
      (n) => op({ path: n, optimizer: false })(),
    ],
    [
      "POST",
      "/api/v1/load_weights",
      (n) =>
        op({ path: `tinker://${b.model}/weights/${n}`, optimizer: true })(),
    ],
    ["POST", "/api/v1/weights_info", (n) => ({ "tinker_path": n })],
    [
      "POST",
      "/api/v1/weights_info",
      (n) => ({ "tinker_path": `tinker://${n}/weights/x` }),
    ],
    ["POST", "/api/v1/create_sampling_session", (n) => ({
      "session_id": b.session,
      "sampling_session_seq_id": 78,
      "model_path": n,
    })],
    ["POST", "/api/v1/create_sampling_session", (n) => ({
      "session_id": b.session,
      "sampling_session_seq_id": 79,
      "base_model": n,
    })],
    ["POST", "/api/v1/asample", (n) => ({
      "model_path": `tinker://${b.model}/sampler_weights/${n}`,
      prompt,
      "sampling_params": { "max_tokens": 2 },
    })],
    ["POST", "/api/v1/asample", (n) => ({
      "base_model": n,
      prompt,
      "sampling_params": { "max_tokens": 2 },
    })],
    ["POST", "/api/v1/create_model", (n) => ({
      "session_id": b.session,
      "model_seq_id": 98,
      "base_model": n,
      "lora_config": { rank: 4 },
    })],
    ["POST", "/api/v1/get_info", (n) => ({ "model_id": n })],
    ["POST", "/api/v1/session_heartbeat", (n) => ({ "session_id": n })],
    ["POST", "/api/v1/retrieve_future", (n) => ({ "request_id": n })],
    ["POST", "/api/v1/unload_sampling_session", (n) => ({
      "sampling_session_id": n,
    })],
    ["POST", "/api/v1/get_tokenizer", (n) => ({ "base_model": n })],
    ["POST", "/v1/completions", (n) => ({
      model: n,
      prompt: [256],
      "max_tokens": 1,
    })],
  ];
  for (const [m, p, body] of named) {
    for (const n of HOSTILE_NAMES) {
      json(`name ${JSON.stringify(n.slice(0, 20))}`, m, p, () => body(n));
    }
  }
  for (const n of HOSTILE_NAMES) {
    for (const p of ["/api/v1/samplers/", "/api/v1/runs/"]) {
      const suffix = p.endsWith("runs/") ? "/metrics.jsonl" : "";
      raw(
        `path id ${JSON.stringify(n.slice(0, 20))}`,
        "GET",
        p + encodeURIComponent(n) + suffix,
        () => undefined,
      );
    }
  }

  // Unknown routes.
  for (
    const p of [
      "/",
      "/api",
      "/api/v1",
      "/api/v1/",
      "/api/v2/forward_backward",
      "/api/v1/nope",
      "/api/v1/forward_backward/extra",
      "/api/v1/../../etc/passwd",
      "/api/v1/%2e%2e/%2e%2e/etc/passwd",
      "/api/v1/samplers",
      "/api/v1/runs//metrics.jsonl",
      "/api/v1/samplers/a/b",
      "/v1",
      "/v1/embeddings",
      "/v1/models/x/y",
      "/metrics/x",
      "/openapi.yaml",
      "/api/v1/" + "z".repeat(4000),
      "/api/v1/create_session%00",
      "/.env",
    ]
  ) {
    raw(`unknown route ${p.slice(0, 30)}`, "GET", p, () => undefined);
    json(`unknown route ${p.slice(0, 30)}`, "POST", p, () => ({}));
  }

  // Token ids outside the vocabulary, and numbers that are no numbers.
  const badIds = [V, V + 1, 5000, -1, 2 ** 31, 2 ** 53, 1.5, 1e400, -1e400];
  for (const t of badIds) {
    const tok = [256, t, 66];
    const fb = (d: Json) =>
      op({
        "forward_backward_input": { data: [d], "loss_fn": "cross_entropy" },
      });
    json(
      `model_input token ${t}`,
      "POST",
      "/api/v1/forward_backward",
      fb({
        ...datum,
        "model_input": { chunks: [{ type: "encoded_text", tokens: tok }] },
      }),
    );
    json(
      `target token ${t}`,
      "POST",
      "/api/v1/forward_backward",
      fb({
        ...datum,
        "loss_fn_inputs": {
          "target_tokens": {
            data: [65, t, 67, 257],
            dtype: "int64",
            shape: [4],
          },
          weights: { data: [1, 1, 1, 1], dtype: "float32", shape: [4] },
        },
      }),
    );
    json(`prompt token ${t}`, "POST", "/api/v1/asample", () => ({
      ...BASE["POST /api/v1/asample"](),
      prompt: { chunks: [{ type: "encoded_text", tokens: tok }] },
    }));
    json(`stop token ${t}`, "POST", "/api/v1/asample", () => ({
      ...BASE["POST /api/v1/asample"](),
      "sampling_params": { "max_tokens": 2, stop: [t] },
    }));
    json(`completion prompt token ${t}`, "POST", "/v1/completions", () => ({
      ...BASE["POST /v1/completions"](),
      prompt: tok,
    }));
  }
  // Numbers out of each field's range: negative, zero where it must be
  // positive, fractions where an integer is due, ±Infinity, too large, text.
  // (Negative and zero loss weights are allowed: RL losses use them.)
  const INF = [Infinity, -Infinity];
  const weightsOf = (v: unknown) => ({
    ...datum,
    "loss_fn_inputs": {
      ...(datum.loss_fn_inputs as Json),
      weights: { data: [1, v, 1, 1], dtype: "float32", shape: [4] },
    },
  });
  for (const v of [...INF, "1", null, true]) {
    json(
      `weights ${v}`,
      "POST",
      "/api/v1/forward_backward",
      op({
        "forward_backward_input": {
          data: [weightsOf(v)],
          "loss_fn": "cross_entropy",
        },
      }),
    );
  }
  const adam: Record<string, unknown[]> = {
    "learning_rate": [-1, 0, ...INF, "0.01", true],
    beta1: [-0.5, 1, 1.5, ...INF, "0.9"],
    beta2: [-0.5, 1, 1.5, ...INF, "0.9"],
    eps: [0, -1, ...INF, "1e-8"],
    "weight_decay": [-1, ...INF, "0"],
  };
  for (const [f, vs] of Object.entries(adam)) {
    for (const v of vs) {
      json(
        `adam ${f} ${v}`,
        "POST",
        "/api/v1/optim_step",
        op({
          "adam_params": { ...wireAdam(1e-2), [f]: v },
        }),
      );
    }
  }
  const sampling: Record<string, unknown[]> = {
    "max_tokens": [0, -1, 1.5, ...INF, 2 ** 64, "2"],
    temperature: [-1, ...INF, "1"],
    "top_p": [0, -0.5, 1.5, ...INF, "1"],
    "top_k": [0, -2, 1.5, ...INF, "1"],
    seed: [-1, 1.5, 2 ** 64, ...INF, "1"],
  };
  for (const [f, vs] of Object.entries(sampling)) {
    for (const v of vs) {
      json(`sampling ${f} ${v}`, "POST", "/api/v1/asample", () => ({
        ...BASE["POST /api/v1/asample"](),
        "sampling_params": { "max_tokens": 2, [f]: v },
      }));
    }
  }
  for (const v of [0, -1, 1.5, 1_000_000, ...INF, "1"]) {
    json(`num_samples ${v}`, "POST", "/api/v1/asample", () => ({
      ...BASE["POST /api/v1/asample"](),
      "num_samples": v,
    }));
    json(`lora rank ${v}`, "POST", "/api/v1/create_model", () => ({
      ...BASE["POST /api/v1/create_model"](),
      "lora_config": { rank: v },
    }));
  }
  const completion: Record<string, unknown[]> = {
    "max_tokens": [-1, 1.5, ...INF, 1e9, "2"],
    temperature: [-1, ...INF, "1"],
    "top_p": [-0.5, 1.5, ...INF, "1"],
    n: [0, -1, 1.5, ...INF, 1_000_000, "1"],
    seed: [-1, 1.5, ...INF, "1"],
  };
  for (const [f, vs] of Object.entries(completion)) {
    for (const v of vs) {
      json(`completion ${f} ${v}`, "POST", "/v1/completions", () => ({
        ...BASE["POST /v1/completions"](),
        [f]: v,
      }));
    }
  }
  for (
    const [what, d] of [
      ["no data", []],
      ["empty model_input", [{ ...datum, "model_input": { chunks: [] } }]],
      ["a huge batch", new Array(3000).fill(datum)],
      ["a sequence past the context", [wireDatum(new Array(400).fill(65))]],
    ] as const
  ) {
    json(
      what,
      "POST",
      "/api/v1/forward_backward",
      op({
        "forward_backward_input": { data: d, "loss_fn": "cross_entropy" },
      }),
    );
  }
  for (const lossFn of ["crossentropy", "", null, 5, "../x"]) {
    json(
      `loss_fn ${lossFn}`,
      "POST",
      "/api/v1/forward_backward",
      op({
        "forward_backward_input": { data: [datum], "loss_fn": lossFn },
      }),
    );
  }
  json("max_tokens above the cap", "POST", "/api/v1/asample", () => ({
    ...BASE["POST /api/v1/asample"](),
    "sampling_params": { "max_tokens": 10_000_000 },
  }));
  json("no max_tokens and stop []", "POST", "/api/v1/asample", () => ({
    ...BASE["POST /api/v1/asample"](),
    "sampling_params": { stop: [] },
  }));

  // SDK 0.25 protobuf: truncated, garbage, and well-formed with bad values.
  const PROTO = { "Content-Type": "application/x-protobuf" };
  const good = () =>
    protoRequest(b.model, b.nextSeq(), [256, 65, 66], [65n, 66n, 257n], [
      1,
      1,
      1,
    ]);
  const len = good().length;
  for (let i = 0; i < 40; i++) {
    const cut = i < 8 ? i : 1 + rng.int(len - 1);
    raw(
      `protobuf truncated at ${cut}/${len}`,
      "POST",
      "/api/v1/forward_backward",
      () => good().slice(0, cut),
      PROTO,
    );
  }
  for (let i = 0; i < 30; i++) {
    const n = i < 4 ? [0, 1, 2, 3][i] : 1 + rng.int(2000);
    const bytes = new Uint8Array(n);
    for (let j = 0; j < n; j++) bytes[j] = rng.int(256);
    raw(
      `protobuf garbage of ${n} bytes`,
      "POST",
      "/api/v1/forward_backward",
      () => bytes,
      PROTO,
    );
  }
  const protoBad: [string, () => Uint8Array<ArrayBuffer>][] = [
    [
      "protobuf token past the vocabulary",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, V, 66], [65n, 66n, 257n], [
          1,
          1,
          1,
        ]),
    ],
    [
      "protobuf negative token",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, -5, 66], [65n, 66n, 257n], [
          1,
          1,
          1,
        ]),
    ],
    [
      "protobuf int64 target beyond 32 bits",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, 65, 66], [
          65n,
          2n ** 40n,
          257n,
        ], [1, 1, 1]),
    ],
    [
      "protobuf NaN weight",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, 65, 66], [65n, 66n, 257n], [
          1,
          NaN,
          1,
        ]),
    ],
    [
      "protobuf Infinity weight",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, 65, 66], [65n, 66n, 257n], [
          1,
          Infinity,
          1,
        ]),
    ],
    [
      "protobuf shape mismatch",
      () =>
        protoRequest(b.model, b.nextSeq(), [256, 65, 66], [65n, 66n], [
          1,
          1,
          1,
        ]),
    ],
    [
      "protobuf unknown loss",
      () =>
        protoRequest(
          b.model,
          b.nextSeq(),
          [256, 65],
          [65n, 66n],
          [1, 1],
          "nope",
        ),
    ],
    [
      "protobuf another tenant's run",
      () =>
        protoRequest(a.model, a.used.length + 1, [256, 65], [65n, 66n], [1, 1]),
    ],
    [
      "protobuf seq_id 0",
      () => protoRequest(b.model, 0, [256, 65], [65n, 66n], [1, 1]),
    ],
    [
      "protobuf seq_id negative",
      () => protoRequest(b.model, -7, [256, 65], [65n, 66n], [1, 1]),
    ],
    [
      "protobuf empty model_id",
      () => protoRequest("", 1, [256, 65], [65n, 66n], [1, 1]),
    ],
  ];
  for (const [label, bytes] of protoBad) {
    raw(label, "POST", "/api/v1/forward_backward", bytes, PROTO);
  }
  raw("protobuf zstd-encoded", "POST", "/api/v1/forward_backward", good, {
    ...PROTO,
    "Content-Encoding": "zstd",
  });

  // Bodies over the limit: with a Content-Length, and chunked.
  const LONG_FIELD: Record<string, string> = {
    "/api/v1/forward_backward": "model_id",
    "/api/v1/create_session": "sdk_version",
    "/api/v1/asample": "sampling_session_id",
    "/v1/completions": "model",
    "/v1/chat/completions": "model",
  };
  const over = ctx.maxBodyBytes + 1024;
  for (
    const [m, p] of [
      ["POST", "/api/v1/forward_backward"],
      ["POST", "/api/v1/create_session"],
      ["POST", "/api/v1/asample"],
      ["POST", "/v1/completions"],
      ["POST", "/v1/chat/completions"],
    ]
  ) {
    json(
      "a body over the limit",
      m,
      p,
      () => JSON.stringify({ pad: "x".repeat(over) }),
    );
    raw("a chunked body over the limit", m, p, () => chunked(over), {
      "Content-Type": "application/json",
    });
    raw(
      "a chunked protobuf body over the limit",
      m,
      p,
      () => chunked(over),
      PROTO,
    );
    json("a huge array", m, p, () => ({ pad: new Array(over / 2).fill(1) }));
    json("a very long string id", m, p, () => ({
      ...BASE[`${m} ${p}`](),
      [LONG_FIELD[p]]: "s".repeat(ctx.maxBodyBytes / 2),
    }));
  }

  // Another tenant's ids: B with A's session, run, sampler, checkpoints and futures.
  const aOp = (route: string, extra: Json) =>
    json(`another tenant's run: ${route}`, "POST", `/api/v1/${route}`, () => ({
      "model_id": a.model,
      "seq_id": a.used.length + 1,
      ...extra,
    }));
  aOp("forward_backward", { "forward_backward_input": fbInput });
  aOp("forward", { "forward_input": fbInput });
  aOp("optim_step", { "adam_params": wireAdam(1e-2) });
  aOp("save_weights", { path: "stolen" });
  aOp("save_weights_for_sampler", { path: "stolen-s" });
  aOp("save_weights_for_sampler", { "sampling_session_seq_id": 5 });
  aOp("load_weights", { path: a.weightsPath, optimizer: true });
  aOp("get_info", {});
  for (let s = 1; s <= a.used.length + 2; s++) {
    json(
      `another tenant's run at seq ${s}`,
      "POST",
      "/api/v1/forward_backward",
      () => ({
        "model_id": a.model,
        "seq_id": s,
        "forward_backward_input": fbInput,
      }),
    );
  }
  const other: [string, string, () => Json][] = [
    ["another tenant's session", "session_heartbeat", () => ({
      "session_id": a.session,
    })],
    ["another tenant's session", "create_model", () => ({
      ...BASE["POST /api/v1/create_model"](),
      "session_id": a.session,
    })],
    ["another tenant's session", "create_sampling_session", () => ({
      ...BASE["POST /api/v1/create_sampling_session"](),
      "session_id": a.session,
    })],
    ["another tenant's run", "create_sampling_session", () => ({
      "session_id": b.session,
      "sampling_session_seq_id": 80,
      "model_id": a.model,
    })],
    ["another tenant's checkpoint", "create_sampling_session", () => ({
      "session_id": b.session,
      "sampling_session_seq_id": 81,
      "model_path": a.samplerPath,
    })],
    ["another tenant's checkpoint", "weights_info", () => ({
      "tinker_path": a.weightsPath,
    })],
    ["another tenant's checkpoint", "weights_info", () => ({
      "tinker_path": a.samplerPath,
    })],
    ["another tenant's checkpoint", "load_weights", () => ({
      "model_id": b.model,
      "seq_id": b.nextSeq(),
      path: a.weightsPath,
      optimizer: true,
    })],
    ["another tenant's checkpoint", "asample", () => ({
      "model_path": a.samplerPath,
      prompt,
      "sampling_params": { "max_tokens": 2 },
    })],
    ["another tenant's sampler", "asample", () => ({
      ...BASE["POST /api/v1/asample"](),
      "sampling_session_id": a.sampler,
    })],
    ["another tenant's sampler", "unload_sampling_session", () => ({
      "sampling_session_id": a.sampler,
    })],
    ["another tenant's future", "retrieve_future", () => ({
      "request_id": a.requestId,
    })],
  ];
  for (const [label, route, body] of other) {
    json(label, "POST", `/api/v1/${route}`, body);
  }
  raw(
    "another tenant's sampler",
    "GET",
    `/api/v1/samplers/${encodeURIComponent(a.sampler)}`,
    () => undefined,
  );
  raw(
    "another tenant's run metrics",
    "GET",
    `/api/v1/runs/${a.model}/metrics.jsonl`,
    () => undefined,
  );
  for (
    const [route, model] of [
      ["/v1/completions", a.samplerPath],
      ["/v1/completions", a.samplerPath.replace("tinker://", "bios://")],
      ["/v1/chat/completions", a.samplerPath],
    ]
  ) {
    json("another tenant's checkpoint", "POST", route, () => ({
      ...BASE[`POST ${route}`](),
      model,
    }));
  }

  // The victim's own key: its seq_ids replayed with another operation, or skipped far ahead.
  for (let i = 0; i < a.used.length; i++) {
    const seq = i + 1;
    const was = a.used[i];
    json(
      `seq_id ${seq} replayed with another forward_backward`,
      "POST",
      "/api/v1/forward_backward",
      () => ({
        "model_id": a.model,
        "seq_id": seq,
        "forward_backward_input": {
          data: [wireDatum([256, 70 + i, 71, 257])],
          "loss_fn": "cross_entropy",
        },
      }),
      a.key,
    );
    json(
      `seq_id ${seq} replayed with an optim_step`,
      "POST",
      "/api/v1/optim_step",
      () => ({
        "model_id": a.model,
        "seq_id": seq,
        "adam_params": wireAdam(0.5),
      }),
      a.key,
    );
    json(
      `seq_id ${seq} (${was.route}) replayed with another save`,
      "POST",
      "/api/v1/save_weights",
      () => ({
        "model_id": a.model,
        "seq_id": seq,
        path: `replayed-${seq}`,
      }),
      a.key,
    );
  }
  for (const skip of [1_000_000, 2 ** 31 - 1, 2 ** 53 - 1]) {
    json(
      `seq_id skipped to ${skip}`,
      "POST",
      "/api/v1/forward_backward",
      () => ({
        "model_id": a.model,
        "seq_id": skip,
        "forward_backward_input": fbInput,
      }),
      a.key,
    );
    json(`seq_id skipped to ${skip}`, "POST", "/api/v1/optim_step", () => ({
      "model_id": a.model,
      "seq_id": skip,
      "adam_params": wireAdam(1e-2),
    }), a.key);
  }

  // Seeded noise until there are enough: random text as JSON, and a wrong
  // type in a random field of a random route.
  const typed = routes.flatMap((r) =>
    Object.entries(props(r.schema).properties)
      .filter(([, s]) => wrongValues(s).length > 0)
      .map(([field, s]) => ({ r, field, wrong: wrongValues(s) }))
  );
  while (out.length < min) {
    if (rng.next() < 0.4) {
      const r = rng.pick(routes.filter((x) => x.schema));
      const n = rng.int(300);
      const bytes = new Uint8Array(n);
      for (let j = 0; j < n; j++) bytes[j] = 32 + rng.int(95);
      // Text that parses as a JSON object would not be noise.
      bytes[0] = 0x7e;
      raw(`random text of ${n} bytes`, "POST", concrete(r.path), () => bytes, {
        "Content-Type": "application/json",
      });
    } else {
      const { r, field, wrong } = rng.pick(typed);
      const v = rng.pick(wrong);
      const base = BASE[`${r.method} ${r.path}`] ?? (() => ({}));
      json(
        `random: ${field} ${JSON.stringify(v)}`,
        r.method,
        concrete(r.path),
        () => ({
          ...base(),
          [field]: v,
        }),
      );
    }
  }
  // Seeded order.
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
