/**
 * What every route shares: the hono environment (the caller's tenant, set
 * by the auth middleware) and reading a JSON body through a zod schema, so
 * that a refusal is a 400 naming the field.
 *
 * @module
 */
import type { Context } from "hono";
import type { z } from "zod";
import { parseOrThrow } from "../protocol/parse.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";
import { HttpError } from "./errors.ts";

/** The hono environment of the gateway's routes. */
export interface GatewayEnv {
  /** Per-request values. */
  Variables: {
    /** The tenant of the request's API key. */
    tenant: string;
  };
}

/**
 * The request's JSON body, which must be an object.
 *
 * @throws {HttpError} 400 when it is not JSON or not an object
 */
export async function readBody(
  c: Context<GatewayEnv>,
): Promise<Record<string, unknown>> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new HttpError(
      400,
      "the body must be JSON (Content-Type: application/json)",
    );
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "the body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/**
 * `value` parsed with `schema`.
 *
 * @throws {HttpError} 400 naming the field
 */
export function parseHead<T>(schema: z.ZodType<T>, value: unknown): T {
  try {
    return parseOrThrow(schema, value, "");
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      throw new HttpError(400, e.message, e.field);
    }
    throw e;
  }
}
