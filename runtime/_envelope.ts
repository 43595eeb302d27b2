// The message envelope every actor message travels in, and the reply form.
// Private to the runtime: transports move the bytes, refs and cells read them.

import { decode, encode } from "./codec.ts";
import { CodecError, errorFromWire, type WireError } from "./errors.ts";

/** A message on the wire: `t` says whether a reply is wanted. */
export interface Envelope {
  t: "tell" | "ask";
  m: unknown;
}

/** A reply on the wire: a value (absent for `undefined`) or an error. */
export type Reply = { ok?: unknown } | { err: WireError };

export function encodeEnvelope(kind: Envelope["t"], msg: unknown): Uint8Array {
  return encode({ t: kind, m: msg } satisfies Envelope);
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const env = decode(bytes) as Partial<Envelope> | null;
  if (
    env === null || typeof env !== "object" ||
    (env.t !== "tell" && env.t !== "ask")
  ) {
    throw new CodecError('envelope must be { t: "tell" | "ask", m }');
  }
  return { t: env.t, m: env.m };
}

export function encodeOk(value: unknown): Uint8Array {
  return encode({ ok: value });
}

export function encodeErr(err: WireError): Uint8Array {
  return encode({ err });
}

/** Returns the reply's value, or throws the error it carries as its class. */
export function openReply(bytes: Uint8Array): unknown {
  const reply = decode(bytes) as Record<string, unknown> | null;
  if (reply === null || typeof reply !== "object") {
    throw new CodecError("reply must be { ok } or { err }");
  }
  if ("err" in reply) throw errorFromWire(reply.err as WireError);
  return reply.ok;
}
