/**
 * Errors at the HTTP edge: a refusal before any work ({@linkcode HttpError},
 * a 4xx whose JSON body names the field or the reason), and an operation's
 * failure as the Tinker wire reports it in a future,
 * `{"error", "category": "user" | "server"}`: the SDK raises
 * `RequestFailedError` with that message and does not retry.
 *
 * @module
 */
import {
  BiosError,
  ConflictError,
  errorToWire,
  InvalidArgumentError,
  NotFoundError,
  type WireError,
} from "../runtime/errors.ts";
import { toWireText } from "./tinker/to_bios.ts";

/** A request refused with an HTTP status and a JSON body. */
export class HttpError extends Error {
  /**
   * A refusal.
   *
   * @param status the HTTP status (4xx)
   * @param message what was wrong, naming the field when there is one
   * @param field the offending field
   * @param headers extra response headers (Retry-After)
   */
  constructor(
    readonly status: 400 | 401 | 404 | 409 | 410 | 413 | 429,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }

  /** The JSON body: `{"error", "field"?}`. */
  body(): Record<string, unknown> {
    return {
      error: this.message,
      ...(this.field !== undefined ? { field: this.field } : {}),
    };
  }
}

/** A 404 that says the same for what does not exist and what is another tenant's. */
export function notFound(
  what: string,
  id: string,
  field?: string,
): HttpError {
  return new HttpError(404, `no ${what} ${JSON.stringify(id)}`, field);
}

/**
 * Whether an error is the caller's to fix (bad input, a name taken, a
 * missing checkpoint) rather than the service's (a crash, storage, a node
 * that went away).
 */
export function isUserError(e: unknown): boolean {
  return e instanceof InvalidArgumentError || e instanceof NotFoundError ||
    e instanceof ConflictError || e instanceof HttpError ||
    (e instanceof BiosError &&
      ["invalid_argument", "not_found", "conflict"].includes(e.code));
}

/**
 * The Bios error behind `e`, as Bios raised it (before the gateway put its
 * field and message in the wire's names), in its wire form; undefined for
 * what is not a Bios error. Bios's TypeScript client rebuilds it from the
 * extra key `bios_error` (the Tinker SDK ignores it).
 */
export function biosErrorJson(e: unknown): WireError | undefined {
  let inner = e;
  while (
    inner instanceof InvalidArgumentError && inner.cause instanceof BiosError
  ) inner = inner.cause;
  return inner instanceof BiosError ? errorToWire(inner) : undefined;
}

/** An operation's failure as the wire's RequestFailedResponse. */
export function failureJson(
  e: unknown,
): { error: string; category: "user" | "server"; "bios_error"?: WireError } {
  const message = e instanceof Error ? e.message : String(e);
  const bios = biosErrorJson(e);
  return {
    error: toWireText(message),
    category: isUserError(e) ? "user" : "server",
    ...(bios !== undefined ? { "bios_error": bios } : {}),
  };
}
