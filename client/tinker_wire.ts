/**
 * The HTTP client's side of the Tinker wire (SDK 0.24's JSON, as the Bios
 * gateway serves it): Bios's checked requests as the wire's snake_case
 * bodies, and the wire's results back in Bios's form. The gateway does the
 * reverse (server/tinker/to_bios.ts and render.ts); tests/remote_wire_test.ts
 * round-trips the two.
 *
 * Bios's own additions ride as extra keys, which the Tinker SDK ignores:
 * `lora_config.alpha` / `dropout` / `target_modules`, `overwrite` on a
 * sampler save, and a failure's `bios_error` (the error as Bios raised it,
 * so this client rethrows the same class, field and message).
 *
 * @module
 */
import { errorFromWire, InvalidArgumentError } from "../runtime/errors.ts";
import type { WireError } from "../runtime/errors.ts";
import {
  LOSS_INPUT_DTYPES,
  type LossInputKey,
  SNAKE_LOSS_INPUT_KEYS,
} from "../protocol/types/loss_fn.ts";
import type { ModelInput } from "../protocol/types/model_input.ts";
import type { TensorData } from "../protocol/types/tensor_data.ts";
import type { SampleRequest } from "../protocol/messages.ts";
import type { TrainerOp } from "./trainer_op.ts";
import type {
  ForwardBackwardOutput,
  SampleResponse,
} from "../protocol/types/responses.ts";
import { isLocalAdapterPath } from "../protocol/types/adapter_path.ts";
import { toBiosPath, toTinkerPath } from "../protocol/tinker/paths.ts";

/** A JSON object as the wire carries it. */
export type Json = Record<string, unknown>;

const CAMEL_TO_SNAKE: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(SNAKE_LOSS_INPUT_KEYS).map(([snake, camel]) => [camel, snake]),
);

/** `camelCase` → `snake_case`. */
export function snakeKey(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** An object's keys in snake_case; undefined values dropped (the wire omits them). */
export function snakeKeys(o: Record<string, unknown>): Json {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined).map((
      [k, v],
    ) => [snakeKey(k), v]),
  );
}

/** A ModelInput as the wire's JSON (typed arrays as lists). */
export function modelInputJson(m: ModelInput): Json {
  return {
    chunks: m.chunks.map((c) => ({ ...c, tokens: Array.from(c.tokens) })),
  };
}

function tensorJson(key: string, v: unknown): Json {
  const camel = (SNAKE_LOSS_INPUT_KEYS[key] ?? key) as LossInputKey;
  if (Array.isArray(v) || ArrayBuffer.isView(v)) {
    const data = Array.from(v as ArrayLike<number>);
    return { data, dtype: LOSS_INPUT_DTYPES[camel], shape: [data.length] };
  }
  const t = v as TensorData;
  return {
    data: Array.from(t.data),
    dtype: t.dtype,
    ...(t.shape !== undefined ? { shape: t.shape } : {}),
  };
}

/** The route and body of a checked trainer request, as the wire sends it. */
export function trainerRequestWire(
  req: TrainerOp,
): { route: string; body: Json } {
  const head = { "model_id": req.runId, "seq_id": req.seq };
  switch (req.type) {
    case "forward":
    case "forward_backward": {
      const input = {
        data: req.data.map((d) => ({
          "model_input": modelInputJson(d.modelInput),
          "loss_fn_inputs": Object.fromEntries(
            Object.entries(d.lossFnInputs).map(([k, v]) => [
              CAMEL_TO_SNAKE[k] ?? k,
              tensorJson(k, v),
            ]),
          ),
        })),
        "loss_fn": req.lossFn,
        ...(req.lossFnConfig !== undefined
          ? { "loss_fn_config": req.lossFnConfig }
          : {}),
      };
      const key = req.type === "forward"
        ? "forward_input"
        : "forward_backward_input";
      return { route: req.type, body: { ...head, [key]: input } };
    }
    case "optim_step":
      return {
        route: "optim_step",
        body: { ...head, "adam_params": snakeKeys(req.adamParams) },
      };
    case "save_state":
      return {
        route: "save_weights",
        body: { ...head, path: req.name, overwrite: req.overwrite },
      };
    case "save_weights_for_sampler":
      return {
        route: "save_weights_for_sampler",
        body: { ...head, path: req.name, overwrite: req.overwrite },
      };
    case "load_state":
      return {
        route: "load_weights",
        body: {
          ...head,
          path: wirePath(req.path, "path"),
          optimizer: req.optimizer,
        },
      };
  }
}

