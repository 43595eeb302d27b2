/**
 * Filesystem faults in the caller's terms: a raw error from `Deno.*` (disk
 * full, read-only disk, a file in the way) becomes a {@link StorageError}
 * whose message names what failed by its `bios://` path, says what happened
 * and what to do, and never shows the node's folders. The raw error stays as
 * the `cause` on this node; it does not cross the wire.
 *
 * @module
 */
import { BiosError, StorageError } from "../runtime/errors.ts";

/** What a fault meant for an operation, in the caller's words. */
export interface StorageOp {
  /** The operation and its target, e.g. `saving bios://run-1/weights/a`. */
  what: string;
  /** What the failure left, e.g. `nothing was saved`. */
  outcome: string;
  /** What to do again once fixed, e.g. `save again`. */
  retry: string;
}

/** How each errno reads, and whether the same request may succeed later. */
const FAULTS: Record<string, { text: string; retryable: boolean }> = {
  ENOSPC: { text: "no space left on the checkpoint disk", retryable: true },
  EDQUOT: { text: "the checkpoint disk's quota is used up", retryable: true },
  EIO: { text: "an I/O error on the checkpoint disk", retryable: true },
  EAGAIN: { text: "the checkpoint disk is busy", retryable: true },
  EBUSY: { text: "the checkpoint disk is busy", retryable: true },
  EMFILE: { text: "the node has too many files open", retryable: true },
  ENFILE: { text: "the node has too many files open", retryable: true },
  EROFS: { text: "the checkpoint disk is read-only", retryable: false },
  EACCES: {
    text: "the node may not write to its checkpoint folder",
    retryable: false,
  },
  EPERM: {
    text: "the node may not write to its checkpoint folder",
    retryable: false,
  },
  ENOTDIR: {
    text: "a file is in the way of a checkpoint folder",
    retryable: false,
  },
  EEXIST: {
    text: "a file or folder is in the way of a checkpoint folder",
    retryable: false,
  },
  ENOENT: {
    text: "a checkpoint file or folder vanished during the operation",
    retryable: true,
  },
};

/** The errno code of a filesystem error (`"ENOSPC"`), or undefined for other errors. */
export function fsErrorCode(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return code;
  const isDenoError = Object.values(Deno.errors).some((cls) =>
    e instanceof cls
  );
  return isDenoError ? e.name : undefined;
}

/**
 * `e` as the caller should see it: a Bios error (and any non-filesystem
 * error) as it is; a filesystem error as a {@link StorageError} for `op`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { asStorageError } from "./storage_fault.ts";
 * const raw = Object.assign(new Error("No space left on device (os error 28): write '/srv/x'"), { code: "ENOSPC" });
 * const e = asStorageError(raw, { what: "saving bios://r/weights/a", outcome: "nothing was saved", retry: "save again" }) as Error;
 * assert.equal(e.message, "saving bios://r/weights/a failed: no space left on the checkpoint disk (ENOSPC); nothing was saved — free space and save again");
 * ```
 */
export function asStorageError(e: unknown, op: StorageOp): unknown {
  if (e instanceof BiosError) return e;
  const code = fsErrorCode(e);
  if (code === undefined) return e;
  const fault = FAULTS[code] ??
    { text: "a filesystem error on the checkpoint disk", retryable: false };
  const advice = !fault.retryable
    ? "the node's operator must fix its checkpoint folder first"
    : code === "ENOSPC" || code === "EDQUOT"
    ? `free space and ${op.retry}`
    : `${op.retry} later`;
  return new StorageError(
    `${op.what} failed: ${fault.text} (${code}); ${op.outcome} — ${advice}`,
    fault.retryable,
    { cause: e },
  );
}
