/**
 * A minimal Tinker-wire caller over plain HTTP (SDK 0.24's JSON dialect),
 * for the robustness and concurrency tests and the gateway benchmark, which
 * drive a real gateway process without the Python SDK: sessions, runs,
 * training operations at their `seq_id`, sampling, any raw request, and
 * futures polled until they settle.
 *
 * @module
 */

/** A JSON object. */
export type Json = Record<string, unknown>;

/** An HTTP answer: its status and its body (JSON when it parses). */
export interface Answer {
  /** The HTTP status. */
  status: number;
  /** The body as a JSON object ({} when it is not one). */
  json: Json;
  /** The body's text. */
  text: string;
}

/** The wire's Datum for next-token cross-entropy over `ids` (weights 1). */
export function wireDatum(ids: readonly number[]): Json {
  const n = ids.length - 1;
  return {
    "model_input": {
      chunks: [{ type: "encoded_text", tokens: ids.slice(0, n) }],
    },
    "loss_fn_inputs": {
      "target_tokens": { data: ids.slice(1), dtype: "int64", shape: [n] },
      weights: { data: new Array(n).fill(1), dtype: "float32", shape: [n] },
    },
  };
}

/** The wire's AdamParams at `learningRate` (β 0.9/0.95, ε 1e-8, no decay). */
export function wireAdam(learningRate: number): Json {
  return {
    "learning_rate": learningRate,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    "weight_decay": 0,
  };
}

/** One caller of a gateway: its base URL and API key. */
export class WireCaller {
  /**
   * A caller of the gateway at `url` presenting `key` (null: no key).
   *
   * @param url the gateway's base URL (no `/api/v1`)
   * @param key the API key, sent as `X-API-Key`
   */
  constructor(readonly url: string, readonly key: string | null) {}

  /** Send `init` to `path` (under the base URL); the answer, body read. */
  async fetch(path: string, init: RequestInit = {}): Promise<Answer> {
    const headers = new Headers(init.headers);
    if (this.key !== null && !headers.has("x-api-key")) {
      headers.set("X-API-Key", this.key);
    }
    const res = await fetch(`${this.url}${path}`, { ...init, headers });
    const text = await res.text();
    let json: Json = {};
    try {
      const v = JSON.parse(text);
      if (v !== null && typeof v === "object") json = v as Json;
    } catch { /* not JSON: the caller looks at text */ }
    return { status: res.status, json, text };
  }

  /** POST `body` as JSON to `/api/v1/<route>`. */
  post(route: string, body: unknown): Promise<Answer> {
    return this.fetch(`/api/v1/${route}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  /** POST to `route`, requiring a 200; its JSON. */
  async ok(route: string, body: unknown): Promise<Json> {
    const a = await this.post(route, body);
    if (a.status !== 200) throw new Error(`${route}: ${a.status} ${a.text}`);
    return a.json;
  }

  /**
   * The future `requestId`'s settled answer: its result, or its failure
   * `{error, category}`.
   */
  async settle(requestId: unknown): Promise<Json> {
    for (;;) {
      const a = await this.post("retrieve_future", { "request_id": requestId });
      if (a.status !== 200) {
        throw new Error(`retrieve_future: ${a.status} ${a.text}`);
      }
      if (a.json.type !== "try_again") return a.json;
    }
  }

  /** POST to `route` and the result of the future it answers; throws on a failure. */
  async result(route: string, body: unknown): Promise<Json> {
    const r = await this.settle((await this.ok(route, body)).request_id);
    if ("error" in r && "category" in r) {
      throw new Error(`${route} failed: ${r.error}`);
    }
    return r;
  }

  /** A new session's id. */
  async session(): Promise<string> {
    const r = await this.ok("create_session", {
      tags: [],
      "sdk_version": "bios-tests",
      type: "create_session",
    });
    return r.session_id as string;
  }

  /** A new LoRA run of `baseModel` in `session`; its model id. */
  async createModel(
    session: string,
    modelSeqId: number,
    baseModel: string,
    lora: Json,
  ): Promise<string> {
    const r = await this.result("create_model", {
      "session_id": session,
      "model_seq_id": modelSeqId,
      "base_model": baseModel,
      "lora_config": lora,
    });
    return r.model_id as string;
  }

  /** `forward_backward` (or `forward`) at `seq`; its `loss:sum`. */
  async forwardBackward(
    modelId: string,
    seq: number,
    data: Json[],
    route: "forward_backward" | "forward" = "forward_backward",
  ): Promise<number> {
    const input = { data, "loss_fn": "cross_entropy" };
    const r = await this.result(route, {
      "model_id": modelId,
      "seq_id": seq,
      [route === "forward" ? "forward_input" : "forward_backward_input"]: input,
    });
    return (r.metrics as Record<string, number>)["loss:sum"];
  }

  /** `optim_step` at `seq` with {@linkcode wireAdam}. */
  async optimStep(modelId: string, seq: number, lr: number): Promise<Json> {
    return await this.result("optim_step", {
      "model_id": modelId,
      "seq_id": seq,
      "adam_params": wireAdam(lr),
    });
  }

  /** `asample` from a sampling session: each sequence's tokens. */
  async sample(
    samplingSessionId: string,
    prompt: readonly number[],
    params: Json,
    numSamples = 1,
  ): Promise<number[][]> {
    const r = await this.result("asample", {
      "sampling_session_id": samplingSessionId,
      prompt: { chunks: [{ type: "encoded_text", tokens: prompt }] },
      "sampling_params": params,
      "num_samples": numSamples,
    });
    return (r.sequences as { tokens: number[] }[]).map((s) => s.tokens);
  }
}
