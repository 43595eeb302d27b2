/**
 * How a Trainer reads what arrives: the protocol's schemas
 * (`protocol/messages.ts`), parsed once here, then flattened for compute.
 * Requests may come from any client (in-process, NATS, HTTP), so this is
 * where they are checked; there is no second parser.
 *
 * @module
 */
import { ConflictError, InvalidArgumentError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  TRAINER_QUERY_TYPES,
  type TrainerRequestHead,
  TrainerRequestHeadSchema,
  TrainerRequestSchema,
} from "../protocol/messages.ts";
import type { AdamParams } from "../protocol/types/adam_params.ts";
import { flattenDatum, type NormalizedDatum } from "../protocol/types/datum.ts";
import {
  type LossFnType,
  resolveLossFnConfig,
} from "../protocol/types/loss_fn.ts";

/** A validated training request, its data flattened for compute. */
export type ParsedRequest =
  | { type: "get_info" }
  | { type: "snapshot" }
  | {
    type: "forward" | "forward_backward";
    seq: number;
    data: NormalizedDatum[];
    lossFn: LossFnType;
    /** The loss's full configuration: its defaults, overridden by the request's. */
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
 * Read a request's head and check it belongs to run `runId`; operations
 * (every type but the queries) must carry a `seq`.
 *
 * @throws {InvalidArgumentError} for a malformed head (nothing is consumed)
 * @throws {ConflictError} for a request meant for another run
 */
export function parseHead(raw: unknown, runId: string): TrainerRequestHead {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new InvalidArgumentError(
      "request",
      "request must be an object with a type",
    );
  }
  const head = parseOrThrow(TrainerRequestHeadSchema, raw, "");
  if (head.runId !== runId) {
    throw new ConflictError(
      `runId ${JSON.stringify(head.runId)} does not match this run (${runId})`,
    );
  }
  const query = (TRAINER_QUERY_TYPES as readonly string[]).includes(head.type);
  if (!query && head.seq === undefined) {
    throw new InvalidArgumentError(
      "seq",
      `seq is required by ${head.type} and must be an integer ≥ 1`,
    );
  }
  return head;
}

/**
 * Parse a whole request with the protocol's schema and flatten its data.
 *
 * @throws {InvalidArgumentError} naming the first bad field
 */
export function parseRequest(raw: unknown): ParsedRequest {
  const r = parseOrThrow(TrainerRequestSchema, raw, "");
  switch (r.type) {
    case "get_info":
    case "snapshot":
      return { type: r.type };
    case "forward":
    case "forward_backward":
      return {
        type: r.type,
        seq: r.seq,
        data: r.data.map(flattenDatum),
        lossFn: r.lossFn,
        lossFnConfig: resolveLossFnConfig(r.lossFn, r.lossFnConfig),
      };
    case "optim_step":
      return { type: r.type, seq: r.seq, adamParams: r.adamParams };
    case "save_state":
    case "save_weights_for_sampler":
      return {
        type: r.type,
        seq: r.seq,
        name: r.name,
        overwrite: r.overwrite,
      };
    case "load_state":
      return {
        type: r.type,
        seq: r.seq,
        path: r.path,
        optimizer: r.optimizer,
      };
  }
}
