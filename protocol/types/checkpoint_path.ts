/**
 * Checkpoint names and paths (tinker-api.md §3, with `bios://` for
 * `tinker://`): `bios://<run>/weights/<name>` holds weights and optimizer
 * state; `bios://<run>/sampler_weights/<name>` holds weights only.
 *
 * Names and run ids become file and object-store names, so their alphabet
 * is a short ASCII list: no `/`, no `%`, no look-alike Unicode, no control
 * characters, and never a leading `.` (so never `.` or `..`): names
 * starting with `.` are kept for a store's own temporary folders.
 *
 * @module
 */

import { z } from "zod";
import { InvalidArgumentError } from "../../runtime/errors.ts";

/** The URL scheme of checkpoint paths. */
export const CHECKPOINT_SCHEME = "bios://";

/** The two kinds of checkpoint. */
export const CHECKPOINT_KINDS = ["weights", "sampler_weights"] as const;

/** A checkpoint kind: full training state, or sampler-only weights. */
export type CheckpointKind = typeof CHECKPOINT_KINDS[number];

/** Longest checkpoint name. */
export const MAX_CHECKPOINT_NAME_LENGTH = 128;

/** Longest run id. */
export const MAX_RUN_ID_LENGTH = 128;

const NAME_RULE =
  `must be 1–${MAX_CHECKPOINT_NAME_LENGTH} characters of A–Z, a–z, 0–9, ".", "_" or "-", not starting with "."`;
const RUN_ID_RULE =
  `must be 1–${MAX_RUN_ID_LENGTH} characters of A–Z, a–z, 0–9, "_", ":" or "-"`;
const PATH_RULE =
  `must be ${CHECKPOINT_SCHEME}<run>/weights/<name> or ${CHECKPOINT_SCHEME}<run>/sampler_weights/<name>`;

/** Why `name` is not a valid checkpoint name, or null when it is. */
export function checkpointNameProblem(name: unknown): string | null {
  if (typeof name !== "string") return NAME_RULE;
  if (name.length < 1 || name.length > MAX_CHECKPOINT_NAME_LENGTH) {
    return NAME_RULE;
  }
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return NAME_RULE;
  if (name.startsWith(".")) return NAME_RULE;
  return null;
}

/** Whether `id` is a valid run id. Run ids look like `<uuid>:train:<n>`. */
export function isRunId(id: unknown): id is string {
  return typeof id === "string" && id.length >= 1 &&
    id.length <= MAX_RUN_ID_LENGTH && /^[A-Za-z0-9_:-]+$/.test(id);
}

/** Display form of a bad name: JSON, so control characters show as escapes. */
function shown(v: unknown): string {
  if (typeof v !== "string") return typeof v;
  const s = JSON.stringify(v);
  return s.length > 64 ? `${s.slice(0, 60)}…" (${v.length} chars)` : s;
}

/**
 * Throws an {@link InvalidArgumentError} (field `field`, default `"name"`)
 * unless `name` is a valid checkpoint name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateCheckpointName } from "./checkpoint_path.ts";
 * validateCheckpointName("epoch_0");
 * assert.throws(() => validateCheckpointName("a/b"), { field: "name" });
 * ```
 */
export function validateCheckpointName(name: unknown, field = "name"): string {
  const problem = checkpointNameProblem(name);
  if (problem !== null) {
    throw new InvalidArgumentError(
      field,
      `${field} ${problem}: got ${shown(name)}`,
    );
  }
  return name as string;
}

/** Schema of a checkpoint name. */
export const CheckpointNameSchema = z.string({ error: NAME_RULE }).refine(
  (s) => checkpointNameProblem(s) === null,
  { error: NAME_RULE, abort: true },
);

/** Schema of a run id. */
export const RunIdSchema = z.string({ error: RUN_ID_RULE }).refine(isRunId, {
  error: RUN_ID_RULE,
  abort: true,
});

/** The three parts of a checkpoint path. */
export interface CheckpointPathParts {
  /** The training run that wrote the checkpoint. */
  runId: string;
  /** `weights` (weights + optimizer) or `sampler_weights` (weights only). */
  kind: CheckpointKind;
  /** The checkpoint's name within its run and kind. */
  name: string;
}

/** The parts of `path`, or a rule it breaks. */
function splitPath(path: unknown): CheckpointPathParts | string {
  if (typeof path !== "string" || !path.startsWith(CHECKPOINT_SCHEME)) {
    return PATH_RULE;
  }
  const parts = path.slice(CHECKPOINT_SCHEME.length).split("/");
  if (parts.length !== 3) return PATH_RULE;
  const [runId, kind, name] = parts;
  if (!isRunId(runId)) return `must name a run that ${RUN_ID_RULE}`;
  if (!(CHECKPOINT_KINDS as readonly string[]).includes(kind)) return PATH_RULE;
  const problem = checkpointNameProblem(name);
  if (problem !== null) return `must end in a name that ${problem}`;
  return { runId, kind: kind as CheckpointKind, name };
}

/**
 * Splits `bios://<run>/<kind>/<name>` into its parts; throws an
 * {@link InvalidArgumentError} (field `field`, default `"path"`) otherwise.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCheckpointPath } from "./checkpoint_path.ts";
 * assert.deepEqual(parseCheckpointPath("bios://run-1/weights/epoch_0"),
 *   { runId: "run-1", kind: "weights", name: "epoch_0" });
 * ```
 */
export function parseCheckpointPath(
  path: unknown,
  field = "path",
): CheckpointPathParts {
  const r = splitPath(path);
  if (typeof r === "string") {
    throw new InvalidArgumentError(field, `${field} ${r}: got ${shown(path)}`);
  }
  return r;
}

/**
 * The path of a checkpoint: `bios://<runId>/<kind>/<name>`. Throws an
 * {@link InvalidArgumentError} on a bad run id, kind or name.
 */
export function checkpointPath(parts: CheckpointPathParts): string {
  if (!isRunId(parts.runId)) {
    throw new InvalidArgumentError(
      "runId",
      `runId ${RUN_ID_RULE}: got ${shown(parts.runId)}`,
    );
  }
  if (!(CHECKPOINT_KINDS as readonly string[]).includes(parts.kind)) {
    throw new InvalidArgumentError(
      "kind",
      `kind must be "weights" or "sampler_weights": got ${shown(parts.kind)}`,
    );
  }
  validateCheckpointName(parts.name);
  return `${CHECKPOINT_SCHEME}${parts.runId}/${parts.kind}/${parts.name}`;
}

/** Schema of a checkpoint path of either kind. */
export const CheckpointPathSchema = z.string({ error: PATH_RULE }).superRefine(
  (s, ctx) => {
    const r = splitPath(s);
    if (typeof r === "string") {
      ctx.addIssue({ code: "custom", message: r, input: s, continue: false });
    }
  },
);

/**
 * Schema of a path a training client may load: a `weights` checkpoint. A
 * `sampler_weights` checkpoint holds no optimizer state and cannot resume
 * training (as in the anchor).
 */
export const TrainingCheckpointPathSchema = CheckpointPathSchema.refine(
  (s) => (splitPath(s) as CheckpointPathParts).kind === "weights",
  {
    error:
      `must be a ${CHECKPOINT_SCHEME}<run>/weights/<name> path (a sampler_weights checkpoint cannot be loaded for training)`,
    abort: true,
  },
);
