/**
 * `/openapi.json` describes exactly the routes the gateway serves: every
 * route in hono's table (`app.routes`) is requested and reaches its own
 * handler (the request counter names its pattern), is an operation of the
 * document with a description, and needs a key exactly when the document
 * says so; every operation of the document is a route; the document has
 * OpenAPI 3.1's shape (paths, operations, request bodies as JSON Schema,
 * the API key's security scheme, resolvable `$ref`s).
 */
import assert from "node:assert/strict";
import { createApp } from "../server/app.ts";
import { KeyRing } from "../server/auth/keys.ts";
import { Gateway } from "../server/gateway.ts";
import { openApiPath } from "../server/openapi/document.ts";
import { parseExposition } from "./_prometheus_text.ts";
import { startTestService } from "./_helpers.ts";

const KEY = "tml-openapi-0123456789";
const METHODS = new Set(["get", "post", "put", "delete", "patch"]);
const OPERATION_KEYS = new Set([
  "operationId",
  "summary",
  "description",
  "tags",
  "parameters",
  "requestBody",
  "responses",
  "security",
  "deprecated",
]);

type Json = Record<string, unknown>;

/** Every `$ref` in `v` resolves in `doc`. */
function checkRefs(doc: Json, v: unknown, at: string): void {
  if (Array.isArray(v)) {
    return v.forEach((x, i) => checkRefs(doc, x, `${at}[${i}]`));
  }
  if (v === null || typeof v !== "object") return;
  for (const [k, x] of Object.entries(v)) {
    if (k === "$ref") {
      assert.equal(typeof x, "string", at);
      const parts = (x as string).replace(/^#\//, "").split("/");
      let node: unknown = doc;
      for (const p of parts) node = (node as Json | undefined)?.[p];
      assert.ok(node !== undefined, `${at}: $ref ${x} does not resolve`);
    } else checkRefs(doc, x, `${at}.${k}`);
  }
}

Deno.test({
  name:
    "/openapi.json lists every route the gateway serves, and only those, as OpenAPI 3.1",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const svc = await startTestService();
    const gateway = new Gateway({ service: svc.service, tenants: true });
    const app = createApp({
      gateway,
      keys: await KeyRing.of([{ tenant: "t", key: KEY }]),
    });
    try {
      const res = await app.request("/openapi.json");
      assert.equal(res.status, 200);
      const doc = await res.json() as Json & {
        paths: Record<string, Record<string, Json>>;
      };

      // Shape: OpenAPI 3.1 with the API key's scheme.
      assert.equal(doc.openapi, "3.1.0");
      const info = doc.info as Json;
      assert.equal(typeof info.title, "string");
      assert.equal(typeof info.version, "string");
      const schemes = (doc.components as Json).securitySchemes as Record<
        string,
        Json
      >;
      assert.deepEqual(
        { ...schemes.apiKey, description: undefined },
        {
          type: "apiKey",
          in: "header",
          name: "X-API-Key",
          description: undefined,
        },
      );
      assert.deepEqual(
        { type: schemes.bearer.type, scheme: schemes.bearer.scheme },
        { type: "http", scheme: "bearer" },
      );
      for (const req of doc.security as Json[]) {
        for (const name of Object.keys(req)) assert.ok(name in schemes, name);
      }
      checkRefs(doc, doc, "");

      // The app's routes, as (METHOD, OpenAPI path).
      const served = new Map<string, { path: string; method: string }>();
      for (const r of app.routes) {
        if (r.method === "ALL") continue; // middleware
        served.set(`${r.method} ${openApiPath(r.path).path}`, r);
      }
      const documented = new Set<string>();
      const operationIds = new Set<string>();
      const undocumented: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths)) {
        assert.ok(path.startsWith("/"), path);
        const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
        for (const [method, op] of Object.entries(ops)) {
          const at = `${method.toUpperCase()} ${path}`;
          assert.ok(METHODS.has(method), `${at}: not an HTTP method`);
          documented.add(at);
          for (const k of Object.keys(op)) {
            assert.ok(
              OPERATION_KEYS.has(k) || k.startsWith("x-"),
              `${at}.${k}`,
            );
          }
          if (op["x-undocumented"]) undocumented.push(at);
          assert.ok(typeof op.summary === "string" && op.summary !== "", at);
          assert.ok(!operationIds.has(op.operationId as string), at);
          operationIds.add(op.operationId as string);
          const responses = op.responses as Record<string, Json>;
          assert.ok(responses["200"], `${at}: no 200`);
          for (const [code, r] of Object.entries(responses)) {
            assert.match(code, /^[1-5]\d\d$/, at);
            assert.equal(typeof r.description, "string", `${at} ${code}`);
          }
          assert.deepEqual(
            ((op.parameters ?? []) as Json[]).map((p) => {
              assert.equal(p.in, "path");
              assert.equal(p.required, true);
              return p.name;
            }),
            params,
            `${at}: path parameters`,
          );
          if (op.requestBody !== undefined) {
            const body = op.requestBody as Json;
            const schema = ((body.content as Json)["application/json"] as Json)
              .schema as Json;
            assert.equal(schema.type, "object", `${at}: body schema`);
            assert.equal(typeof schema.properties, "object", at);
          }
          if (op.security !== undefined) assert.deepEqual(op.security, [], at);
        }
      }
      assert.deepEqual(
        undocumented,
        [],
        "routes without describeRoute(...) beside them (server/openapi/describe.ts)",
      );
      assert.deepEqual(
        [...documented].sort(),
        [...served.keys()].sort(),
        "the document's operations are the app's routes",
      );

      // The request schemas are the routes' own: spot-check fields.
      const body = (at: string, method = "post") =>
        (((doc.paths[at][method].requestBody as Json).content as Json)[
          "application/json"
        ] as Json).schema as { properties: Json; required?: string[] };
      const fb = body("/api/v1/forward_backward");
      for (const k of ["model_id", "seq_id", "forward_backward_input"]) {
        assert.ok(k in fb.properties, `forward_backward has ${k}`);
      }
      assert.deepEqual(
        [...(fb.required ?? [])].sort(),
        ["forward_backward_input", "model_id", "seq_id"],
      );
      assert.ok("adam_params" in body("/api/v1/optim_step").properties);
      assert.ok("request_id" in body("/api/v1/retrieve_future").properties);
      assert.ok("sampling_params" in body("/api/v1/asample").properties);

      // Request every route: it reaches its own handler, and it needs a key
      // exactly when the document says so.
      for (const [at, r] of served) {
        const [method, path] = at.split(" ");
        const op = doc.paths[path][method.toLowerCase()];
        const url = r.path.replace(/:([A-Za-z0-9_]+)/g, "x");
        const init = (key?: string): RequestInit => ({
          method,
          headers: {
            "Content-Type": "application/json",
            ...(key ? { "X-API-Key": key } : {}),
          },
          body: method === "GET" ? undefined : "{}",
        });
        const withKey = await app.request(url, init(KEY));
        await withKey.body?.cancel();
        assert.notEqual(withKey.status, 401, `${at} with a key`);
        const without = await app.request(url, init());
        await without.body?.cancel();
        assert.equal(
          without.status === 401,
          op.security === undefined,
          `${at}: 401 without a key iff the document asks for one (got ${without.status})`,
        );
      }

      // A served path asked with a method it does not take: 405, naming
      // the ones it takes (the OpenAI routes under /v1 answer in OpenAI's
      // shape, a 404, as OpenAI does).
      const methodsOf = new Map<string, Set<string>>();
      for (const { path, method } of served.values()) {
        if (path.startsWith("/v1/")) continue;
        methodsOf.set(path, (methodsOf.get(path) ?? new Set()).add(method));
      }
      assert.ok(methodsOf.size > 30, `${methodsOf.size} paths`);
      for (const [pattern, methods] of methodsOf) {
        const other = ["GET", "POST", "PUT", "DELETE"].find((m) =>
          !methods.has(m)
        )!;
        const res = await app.request(
          pattern.replace(/:([A-Za-z0-9_]+)/g, "x"),
          { method: other, headers: { "X-API-Key": KEY } },
        );
        const body = await res.json();
        assert.equal(res.status, 405, `${other} ${pattern}`);
        const allow = res.headers.get("allow")!.split(", ");
        for (const m of methods) {
          assert.ok(allow.includes(m), `${pattern}: ${m}`);
        }
        assert.ok(!allow.includes(other), pattern);
        assert.match(body.error, new RegExp(`^${other} is not a method of`));
      }
      const nowhere = await app.request("/api/v1/no_such_route", {
        method: "POST",
        headers: { "X-API-Key": KEY },
      });
      assert.equal(nowhere.status, 404);
      await nowhere.body?.cancel();
      const e = parseExposition(await (await app.request("/metrics")).text());
      for (const [at, r] of served) {
        const reached = e.samples.filter((s) =>
          s.name === "bios_http_request_duration_seconds_count" &&
          s.labels.method === at.split(" ")[0] && s.labels.route === r.path
        ).reduce((a, s) => a + s.value, 0);
        // Twice above; /openapi.json once more at the start.
        const want = r.path === "/openapi.json" ? 3 : 2;
        assert.equal(reached, want, `${at} reached its handler's route`);
      }
    } finally {
      await gateway.close();
      await svc.close();
    }
  },
});
