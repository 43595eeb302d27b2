/**
 * The methods a path is served with, from hono's route table: what a 405's
 * `Allow` names when a known path is asked with another method.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { allowedMethods } from "./allowed_methods.ts";
 * const routes = [
 *   { method: "ALL", path: "/api/v1/*" }, // middleware: not a route
 *   { method: "GET", path: "/api/v1/training_runs/:id" },
 *   { method: "DELETE", path: "/api/v1/training_runs/:id/checkpoints/:kind/:name" },
 * ];
 * assert.deepEqual(allowedMethods(routes, "/api/v1/training_runs/run-1"), ["GET"]);
 * assert.deepEqual(allowedMethods(routes, "/api/v1/nothing"), []);
 * ```
 *
 * @module
 */

/** A route as hono lists it (`app.routes`). */
export interface RouteEntry {
  /** Its method, or `ALL` for middleware. */
  method: string;
  /** Its pattern: `:name` for a path parameter, `*` for the rest. */
  path: string;
}

const patterns = new Map<string, RegExp>();

function patternOf(path: string): RegExp {
  let re = patterns.get(path);
  if (!re) {
    const body = path
      .split(/(:[A-Za-z0-9_]+|\*)/)
      .map((part) =>
        part === "*"
          ? ".*"
          : part.startsWith(":")
          ? "[^/]+"
          : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
      )
      .join("");
    re = new RegExp(`^${body}/?$`);
    patterns.set(path, re);
  }
  return re;
}

/** The methods (sorted, each once) of the routes whose pattern matches `path`. */
export function allowedMethods(
  routes: readonly RouteEntry[],
  path: string,
): string[] {
  const out = new Set<string>();
  for (const r of routes) {
    if (r.method !== "ALL" && patternOf(r.path).test(path)) out.add(r.method);
  }
  return [...out].sort();
}
