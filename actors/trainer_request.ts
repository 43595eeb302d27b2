/**
 * Validation of what a Trainer receives. Requests may come from any client
 * (in-process, NATS, HTTP), so the trainer checks them all again: a rejected
 * request changes no state.
 *
 * @module
 */
import { ConflictError, InvalidArgumentError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type AdamParams,
  AdamParamsSchema,
} from "../protocol/types/adam_params.ts";
import {
  normalizeBatch,
  type NormalizedDatum,
} from "../protocol/types/datum.ts";
import {
  LOSS_FN_INPUTS,
  lossFnConfigProblems,
  LossFnConfigSchema,
  type LossFnType,
  LossFnTypeSchema,
  resolveLossFnConfig,
} from "../protocol/types/loss_fn.ts";
import { validateCheckpointName } from "../protocol/types/checkpoint_path.ts";

/** A training request as it arrives (before validation). */
export type TrainerRequest =
  | { type: "get_info"; runId?: string }
  | { type: "snapshot"; runId?: string }
  | {
    type: "forward" | "forward_backward";
    runId: string;
    seq: number;
    data: unknown;
    lossFn: unknown;
    lossFnConfig?: unknown;
  }
  | { type: "optim_step"; runId: string; seq: number; adamParams?: unknown }
  | {
    type: "save_state" | "save_weights_for_sampler";
    runId: string;
    seq: number;
    name: unknown;
    overwrite?: boolean;
  }
  | {
    type: "load_state";
    runId: string;
    seq: number;
    path: unknown;
    optimizer: boolean;
  };

/** A validated training request. */
export type ParsedRequest =
  | { type: "get_info" }
  | { type: "snapshot" }
  | {
    type: "forward" | "forward_backward";
    seq: number;
    data: NormalizedDatum[];
    lossFn: LossFnType;
    lossFnConfig: Record<string, number>;
  }
  | { type: "optim_step"; seq: number; adamParams: AdamParams }
  | {
    type: "save_state" | "save_weights_for_sampler";
    seq: number;
    name: string;
    overwrite: boolean;
  }
  | { type: "load_state"; seq: number; path: string; optimizer: boolean };

/**
 * Check a request against the run it was sent to.
 *
 * @throws {InvalidArgumentError} naming the bad field
 * @throws {ConflictError} for a request meant for another run
 */
export function parseTrainerRequest(
  msg: TrainerRequest,
  runId: string,
): ParsedRequest {
  if (msg === null || typeof msg !== "object") {
    throw new InvalidArgumentError(
      "request",
      "request must be an object with a type",
    );
  }
  if (msg.type === "get_info" || msg.type === "snapshot") {
    return { type: msg.type };
  }
  if (msg.runId !== runId) {
    throw new ConflictError(
      `runId ${JSON.stringify(msg.runId)} does not match this run (${runId})`,
    );
  }
  const seq = msg.seq;
  if (!Number.isSafeInteger(seq) || seq < 1) {
    throw new InvalidArgumentError(
      "seq",
      `seq must be an integer ≥ 1: got ${String(seq)}`,
    );
  }
  switch (msg.type) {
    case "forward":
    case "forward_backward": {
      const lossFn = parseOrThrow(LossFnTypeSchema, msg.lossFn, "lossFn");
      const data = normalizeBatch(msg.data);
      const need = LOSS_FN_INPUTS[lossFn];
      data.forEach((d, i) => {
        for (const key of need.required) {
          if (!d.inputs[key]) {
            throw new InvalidArgumentError(
              `data[${i}].lossFnInputs.${key}`,
              `data[${i}].lossFnInputs.${key} is required by lossFn ${lossFn} (needs ${
                need.required.join(", ")
              })`,
            );
          }
        }
      });
      const cfg = msg.lossFnConfig === undefined
        ? {}
        : parseOrThrow(LossFnConfigSchema, msg.lossFnConfig, "lossFnConfig");
      const problem = lossFnConfigProblems(lossFn, cfg)[0];
      if (problem) {
        throw new InvalidArgumentError(
          `lossFnConfig.${problem[0]}`,
          `lossFnConfig.${problem[0]} ${problem[1]}`,
        );
      }
      const lossFnConfig = resolveLossFnConfig(lossFn, cfg);
      return { type: msg.type, seq, data, lossFn, lossFnConfig };
    }
    case "optim_step":
      return {
        type: "optim_step",
        seq,
        adamParams: parseOrThrow(
          AdamParamsSchema,
          msg.adamParams ?? {},
          "adamParams",
        ),
      };
    case "save_state":
    case "save_weights_for_sampler":
      return {
        type: msg.type,
        seq,
        name: validateCheckpointName(msg.name),
        overwrite: msg.overwrite === true,
      };
    case "load_state": {
      if (typeof msg.path !== "string") {
        throw new InvalidArgumentError(
          "path",
          "path must be a bios://<run>/weights/<name> string",
        );
      }
      return {
        type: "load_state",
        seq,
        path: msg.path,
        optimizer: msg.optimizer === true,
      };
    }
    default:
      throw new InvalidArgumentError(
        "type",
        `type ${
          JSON.stringify((msg as { type: unknown }).type)
        } is not a training request`,
      );
  }
}