/**
 * A `bios://` checkpoint path as the wire's `tinker://` one.
 *
 * @throws {InvalidArgumentError} for a PEFT adapter folder: a node's disk is
 *   not reachable through the gateway
 */
export function wirePath(path: string, field: string): string {
  if (isLocalAdapterPath(path)) {
    throw new InvalidArgumentError(
      field,
      `${field} ${
        JSON.stringify(path)
      } is an adapter folder on a node's disk, which the HTTP gateway does not reach: use a bios://<run>/… checkpoint, or a client on the cluster itself (embedded or nats)`,
    );
  }
  return toTinkerPath(path);
}

/** A `tinker://` path from the wire as Bios's `bios://` path. */
export function biosPath(path: unknown): string {
  return toBiosPath(path, "path").path;
}

/** A checked sample request as `asample`'s body (less where to sample). */
export function sampleBody(req: SampleRequest): Json {
  return {
    prompt: modelInputJson(req.prompt),
    "sampling_params": snakeKeys(req.samplingParams),
    "num_samples": req.numSamples,
    "prompt_logprobs": req.includePromptLogprobs,
    "topk_prompt_logprobs": req.topkPromptLogprobs,
  };
}

function camelKey(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function tensorFromJson(t: Json): TensorData {
  const data = t.data as number[];
  return {
    data: t.dtype === "float32"
      ? Float32Array.from(data)
      : Int32Array.from(data),
    dtype: t.dtype as TensorData["dtype"],
    ...(Array.isArray(t.shape) ? { shape: t.shape as number[] } : {}),
  };
}

/** The wire's ForwardBackwardOutput in Bios's form. */
export function forwardBackwardFromJson(j: Json): ForwardBackwardOutput {
  const metrics = (j.metrics ?? {}) as Record<string, number>;
  return {
    lossFnOutputType: j.loss_fn_output_type as string,
    lossFnOutputs: (j.loss_fn_outputs as Json[]).map((o) =>
      Object.fromEntries(
        Object.entries(o).map((
          [k, t],
        ) => [camelKey(k), tensorFromJson(t as Json)]),
      )
    ),
    metrics,
    loss: typeof j.loss === "number" ? j.loss : metrics["loss:sum"],
  };
}

/** The wire's SampleResponse in Bios's form. */
export function sampleFromJson(j: Json): SampleResponse {
  const out: SampleResponse = {
    sequences: (j.sequences as Json[]).map((s) => ({
      stopReason: s.stop_reason as "stop" | "length",
      tokens: s.tokens as number[],
      logprobs: (s.logprobs ?? []) as number[],
    })),
  };
  if (Array.isArray(j.prompt_logprobs)) {
    out.promptLogprobs = j.prompt_logprobs as (number | null)[];
  }
  if (Array.isArray(j.topk_prompt_logprobs)) {
    out.topkPromptLogprobs = j
      .topk_prompt_logprobs as SampleResponse["topkPromptLogprobs"];
  }
  return out;
}

/** A trainer request's result from its wire JSON, in Bios's form. */
export function trainerResultFromJson(
  type: TrainerOp["type"],
  j: Json,
): unknown {
  switch (type) {
    case "forward":
    case "forward_backward":
      return forwardBackwardFromJson(j);
    case "optim_step":
      return { metrics: j.metrics ?? {} };
    case "save_state":
    case "save_weights_for_sampler":
    case "load_state":
      return { path: biosPath(j.path) };
  }
}

/**
 * The error a wire failure stands for: the Bios error it carries
 * (`bios_error`) as itself, else one of Bios's classes by HTTP status.
 */
export function errorFromJson(j: Json, status: number): Error {
  const b = j.bios_error;
  if (
    b !== null && typeof b === "object" &&
    typeof (b as WireError).name === "string"
  ) {
    return errorFromWire(b as WireError);
  }
  const message = typeof j.error === "string" ? j.error : JSON.stringify(j);
  return errorFromWire({
    name: status === 404
      ? "NotFoundError"
      : status === 400
      ? "InvalidArgumentError"
      : "BiosError",
    message,
    code: status === 404
      ? "not_found"
      : status === 400
      ? "invalid_argument"
      : j.category === "user"
      ? "invalid_argument"
      : "server_error",
    ...(typeof j.field === "string"
      ? { field: j.field }
      : status === 400
      ? { field: "body" }
      : {}),
  });
}
