/**
 * From the Tinker wire to Bios's calls: each function turns one request's
 * body (snake_case, `tinker://` paths) into the protocol message a Bios
 * client sends (camelCase, `bios://` paths), checked with protocol/'s own
 * schemas. A refusal is an {@linkcode InvalidArgumentError} whose field and
 * message use the wire's names (`forward_backward_input.data[0].loss_fn_inputs.target_tokens`).
 *
 * SDK 0.25's protobuf `forward_backward` does not pass through here: its
 * decoder (server/proto/) yields Bios's datum inputs, made a call in
 * server/tinker/from_proto.ts and checked by the same
 * {@linkcode checkTrainerCall}.
 *
 * @module
 */
import type { z } from "zod";
import { parseOrThrow } from "../../protocol/parse.ts";
import {
  SampleRequestSchema,
  type TrainerRequest,
  TrainerRequestSchema,
} from "../../protocol/messages.ts";
import {
  type CreateLoraTrainingClientOptions,
  CreateLoraTrainingClientOptionsSchema,
} from "../../protocol/types/lora_config.ts";
import type { SampleRequest } from "../../protocol/messages.ts";
import { InvalidArgumentError } from "../../runtime/errors.ts";
import { toBiosPath, toTinkerText } from "../../protocol/tinker/paths.ts";
import {
  ForwardBackwardInputSchema,
  LoadWeightsBodySchema,
  OptimStepBodySchema,
  SampleBodySchema,
  SaveForSamplerBodySchema,
  SaveWeightsBodySchema,
  WireLoraConfigSchema,
} from "./schemas.ts";

/** `camelCase` → `snake_case` (`targetTokens` → `target_tokens`). */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `snake_case` → `camelCase` (`max_tokens` → `maxTokens`). */
export function camelCase(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * A message of Bios's with its camelCase identifiers in the wire's
 * snake_case and its paths as `tinker://`: what the SDK's user reads.
 */
export function toWireText(message: string): string {
  return toTinkerText(message).replace(
    /\b[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+\b/g,
    snakeCase,
  );
}

/** `e` with its field and message in the wire's names, under `prefix`. */
function renamed(e: unknown, prefix: string): unknown {
  if (!(e instanceof InvalidArgumentError)) return e;
  const inner = toWireText(e.field === "value" ? "" : e.field);
  const field = prefix === ""
    ? inner
    : inner === ""
    ? prefix
    : inner.startsWith("[")
    ? prefix + inner
    : `${prefix}.${inner}`;
  let message = toWireText(e.message);
  if (inner !== "" && message.startsWith(inner)) {
    message = field + message.slice(inner.length);
  } else if (message.startsWith("value ")) {
    message = field + message.slice("value".length);
  }
  return new InvalidArgumentError(field || "body", message, { cause: e });
}

/** Parse with a wire schema; errors name fields under `root`. */
function parseWire<T>(schema: z.ZodType<T>, value: unknown, root: string): T {
  return parseOrThrow(schema, value, root);
}

/** An object's keys renamed to camelCase (other values unchanged). */
function camelKeys(v: unknown): unknown {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).map(([k, x]) => [
      camelCase(k),
      x,
    ]),
  );
}

/**
 * A wire TensorData as the protocol's: a sparse CSR tensor (the SDK sends
 * 2-D torch tensors so) made dense; other shapes are the protocol's to judge.
 */
