/**
 * Tinker's protobuf wire (SDK 0.25) for the HTTP gateway: the request body
 * of `forward_backward` in, the `ForwardBackwardOutput` and
 * `SampleResponse` results of `retrieve_future` out. The schema is
 * `schema.ts` (the SDK's `tinker_public` descriptor, written out);
 * `@bufbuild/protobuf` does the wire encoding.
 *
 * - `POST /api/v1/forward_backward` with
 *   `Content-Type: application/x-protobuf`: pass the raw body to
 *   {@link decodeForwardBackwardRequest}; when it refuses the body,
 *   {@link readForwardBackwardHead} still finds the head (`model_id`,
 *   `seq_id`) the refusal belongs to.
 * - `POST /api/v1/retrieve_future` whose request carries
 *   `Accept: application/x-protobuf` (see {@link acceptsProtobuf}), once
 *   the result is a forward-backward or sampling reply: answer 200 with
 *   {@link PROTOBUF_CONTENT_TYPE} and the bytes of
 *   {@link encodeForwardBackwardOutput} or {@link encodeSampleResponse}.
 *   `try_again` and errors stay JSON, as the SDK expects.
 *
 * @module
 */

export {
  type DecodedForwardBackwardRequest,
  decodeForwardBackwardRequest,
  MAX_DENSE_ELEMENTS,
} from "./decode_forward_backward.ts";
export {
  type ForwardBackwardHead,
  readForwardBackwardHead,
} from "./decode_head.ts";
export { encodeForwardBackwardOutput } from "./encode_forward_backward.ts";
export { encodeSampleResponse, TOPK_MASK_LOGPROB } from "./encode_sample.ts";

/** The media type of Tinker's protobuf bodies, requests and results alike. */
export const PROTOBUF_CONTENT_TYPE = "application/x-protobuf";

/**
 * Whether a `Content-Type` or `Accept` header names
 * {@link PROTOBUF_CONTENT_TYPE} (parameters and case ignored), as the SDK
 * tests it on replies.
 */
export function acceptsProtobuf(header: string | null | undefined): boolean {
  return header != null &&
    header.toLowerCase().split(",").some((t) =>
      t.split(";")[0].trim() === PROTOBUF_CONTENT_TYPE
    );
}
