/**
 * `retrieve_future`: the long poll of the Tinker wire. It holds the request
 * until the result is there or the hold time passes ("try_again", which the
 * SDK re-polls at once). A result is rendered here, from Bios's form, in the
 * content type the caller takes ({@linkcode respondResult}): a
 * ForwardBackwardOutput or SampleResponse as protobuf when `Accept` names
 * `application/x-protobuf` (SDK 0.25 takes nothing else for them; 0.24 lists
 * it first), every other result, `try_again` and failures as JSON.
 *
 * @module
 */
import { describeRoute } from "../openapi/describe.ts";
import { type Context, Hono } from "hono";
import type { Gateway } from "../gateway.ts";
import { failureJson, HttpError } from "../errors.ts";
import { type GatewayEnv, parseHead, readBody } from "../http.ts";
import {
  acceptsProtobuf,
  encodeForwardBackwardOutput,
  encodeSampleResponse,
  PROTOBUF_CONTENT_TYPE,
} from "../proto/mod.ts";
import { futureJson, type FutureResult } from "../tinker/render.ts";
import { RetrieveFutureSchema } from "../tinker/schemas.ts";

/** A settled future's result as the response the caller takes. */
export function respondResult(
  c: Context<GatewayEnv>,
  result: FutureResult,
): Response {
  if (result.kind !== "json" && acceptsProtobuf(c.req.header("accept"))) {
    const bytes = result.kind === "forward_backward"
      ? encodeForwardBackwardOutput(result.value)
      : encodeSampleResponse(result.value);
    // The encoders allocate their own ArrayBuffer (never shared memory).
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "Content-Type": PROTOBUF_CONTENT_TYPE,
    });
  }
  return c.json(futureJson(result));
}

/** The futures route over `gateway`. */
export function futureRoutes(gateway: Gateway): Hono<GatewayEnv> {
  const r = new Hono<GatewayEnv>();
  r.post("/retrieve_future", async (c) => {
    const b = parseHead(RetrieveFutureSchema, await readBody(c));
    const got = await gateway.futures.retrieve(
      b.request_id,
      c.get("tenant"),
      c.req.raw.signal,
    );
    switch (got.state) {
      case "unknown":
        // Gone, as the SDK reads a 410: the promise is lost (this gateway
        // restarted, or forgot it), so the original request is to be sent
        // again; its seq_id makes it apply once.
        throw new HttpError(
          410,
          `no future ${
            JSON.stringify(b.request_id)
          } here (the gateway restarted, or forgot it): send the request again, under the same seq_id`,
          "request_id",
        );
      case "pending":
        return c.json({
          type: "try_again",
          "request_id": b.request_id,
          "queue_state": "active",
        });
      case "failed":
        return c.json(failureJson(got.error));
      case "done":
        return respondResult(c, got.result);
    }
  });
  describeRoute(r, "post", "/retrieve_future", {
    summary: "Long-poll a future (held up to 40 s, then try_again)",
    description:
      "A ForwardBackwardOutput or SampleResponse comes as protobuf when Accept names application/x-protobuf; everything else as JSON. A failure is {error, category: user|server}.",
    request: RetrieveFutureSchema,
    response:
      "The result, {type: try_again}, or {error, category}; 410 for a future this gateway does not hold (another tenant's included): send the request again",
    tags: ["futures"],
  });
  return r;
}
