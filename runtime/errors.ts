/**
 * Named errors of the Bios runtime, and their wire form.
 *
 * Every error a caller may want to branch on is a class here, with a stable
 * `code` (used by the HTTP gateway to pick a status) and the usual `cause`.
 * An error thrown inside an actor crosses the transport as a {@link WireError}
 * and is rebuilt as the same class at the caller by {@link errorFromWire}.
 *
 * @module
 */

/** Options accepted by every Bios error: the standard `cause`. */
export type BiosErrorOptions = ErrorOptions;

/**
 * Base class of every Bios error. A `BiosError` thrown by an actor's
 * `receive` is a user error: it goes back to the asker and the actor lives on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BiosError } from "./errors.ts";
 * const e = new BiosError("quota_exceeded", "too many runs: limit is 4");
 * assert.equal(e.code, "quota_exceeded");
 * ```
 */
export class BiosError extends Error {
  /** Stable machine-readable code, e.g. `"invalid_argument"`. */
  readonly code: string;

  /**
   * Creates the error.
   *
   * @param code stable machine-readable code
   * @param message human-readable message
   * @param options standard error options (`cause`)
   */
  constructor(code: string, message: string, options?: BiosErrorOptions) {
    super(message, options);
    this.name = "BiosError";
    this.code = code;
  }
}

/**
 * An argument or option is out of range. The message names the field and
 * its limit, e.g. `rank must be an integer in [1, 128]: got 0`.
 */
export class InvalidArgumentError extends BiosError {
  /** The offending field, e.g. `"rank"` or `"children[2].id"`. */
  readonly field: string;

  /**
   * Creates the error.
   *
   * @param field the offending field
   * @param message message naming the field and its limit
   * @param options standard error options (`cause`)
   */
  constructor(field: string, message: string, options?: BiosErrorOptions) {
    super("invalid_argument", message, options);
    this.name = "InvalidArgumentError";
    this.field = field;
  }
}

/** A named thing (child id, run, checkpoint) does not exist. */
export class NotFoundError extends BiosError {
  /**
   * Creates the error.
   *
   * @param message what was not found
   * @param options standard error options (`cause`)
   */
  constructor(message: string, options?: BiosErrorOptions) {
    super("not_found", message, options);
    this.name = "NotFoundError";
  }
}

/** The request conflicts with the current state (name taken, child running). */
export class ConflictError extends BiosError {
  /**
   * Creates the error.
   *
   * @param message what conflicts
   * @param options standard error options (`cause`)
   */
  constructor(message: string, options?: BiosErrorOptions) {
    super("conflict", message, options);
    this.name = "ConflictError";
  }
}

/**
 * An operation came before the one it must follow (`seq` ahead of the next
 * expected). A client that still has that earlier operation in flight sends
 * this one again once the earlier one has settled.
 */
export class OutOfOrderError extends ConflictError {
  /**
   * Creates the error.
   *
   * @param message which seq was expected and which came
   * @param options standard error options (`cause`)
   */
  constructor(message: string, options?: BiosErrorOptions) {
    super(message, options);
    this.name = "OutOfOrderError";
  }
}

/**
 * A client was used after its `close()`: it has let go of what it held (a
 * node, a sampler) and starts nothing new. Make a new client instead. A kind
 * of {@link ConflictError} (code `"conflict"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientClosedError, ConflictError } from "./errors.ts";
 * const e = new ClientClosedError("ServiceClient");
 * assert.ok(e instanceof ConflictError);
 * assert.equal(e.message, "ServiceClient is closed: create a new one");
 * ```
 */
export class ClientClosedError extends ConflictError {
  /**
   * Creates the error.
   *
   * @param client the closed client's class, e.g. `"SamplingClient"`
   * @param options standard error options (`cause`)
   */
  constructor(client: string, options?: BiosErrorOptions) {
    super(`${client} is closed: create a new one`, options);
    this.name = "ClientClosedError";
  }
}

/** An `ask` got no reply within its timeout. The actor may still act on it. */
export class ActorTimeoutError extends BiosError {
  /** Address that was asked. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address address that was asked
   * @param timeoutMs the timeout that passed
   * @param options standard error options (`cause`)
   */
  constructor(address: string, timeoutMs: number, options?: BiosErrorOptions) {
    super(
      "actor_timeout",
      `ask to actor "${address}" timed out after ${timeoutMs} ms`,
      options,
    );
    this.name = "ActorTimeoutError";
    this.address = address;
  }
}

