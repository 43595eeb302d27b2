/**
 * Checkpoint paths on the Tinker wire (shared by the gateway and the HTTP client): the SDK speaks
 * `tinker://<run>/weights/<name>` and `tinker://<run>/sampler_weights/<name>`;
 * inside, the same path is `bios://…`. Only these paths cross the edge: a
 * local adapter folder (which the TypeScript client may load from a node's
 * disk) is not reachable over HTTP.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toBiosPath, toTinkerPath } from "./paths.ts";
 * const p = toBiosPath("tinker://run-1/weights/epoch_0", "path");
 * assert.deepEqual(p, { path: "bios://run-1/weights/epoch_0", runId: "run-1", kind: "weights", name: "epoch_0" });
 * assert.equal(toTinkerPath(p.path), "tinker://run-1/weights/epoch_0");
 * ```
 *
 * @module
 */
import {
  CHECKPOINT_SCHEME,
  type CheckpointPathParts,
  parseCheckpointPath,
} from "../types/checkpoint_path.ts";
import { InvalidArgumentError } from "../../runtime/errors.ts";

/** The scheme of checkpoint paths on the Tinker wire. */
export const TINKER_SCHEME = "tinker://";

/** A `tinker://` path turned into Bios's path, with its parts. */
export interface BiosPath extends CheckpointPathParts {
  /** The `bios://` path. */
  path: string;
}

/**
 * The `bios://` path (and its parts) of a `tinker://` path.
 *
 * @param path the path as the SDK sent it
 * @param field the wire field it came in, for the error
 * @throws {InvalidArgumentError} naming `field` when it is not a checkpoint path
 */
export function toBiosPath(path: unknown, field: string): BiosPath {
  if (typeof path !== "string" || !path.startsWith(TINKER_SCHEME)) {
    throw new InvalidArgumentError(
      field,
      `${field} must be ${TINKER_SCHEME}<run>/weights/<name> or ${TINKER_SCHEME}<run>/sampler_weights/<name>: got ${
        typeof path === "string"
          ? JSON.stringify(path.slice(0, 80))
          : typeof path
      }`,
    );
  }
  const bios = CHECKPOINT_SCHEME + path.slice(TINKER_SCHEME.length);
  try {
    return { path: bios, ...parseCheckpointPath(bios, field) };
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      throw new InvalidArgumentError(field, toTinkerText(e.message));
    }
    throw e;
  }
}

/** The `tinker://` form of a `bios://` path (other strings unchanged). */
export function toTinkerPath(path: string): string {
  return path.startsWith(CHECKPOINT_SCHEME)
    ? TINKER_SCHEME + path.slice(CHECKPOINT_SCHEME.length)
    : path;
}

/** A message with every `bios://` path in it shown as `tinker://`. */
export function toTinkerText(message: string): string {
  return message.replaceAll(CHECKPOINT_SCHEME, TINKER_SCHEME);
}
