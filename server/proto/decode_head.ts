/**
 * `readForwardBackwardHead`: the head of a `tinker_public.ForwardBackwardRequest`
 * (`model_id`, `seq_id`, `forward_only`) read from its top-level fields
 * alone, skipping the batch. The gateway uses it when
 * {@link decodeForwardBackwardRequest} refuses a body: with the head known,
 * the refusal takes the request's `seq_id` (so the run's later operations do
 * not wait for a seq that never comes) and fails its future, naming the field,
 * as a refused JSON body does.
 *
 * @module
 */

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** A forward-backward request's head. */
export interface ForwardBackwardHead {
  /** `model_id` (field 1; "" when absent). */
  modelId: string;
  /** `seq_id` (field 2; 0 when absent). */
  seqId: number;
  /** `forward_only` (field 6; false when absent). */
  forwardOnly: boolean;
}

/**
 * The head of a `ForwardBackwardRequest`, or null when its top level is not
 * well-formed protobuf (truncated, a bad tag, a zstd frame). As protobuf
 * parsers do, the last occurrence of a field wins; fields of another wire
 * type than the schema's are skipped.
 *
 * @param bytes the request body
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readForwardBackwardHead } from "./decode_head.ts";
 * // model_id "m", seq_id 3, data: one empty datum, forward_only true
 * const body = new Uint8Array([10, 1, 109, 16, 3, 26, 0, 48, 1]);
 * assert.deepEqual(readForwardBackwardHead(body), {
 *   modelId: "m",
 *   seqId: 3,
 *   forwardOnly: true,
 * });
 * assert.equal(readForwardBackwardHead(new Uint8Array([10, 5, 109])), null);
 * ```
 */
export function readForwardBackwardHead(
  bytes: Uint8Array,
): ForwardBackwardHead | null {
  const head: ForwardBackwardHead = {
    modelId: "",
    seqId: 0,
    forwardOnly: false,
  };
  try {
    const r = new BinaryReader(bytes);
    while (r.pos < r.len) {
      const [no, type] = r.tag();
      if (no === 1 && type === WireType.LengthDelimited) {
        head.modelId = r.string(true);
      } else if (no === 2 && type === WireType.Varint) {
        head.seqId = r.int32();
      } else if (no === 6 && type === WireType.Varint) {
        head.forwardOnly = r.bool();
      } else {
        r.skip(type, no);
      }
    }
    // A length that ran past the end is read short, not thrown on.
    if (r.pos > r.len) return null;
  } catch {
    return null;
  }
  return head;
}