/** The actor stopped (or is stopping) before it handled the message. */
export class ActorStoppedError extends BiosError {
  /** Address of the stopped actor. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address address of the stopped actor
   * @param options standard error options (`cause`)
   */
  constructor(address: string, options?: BiosErrorOptions) {
    super("actor_stopped", `actor "${address}" is stopped`, options);
    this.name = "ActorStoppedError";
    this.address = address;
  }
}

/** No actor is registered at the address. */
export class UnknownActorError extends BiosError {
  /** The address nobody answers on. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address the address nobody answers on
   * @param options standard error options (`cause`)
   */
  constructor(address: string, options?: BiosErrorOptions) {
    super("unknown_actor", `no actor at address "${address}"`, options);
    this.name = "UnknownActorError";
    this.address = address;
  }
}

/**
 * The actor's handler threw a non-Bios error while handling your message; the
 * actor crashed (and its supervisor, if any, decides what happens next).
 */
export class ActorCrashedError extends BiosError {
  /** Address of the crashed actor. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address address of the crashed actor
   * @param reason the original error's message
   * @param options standard error options (`cause`: the original error)
   */
  constructor(address: string, reason: string, options?: BiosErrorOptions) {
    super("actor_crashed", `actor "${address}" crashed: ${reason}`, options);
    this.name = "ActorCrashedError";
    this.address = address;
  }
}

/**
 * A supervisor saw more than `intensity` restarts within `period` ms, stopped
 * its children and exited with this reason (escalating to its parent).
 */
export class RestartIntensityError extends BiosError {
  /** Address of the supervisor that gave up. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address address of the supervisor that gave up
   * @param intensity the configured restart limit
   * @param period the configured window in ms
   * @param options standard error options (`cause`: the last child failure)
   */
  constructor(
    address: string,
    intensity: number,
    period: number,
    options?: BiosErrorOptions,
  ) {
    super(
      "restart_intensity",
      `supervisor "${address}" reached max restart intensity: more than ${intensity} restarts in ${period} ms`,
      options,
    );
    this.name = "RestartIntensityError";
    this.address = address;
  }
}

/** A value could not be encoded to, or decoded from, the wire format. */
export class CodecError extends BiosError {
  /**
   * Creates the error.
   *
   * @param message what could not be encoded or decoded
   * @param options standard error options (`cause`: the codec's own error)
   */
  constructor(message: string, options?: BiosErrorOptions) {
    super("codec", message, options);
    this.name = "CodecError";
  }
}

/**
 * The service cannot do this right now (a worker keeps failing); nothing was
 * applied, and the same request may be sent again.
 */
export class UnavailableError extends BiosError {
  /**
   * The service is unavailable.
   *
   * @param message what is unavailable
   * @param options standard error options (`cause`)
   */
  constructor(message: string, options?: BiosErrorOptions) {
    super("unavailable", message, options);
    this.name = "UnavailableError";
  }
}

/**
 * A storage fault (disk full, read-only disk, a file in the way, an I/O
 * error) failed this one operation; the message says what happened in the
 * caller's terms (`bios://` paths, never a node's folders) and whether
 * anything was changed. `retryable` is true when the same request may succeed
 * later unchanged (space freed, the device back): `ENOSPC`, `EDQUOT`, `EIO`,
 * `EAGAIN`; false when something on the node must be fixed first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorFromWire, errorToWire, StorageError } from "./errors.ts";
 * const e = new StorageError("saving bios://run-1/weights/a failed: disk full", true);
 * const back = errorFromWire(errorToWire(e));
 * assert.ok(back instanceof StorageError);
 * assert.equal(back.retryable, true);
 * ```
 */
export class StorageError extends BiosError {
  /** Whether the same request may succeed later, unchanged. */
  readonly retryable: boolean;

  /**
   * Creates the error.
   *
   * @param message what failed and why, in `bios://` terms
   * @param retryable whether the same request may succeed later, unchanged
   * @param options standard error options (`cause`: the filesystem's error)
   */
  constructor(
    message: string,
    retryable: boolean,
    options?: BiosErrorOptions,
  ) {
    super("storage", message, options);
    this.name = "StorageError";
    this.retryable = retryable;
  }
}

