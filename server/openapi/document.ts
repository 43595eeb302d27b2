/**
 * The gateway's OpenAPI 3.1 document (`GET /openapi.json`), built from the
 * app's own route table: every route hono serves is one operation, with the
 * method and path hono matches, and the summary, request schema (the zod
 * schema the route parses with, as JSON Schema through `z.toJSONSchema`) and
 * response its route file gave with {@linkcode describeRoute}. A route
 * without a description is still listed, marked `x-undocumented`.
 *
 * @module
 */
import type { Hono } from "hono";
import { z } from "zod";
import { type RouteDoc, routeDoc } from "./describe.ts";

/** An OpenAPI document as JSON. */
export type OpenApiDocument = Record<string, unknown> & {
  paths: Record<string, Record<string, Record<string, unknown>>>;
};

/** The error body of every refusal: `{"error", "field"?}`. */
const ErrorSchema = z.object({
  error: z.string(),
  field: z.string().optional(),
});

/** Methods OpenAPI has an operation for. */
const METHODS = new Set(["GET", "POST", "PUT", "DELETE", "PATCH"]);

/** A zod schema as OpenAPI 3.1's JSON Schema (2020-12, what a caller sends). */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const s = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
  }) as Record<string, unknown>;
  delete s.$schema;
  return s;
}

/** A hono path (`/samplers/:id`) in OpenAPI's form (`/samplers/{id}`) with its parameters. */
export function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const out = path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, (_, name) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: out, params };
}

function operation(
  method: string,
  path: string,
  params: string[],
  doc: RouteDoc | undefined,
): Record<string, unknown> {
  const errorResponse = (description: string) => ({
    description,
    content: {
      "application/json": {
        schema: { $ref: "#/components/schemas/Error" },
      },
    },
  });
  const auth = doc?.auth ?? true;
  const responses: Record<string, unknown> = {
    "200": {
      description: doc?.response ?? "undocumented",
      content: {
        [doc?.responseType ?? "application/json"]: {
          schema: doc?.responseSchema ? jsonSchemaOf(doc.responseSchema) : {},
        },
      },
    },
  };
  if (doc?.request || params.length > 0) {
    responses["400"] = errorResponse("A malformed request, naming the field");
  }
  if (auth) {
    responses["401"] = errorResponse("No API key, or one not known here");
    responses["404"] = errorResponse(
      "Not found (another tenant's is not found too)",
    );
    responses["429"] = errorResponse(
      "The tenant's rate limit; retry after Retry-After seconds",
    );
  }
  const op: Record<string, unknown> = {
    operationId: `${method.toLowerCase()}${
      path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_, c) =>
        c ? c.toUpperCase() : "")
    }`,
    summary: doc?.summary ?? `${method} ${path}`,
    responses,
  };
  if (doc?.description) op.description = doc.description;
  if (doc?.tags) op.tags = doc.tags;
  if (!auth) op.security = [];
  if (!doc) op["x-undocumented"] = true;
  if (params.length > 0) {
    op.parameters = params.map((name) => ({
      name,
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
  }
  if (doc?.request) {
    const schema = jsonSchemaOf(doc.request);
    const content: Record<string, unknown> = {
      "application/json": { schema },
    };
    for (const t of doc.requestTypes ?? []) content[t] = {};
    op.requestBody = { required: true, content };
  }
  return op;
}

/** Options of {@linkcode openApiDocument}. */
export interface OpenApiOptions {
  /** The document's title. */
  title: string;
  /** The API's version. */
  version: string;
  /** What the API is. */
  description?: string;
}

/** The OpenAPI 3.1 document of every route `app` serves. */
export function openApiDocument(
  // deno-lint-ignore no-explicit-any
  app: Hono<any, any, any>,
  opts: OpenApiOptions,
): OpenApiDocument {
  const paths: OpenApiDocument["paths"] = {};
  for (const r of app.routes) {
    const doc = routeDoc(r.handler);
    // Middleware (app.use) is registered for every method: no operation.
    if (!METHODS.has(r.method)) continue;
    const { path, params } = openApiPath(r.path);
    const ops = paths[path] ??= {};
    ops[r.method.toLowerCase()] = operation(r.method, path, params, doc);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: opts.title,
      version: opts.version,
      ...(opts.description ? { description: opts.description } : {}),
    },
    paths,
    components: {
      schemas: { Error: jsonSchemaOf(ErrorSchema) },
      securitySchemes: {
        apiKey: {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description: "A tenant's API key (tml-…), as the Tinker SDK sends it",
        },
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "The same key as `Authorization: Bearer <key>`",
        },
      },
    },
    security: [{ apiKey: [] }, { bearer: [] }],
  };
}
