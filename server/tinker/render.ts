/**
 * From Bios's results to the Tinker wire (SDK 0.24, JSON): snake_case keys,
 * `tinker://` paths, typed arrays as lists. A future's result is kept in
 * Bios's form with its kind ({@linkcode FutureResult}) and rendered when it
 * is retrieved, so that another content type (the 0.25 SDK's protobuf for
 * `forward_backward` and `sample`) can render the same result its own way.
 *
 * @module
 */
import type {
  ForwardBackwardOutput,
  GetInfoResponse,
  GetServerCapabilitiesResponse,
  OptimStepResponse,
  SampleResponse,
} from "../../protocol/types/responses.ts";
import type { TensorData } from "../../protocol/types/tensor_data.ts";
import { toTinkerPath } from "../../protocol/tinker/paths.ts";
import { snakeCase } from "./to_bios.ts";

/** A JSON object as the wire carries it. */
export type WireJson = Record<string, unknown>;

/** A settled future's result, in Bios's form, tagged with what it is. */
export type FutureResult =
  | { kind: "forward_backward"; value: ForwardBackwardOutput }
  | { kind: "sample"; value: SampleResponse }
  | { kind: "json"; value: WireJson };

function tensorJson(t: TensorData): WireJson {
  return {
    data: Array.from(t.data as ArrayLike<number>),
    dtype: t.dtype,
    shape: t.shape ?? [t.data.length],
  };
}

/** A ForwardBackwardOutput as the wire's JSON. */
export function forwardBackwardJson(out: ForwardBackwardOutput): WireJson {
  return {
    "loss_fn_output_type": out.lossFnOutputType,
    "loss_fn_outputs": out.lossFnOutputs.map((o) =>
      Object.fromEntries(
        Object.entries(o).map(([k, t]) => [snakeCase(k), tensorJson(t)]),
      )
    ),
    metrics: out.metrics,
    // Bios's addition (the SDK ignores extra keys): the loss as Bios reports it.
    loss: out.loss,
  };
}

/** A SampleResponse as the wire's JSON. */
export function sampleJson(r: SampleResponse): WireJson {
  return {
    type: "sample",
    sequences: r.sequences.map((s) => ({
      "stop_reason": s.stopReason,
      tokens: Array.from(s.tokens),
      logprobs: Array.from(s.logprobs),
    })),
    "prompt_logprobs": r.promptLogprobs ?? null,
    "topk_prompt_logprobs": r.topkPromptLogprobs ?? null,
    "prompt_cache_hit_tokens": 0,
  };
}

/** An OptimStepResponse as the wire's JSON. */
export function optimStepJson(r: OptimStepResponse): WireJson {
  return { type: "optim_step", metrics: r.metrics };
}

/** A save's reply: its path as `tinker://`. */
export function savedJson(
  type: "save_weights" | "save_weights_for_sampler" | "load_weights",
  r: { path: string },
): WireJson {
  return { type, path: toTinkerPath(r.path) };
}

/** A training run's info as the wire's GetInfoResponse. */
export function getInfoJson(info: GetInfoResponse): WireJson {
  return {
    type: "get_info",
    "model_id": info.modelId,
    "model_data": {
      arch: info.modelData.arch,
      "model_name": info.modelData.modelName,
      ...(info.modelData.tokenizerId !== undefined
        ? { "tokenizer_id": info.modelData.tokenizerId }
        : {}),
    },
    "is_lora": info.isLora,
    "lora_rank": info.loraRank,
    "model_name": info.modelName,
  };
}

/** The served models as the wire's GetServerCapabilitiesResponse. */
export function capabilitiesJson(
  c: GetServerCapabilitiesResponse & { backendReason?: string },
): WireJson {
  return {
    "supported_models": c.supportedModels.map((m) => ({
      "model_name": m.modelName,
      "max_context_length": m.maxContextLength,
    })),
    // Bios's additions (the SDK ignores extra keys).
    ...(c.unsupportedModels !== undefined
      ? {
        "unsupported_models": c.unsupportedModels.map((m) => ({
          "model_name": m.modelName,
          reason: m.reason,
        })),
      }
      : {}),
    ...(c.backend !== undefined ? { backend: c.backend } : {}),
    ...(c.device !== undefined ? { device: c.device } : {}),
    ...(c.backendReason !== undefined
      ? { "backend_reason": c.backendReason }
      : {}),
  };
}

/** A future's result as the wire's JSON. */
export function futureJson(r: FutureResult): WireJson {
  switch (r.kind) {
    case "forward_backward":
      return forwardBackwardJson(r.value);
    case "sample":
      return sampleJson(r.value);
    case "json":
      return r.value;
  }
}