/** All runtime error classes, by name. */
export const errors: {
  BiosError: typeof BiosError;
  InvalidArgumentError: typeof InvalidArgumentError;
  NotFoundError: typeof NotFoundError;
  ConflictError: typeof ConflictError;
  OutOfOrderError: typeof OutOfOrderError;
  ClientClosedError: typeof ClientClosedError;
  ActorTimeoutError: typeof ActorTimeoutError;
  ActorStoppedError: typeof ActorStoppedError;
  UnknownActorError: typeof UnknownActorError;
  ActorCrashedError: typeof ActorCrashedError;
  RestartIntensityError: typeof RestartIntensityError;
  CodecError: typeof CodecError;
  UnavailableError: typeof UnavailableError;
  StorageError: typeof StorageError;
} = {
  BiosError,
  InvalidArgumentError,
  NotFoundError,
  ConflictError,
  OutOfOrderError,
  ClientClosedError,
  ActorTimeoutError,
  ActorStoppedError,
  UnknownActorError,
  ActorCrashedError,
  RestartIntensityError,
  CodecError,
  UnavailableError,
  StorageError,
};

/**
 * An error as it travels between actors: plain data, no stack (a remote
 * stack means nothing to the caller and may leak paths).
 */
export interface WireError {
  /** Class name, e.g. `"InvalidArgumentError"`. */
  name: string;
  /** The message. */
  message: string;
  /** Bios code; `"internal"` for errors that are not Bios errors. */
  code: string;
  /** `InvalidArgumentError.field`, when present. */
  field?: string;
  /** The actor address carried by actor errors, when present. */
  address?: string;
  /** Whether the request may be sent again unchanged (`StorageError.retryable`), when present. */
  retryable?: boolean;
}

// Classes errorFromWire can rebuild; extendable with registerWireError.
const wireClasses = new Map<string, { prototype: Error }>(
  Object.entries(errors),
);

/**
 * Lets {@link errorFromWire} rebuild a Bios error class defined outside the
 * runtime (e.g. an actor's domain error) as itself rather than as `BiosError`.
 *
 * @param cls a `BiosError` subclass whose instances set `name` to `cls.name`
 */
export function registerWireError(
  cls: { name: string; prototype: BiosError },
): void {
  wireClasses.set(cls.name, cls);
}

/**
 * Turns any thrown value into its wire form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorFromWire, errorToWire, InvalidArgumentError } from "./errors.ts";
 * const w = errorToWire(new InvalidArgumentError("rank", "rank must be in [1, 128]: got 0"));
 * const back = errorFromWire(w);
 * assert.ok(back instanceof InvalidArgumentError);
 * assert.equal(back.field, "rank");
 * ```
 */
export function errorToWire(e: unknown): WireError {
  if (e instanceof BiosError) {
    const w: WireError = { name: e.name, message: e.message, code: e.code };
    const extra = e as BiosError & {
      field?: unknown;
      address?: unknown;
      retryable?: unknown;
    };
    if (typeof extra.field === "string") w.field = extra.field;
    if (typeof extra.address === "string") w.address = extra.address;
    if (typeof extra.retryable === "boolean") w.retryable = extra.retryable;
    return w;
  }
  if (e instanceof Error) {
    return { name: e.name, message: e.message, code: "internal" };
  }
  return { name: "Error", message: String(e), code: "internal" };
}

/**
 * Rebuilds an error from its wire form as the same class (for the runtime's
 * classes and registered ones); unknown Bios codes become a `BiosError` that
 * keeps the remote name and code, and `"internal"` becomes a plain `Error`.
 * The stack says it was remote; the remote stack is not carried.
 */
export function errorFromWire(w: WireError): Error {
  const cls = wireClasses.get(w.name);
  let e: Error;
  if (cls) {
    e = Object.create(cls.prototype) as Error;
  } else if (w.code !== "internal") {
    e = Object.create(BiosError.prototype) as Error;
  } else {
    e = Object.create(Error.prototype) as Error;
  }
  // Own, writable, non-enumerable like a constructed Error's.
  const define = (key: string, value: unknown) =>
    Object.defineProperty(e, key, {
      value,
      writable: true,
      configurable: true,
      enumerable: key !== "message" && key !== "stack",
    });
  define("message", w.message);
  define("name", w.name);
  define("stack", `${w.name}: ${w.message}\n    at <remote actor>`);
  if (w.code !== "internal") define("code", w.code);
  if (w.field !== undefined) define("field", w.field);
  if (w.address !== undefined) define("address", w.address);
  if (w.retryable !== undefined) define("retryable", w.retryable);
  return e;
}
