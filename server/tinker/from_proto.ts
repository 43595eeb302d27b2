/**
 * From SDK 0.25's protobuf `forward_backward` body
 * (`Content-Type: application/x-protobuf`, `tinker_public.ForwardBackwardRequest`)
 * to the gateway's training operation: the same head check and the same
 * trainer call as the JSON route, so that the rest of the way (seq order,
 * the trainer's schema, futures) is one path.
 *
 * - The head (`model_id`, `seq_id`) is checked at once: a bad one is a 400
 *   naming the field.
 * - `forward_only` (0.25's `forward`, which has no route of its own there)
 *   is Bios's `forward`; otherwise `forward_backward`.
 * - A body the decoder refuses (an image chunk, an int64 beyond 32 bits, a
 *   bad CSR index) whose head can still be read takes its `seq_id` and
 *   fails its future with the refusal, naming the field, as a refused JSON
 *   body does: a 400 there would leave a gap in the run's `seq_id`s that
 *   its later operations wait on. Bytes whose head cannot be read are a
 *   400 naming where they broke.
 *
 * @module
 */
import { InvalidArgumentError } from "../../runtime/errors.ts";
import { HttpError } from "../errors.ts";
import { parseHead } from "../http.ts";
import {
  decodeForwardBackwardRequest,
  type ForwardBackwardHead,
  readForwardBackwardHead,
} from "../proto/mod.ts";
import { type OpHead, OpHeadSchema } from "./schemas.ts";

/**
 * A training operation's body already converted to Bios's trainer call
 * (less its run and seq), or the reason it was refused.
 */
export type PreparedCall =
  | { call: Record<string, unknown> }
  | { refused: InvalidArgumentError };

/** A protobuf `forward_backward` request as a training operation. */
export interface ProtoTrainingOp {
  /** `forward` for `forward_only`, else `forward_backward`. */
  kind: "forward" | "forward_backward";
  /** The run and the operation's place in its order. */
  head: OpHead;
  /** The trainer call, or the decoder's refusal. */
  prepared: PreparedCall;
}

/**
 * The training operation a protobuf `forward_backward` body asks for.
 *
 * @param bytes the request body (uncompressed)
 * @throws {HttpError} 400 naming the field, when the head is bad or unreadable
 */
export function protoForwardBackward(bytes: Uint8Array): ProtoTrainingOp {
  let head: ForwardBackwardHead | null;
  let prepared: PreparedCall;
  try {
    const req = decodeForwardBackwardRequest(bytes);
    head = req;
    prepared = {
      call: {
        type: req.forwardOnly ? "forward" : "forward_backward",
        data: req.data,
        lossFn: req.lossFn,
        lossFnConfig: req.lossFnConfig,
      },
    };
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    head = readForwardBackwardHead(bytes);
    if (head === null) throw new HttpError(400, e.message, e.field);
    prepared = { refused: e };
  }
  let opHead: OpHead;
  try {
    opHead = parseHead(OpHeadSchema, {
      "model_id": head.modelId,
      "seq_id": head.seqId,
    });
  } catch (e) {
    // Garbage may pass for a head of defaults: the decoder's reason says more.
    if ("refused" in prepared) {
      throw new HttpError(
        400,
        prepared.refused.message,
        prepared.refused.field,
      );
    }
    throw e;
  }
  return {
    kind: head.forwardOnly ? "forward" : "forward_backward",
    head: opHead,
    prepared,
  };
}
