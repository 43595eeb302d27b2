/**
 * Plain HTTP to a gateway's Tinker wire, for tests that train through a
 * gateway without an SDK: post a route's JSON body with a key, and await a
 * future's result (polling `retrieve_future` past `try_again`).
 *
 * @module
 */

/** A JSON object. */
export type Json = Record<string, unknown>;

/** One tenant's view of a gateway's Tinker wire. */
export class TinkerHttp {
  /** Calls on gateway `url` (its base, no `/api/v1`) with API key `key`. */
  constructor(readonly url: string, readonly key: string) {}

  /** POST `/api/v1/<route>` with `body`; resolves with the status and JSON. */
  async post(
    route: string,
    body: Json,
  ): Promise<{ status: number; json: Json }> {
    const res = await fetch(`${this.url}/api/v1/${route}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-API-Key": this.key },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: await res.json() as Json };
  }

  /** POST a route that starts a future and await its result. @throws {Error} on a refusal or failure */
  async call(route: string, body: Json): Promise<Json> {
    const started = await this.post(route, body);
    if (started.status !== 200) {
      throw new Error(
        `${route}: ${started.status} ${JSON.stringify(started.json)}`,
      );
    }
    for (;;) {
      const r = await this.post("retrieve_future", {
        "request_id": started.json.request_id,
      });
      if (r.status !== 200) {
        throw new Error(`${route}: ${r.status} ${JSON.stringify(r.json)}`);
      }
      if (r.json.type === "try_again") continue;
      if (typeof r.json.error === "string") {
        throw new Error(`${route}: ${JSON.stringify(r.json)}`);
      }
      return r.json;
    }
  }

  /** A new session's id. */
  async session(): Promise<string> {
    const r = await this.post("create_session", {});
    if (r.status !== 200) throw new Error(`create_session: ${r.status}`);
    return r.json.session_id as string;
  }

  /** A new LoRA run of `baseModel` (rank 4) in session `sessionId`; its id. */
  async createModel(sessionId: string, baseModel: string): Promise<string> {
    const out = await this.call("create_model", {
      "session_id": sessionId,
      "model_seq_id": 0,
      "base_model": baseModel,
      "lora_config": { rank: 4 },
    });
    return out.model_id as string;
  }
}

/** A datum over `ids` for next-token cross-entropy, every target weighted 1. */
export function nextTokenDatum(ids: number[]): Json {
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

/**
 * One optimizer step of run `modelId`: a forward_backward of `data` at
 * `seq`, an optim_step at `seq + 1`; resolves with the next free seq.
 */
export async function trainStep(
  wire: TinkerHttp,
  modelId: string,
  seq: number,
  data: Json[],
  learningRate = 0.02,
): Promise<number> {
  await trainStepLoss(wire, modelId, seq, data, learningRate);
  return seq + 2;
}

/** {@linkcode trainStep}, resolving with the forward_backward's `loss:sum`. */
export async function trainStepLoss(
  wire: TinkerHttp,
  modelId: string,
  seq: number,
  data: Json[],
  learningRate = 0.02,
): Promise<number> {
  const fb = await wire.call("forward_backward", {
    "model_id": modelId,
    "seq_id": seq,
    "forward_backward_input": { data, "loss_fn": "cross_entropy" },
  });
  await wire.call("optim_step", {
    "model_id": modelId,
    "seq_id": seq + 1,
    "adam_params": { "learning_rate": learningRate },
  });
  return (fb.metrics as Record<string, number>)["loss:sum"];
}