function denseTensor(t: unknown, field: string): unknown {
  if (t === null || typeof t !== "object" || Array.isArray(t)) return t;
  const {
    sparse_crow_indices: crow,
    sparse_col_indices: col,
    ...rest
  } = t as Record<string, unknown>;
  if (crow === undefined && col === undefined) return rest;
  const shape = rest.shape;
  const data = rest.data;
  const ints = (a: unknown): a is number[] =>
    Array.isArray(a) && a.every((x) => Number.isSafeInteger(x) && x >= 0);
  if (
    !ints(crow) || !ints(col) || !Array.isArray(data) || !ints(shape) ||
    shape.length !== 2 || crow.length !== shape[0] + 1 ||
    col.length !== data.length || crow[shape[0]] !== data.length ||
    shape[0] * shape[1] > 1e8
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} is not a valid sparse CSR tensor (shape [rows, cols], sparse_crow_indices of rows + 1 offsets, sparse_col_indices and data of one entry per value)`,
    );
  }
  const [rows, cols] = shape;
  const dense = new Array<number>(rows * cols).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let k = crow[r]; k < crow[r + 1]; k++) {
      if (col[k] >= cols) {
        throw new InvalidArgumentError(
          field,
          `${field}.sparse_col_indices[${k}] must be < ${cols}: got ${col[k]}`,
        );
      }
      dense[r * cols + col[k]] = data[k] as number;
    }
  }
  return { data: dense, dtype: rest.dtype, shape };
}

/** A wire Datum in the protocol's form (the protocol checks the rest). */
function toDatum(d: unknown, field: string): unknown {
  if (d === null || typeof d !== "object" || Array.isArray(d)) return d;
  const w = d as Record<string, unknown>;
  const inputs = w.loss_fn_inputs;
  return {
    modelInput: w.model_input,
    lossFnInputs: inputs !== null && typeof inputs === "object" &&
        !Array.isArray(inputs)
      ? Object.fromEntries(
        Object.entries(inputs as Record<string, unknown>).map(([k, t]) => [
          k,
          denseTensor(t, `${field}.loss_fn_inputs.${k}`),
        ]),
      )
      : inputs,
  };
}

/** A training operation as Bios's trainer takes it, less its run and seq. */
export type TrainerCall = Omit<TrainerRequest, "runId" | "seq">;

/**
 * Check a training operation with the protocol's schema for run `runId` at
 * `seq`; errors name the wire's fields.
 */
export function checkTrainerCall(
  call: Record<string, unknown>,
  runId: string,
  seq: number,
): TrainerRequest {
  try {
    return parseOrThrow(TrainerRequestSchema, { ...call, runId, seq }, "");
  } catch (e) {
    const prefix = call.type === "forward"
      ? "forward_input"
      : call.type === "forward_backward"
      ? "forward_backward_input"
      : "";
    throw renamed(e, prefix);
  }
}

/**
 * A trainer's refusal of an operation in the wire's names: a datum's field
 * (`data[0].modelInput.tokens[1]`) under the op's input
 * (`forward_backward_input.data[0].model_input.tokens[1]`).
 */
export function wireTrainerError(type: string, e: unknown): unknown {
  if (!(e instanceof InvalidArgumentError)) return e;
  const prefix = type === "forward"
    ? "forward_input"
    : type === "forward_backward"
    ? "forward_backward_input"
    : "";
  return renamed(e, e.field.startsWith("data") ? prefix : "");
}

/**
 * `forward` / `forward_backward`: the body's `forward_input` or
 * `forward_backward_input` as Bios's call.
 */
export function forwardBackwardCall(
  type: "forward" | "forward_backward",
  body: Record<string, unknown>,
): Record<string, unknown> {
  const key = type === "forward" ? "forward_input" : "forward_backward_input";
  const input = parseWire(ForwardBackwardInputSchema, body[key], key);
  return {
    type,
    data: input.data.map((d, i) => toDatum(d, `${key}.data[${i}]`)),
    lossFn: input.loss_fn,
    lossFnConfig: input.loss_fn_config ?? undefined,
  };
}

/** `optim_step`: Adam's settings in Bios's names. */
export function optimStepCall(
  body: Record<string, unknown>,
): Record<string, unknown> {
  const b = parseWire(OptimStepBodySchema, body, "");
  return { type: "optim_step", adamParams: camelKeys(b.adam_params) };
}

function refuseTtl(ttl: unknown): void {
  if (ttl !== undefined && ttl !== null) {
    throw new InvalidArgumentError(
      "ttl_seconds",
      "ttl_seconds is not supported by Bios: checkpoints are kept until deleted (omit it)",
    );
  }
}

/** `save_weights`: weights and optimizer state as `weights/<path>`. */
export function saveWeightsCall(
  body: Record<string, unknown>,
): Record<string, unknown> {
  const b = parseWire(SaveWeightsBodySchema, body, "");
  refuseTtl(b.ttl_seconds);
  if (typeof b.path !== "string") {
    throw new InvalidArgumentError(
      "path",
      "path is required and must be the checkpoint's name",
    );
  }
  return { type: "save_state", name: b.path, overwrite: b.overwrite ?? false };
}

/**
 * `save_weights_for_sampler`: with `path`, a save as `sampler_weights/<path>`;
 * without, an ephemeral copy for a new sampling session (saved as
 * `sampler_weights/ephemeral-<seq>`, so that a replay of this seq finds it).
 */
export function saveForSamplerCall(
  body: Record<string, unknown>,
  seq: number,
): { call: Record<string, unknown>; samplingSessionSeqId?: number } {
  const b = parseWire(SaveForSamplerBodySchema, body, "");
  refuseTtl(b.ttl_seconds);
  if (b.path !== undefined && b.path !== null) {
    if (typeof b.path !== "string") {
      throw new InvalidArgumentError(
        "path",
        "path must be the checkpoint's name",
      );
    }
    return {
      call: {
        type: "save_weights_for_sampler",
        name: b.path,
        overwrite: b.overwrite ?? false,
      },
    };
  }
  const s = b.sampling_session_seq_id;
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) {
    throw new InvalidArgumentError(
      "sampling_session_seq_id",
      "sampling_session_seq_id is required without a path and must be an integer ≥ 0",
    );
  }
  return {
    call: {
      type: "save_weights_for_sampler",
      name: `ephemeral-${seq}`,
      overwrite: true,
    },
    samplingSessionSeqId: s,
  };
}

/** `load_weights`: a `tinker://…/weights/<name>` checkpoint, with or without Adam's state. */
export function loadWeightsCall(
  body: Record<string, unknown>,
): Record<string, unknown> {
  const b = parseWire(LoadWeightsBodySchema, body, "");
  if (
    b.weights_access_token !== undefined && b.weights_access_token !== null
  ) {
    throw new InvalidArgumentError(
      "weights_access_token",
      "weights_access_token is not supported by Bios: a tenant loads its own checkpoints",
    );
  }
  const p = toBiosPath(b.path, "path");
  return { type: "load_state", path: p.path, optimizer: b.optimizer };
}

/** `create_model`'s base model and LoRA config as `createLoraTrainingClient`'s options. */
export function createModelOptions(
  baseModel: unknown,
  loraConfig: unknown,
): CreateLoraTrainingClientOptions {
  const lora = loraConfig === undefined || loraConfig === null
    ? {}
    : parseWire(WireLoraConfigSchema, loraConfig, "lora_config");
  const opts: Record<string, unknown> = { baseModel };
  for (const [k, v] of Object.entries(lora)) {
    if (v !== undefined && v !== null) opts[camelCase(k)] = v;
  }
  try {
    return parseOrThrow(CreateLoraTrainingClientOptionsSchema, opts, "");
  } catch (e) {
    const r = renamed(e, "") as InvalidArgumentError;
    if (r instanceof InvalidArgumentError && r.field !== "base_model") {
      throw new InvalidArgumentError(
        `lora_config.${r.field}`,
        `lora_config.${r.message}`,
        { cause: r },
      );
    }
    throw r;
  }
}

/** `asample`'s body as a sampler's `sample` request. */
export function sampleCall(body: Record<string, unknown>): SampleRequest {
  const b = parseWire(SampleBodySchema, body, "");
  try {
    return parseOrThrow(SampleRequestSchema, {
      type: "sample",
      prompt: b.prompt,
      numSamples: b.num_samples ?? 1,
      samplingParams: camelKeys(b.sampling_params),
      includePromptLogprobs: b.prompt_logprobs ?? false,
      topkPromptLogprobs: b.topk_prompt_logprobs ?? 0,
    }, "");
  } catch (e) {
    throw renamed(e, "");
  }
}
