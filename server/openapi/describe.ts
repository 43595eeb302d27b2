/**
 * What each route is, for the OpenAPI document: a route file registers a
 * handler with hono as usual and then describes it in one line,
 *
 * ```ts ignore
 * r.post("/create_model", handler);
 * describeRoute(r, "post", "/create_model", {
 *   summary: "Create a LoRA training run",
 *   request: CreateModelSchema,
 *   response: "The future of the run's model_id",
 * });
 * ```
 *
 * The description is attached to the handler hono holds, so that
 * server/openapi/document.ts finds it again by walking the app's routes
 * (`app.routes`, with their full paths once mounted): the method and path
 * are hono's own, the request schema is the zod schema the route parses
 * with. Describing a route that is not registered throws at once; a route
 * registered without a description is listed as undocumented (and fails
 * server/openapi/openapi_test.ts).
 *
 * @module
 */
import type { Hono } from "hono";
import type { z } from "zod";

/** An HTTP method as hono's route table writes it (upper case) or a route file does. */
export type Method = "get" | "post" | "put" | "delete" | "patch";

/** A route's description. */
export interface RouteDoc {
  /** One line: what it does. */
  summary: string;
  /** More, when one line is not enough. */
  description?: string;
  /** Its group in the document (e.g. `training`). */
  tags?: string[];
  /** Schema of its JSON body: the one the route parses with. */
  request?: z.ZodType;
  /** Request content types besides JSON the route takes (e.g. protobuf). */
  requestTypes?: string[];
  /** What a 200 holds. */
  response: string;
  /** Schema of a 200's JSON, when the route has one. */
  responseSchema?: z.ZodType;
  /** The 200's content type. @default {"application/json"} */
  responseType?: string;
  /** Whether it needs an API key. @default {true} */
  auth?: boolean;
}

// deno-lint-ignore ban-types
const docs = new WeakMap<Function, RouteDoc>();

/**
 * Describe the route `method path` that `app` registered (the last one, when
 * several handlers are chained).
 *
 * @throws {Error} when `app` has no such route
 */
export function describeRoute(
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>,
  method: Method,
  path: string,
  doc: RouteDoc,
): void {
  const m = method.toUpperCase();
  const found = app.routes.filter((r) => r.method === m && r.path === path);
  if (found.length === 0) {
    throw new Error(`describeRoute: no route ${m} ${path} is registered`);
  }
  docs.set(found[found.length - 1].handler, doc);
}

/** The description of a handler in hono's route table, if it has one. */
// deno-lint-ignore ban-types
export function routeDoc(handler: Function): RouteDoc | undefined {
  // hono wraps a sub-app's handler when that app has its own error handler.
  const inner = (handler as unknown as Record<string, unknown>)
    .__COMPOSED_HANDLER;
  // deno-lint-ignore ban-types
  return docs.get(handler) ?? (inner ? docs.get(inner as Function) : undefined);
}
