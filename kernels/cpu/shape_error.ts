/**
 * The error every kernel throws when its inputs do not fit together.
 *
 * @module
 */

/**
 * A tensor has the wrong shape, dtype or size for an op. The message names the
 * op and the shapes involved, e.g.
 * `gemm: inner dimensions differ: op(a) is [3,4], op(b) is [5,2]`.
 */
export class ShapeError extends Error {
  /** Builds the error; `op` prefixes the message. */
  constructor(op: string, message: string, options?: ErrorOptions) {
    super(`${op}: ${message}`, options);
    this.name = "ShapeError";
  }
}

/** Formats a shape as `[a,b,c]` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
