/**
 * Where an adapter to load comes from: a Bios checkpoint
 * (`bios://<run>/<kind>/<name>`), or a LoRA adapter folder in PEFT's layout
 * on the node's disk (`adapter_config.json` + `adapter_model.safetensors`,
 * as `save_pretrained` writes it), named by an absolute path or a
 * `file:///abs/dir` URL. The node reads the folder; a client on another
 * machine names a folder on the node's machine.
 *
 * @module
 */

import { z } from "zod";
import {
  CHECKPOINT_SCHEME,
  CheckpointPathSchema,
  TrainingCheckpointPathSchema,
} from "./checkpoint_path.ts";

/** Longest local adapter path accepted. */
export const MAX_ADAPTER_PATH_LENGTH = 4096;

const LOCAL_RULE =
  `must be a bios:// checkpoint path, or an adapter folder as an absolute path or a file:/// URL (no control characters, at most ${MAX_ADAPTER_PATH_LENGTH} characters)`;

/**
 * The absolute folder a local adapter path names (a `file:` URL decoded),
 * or null when `path` is no local adapter path (a `bios://` path, a
 * relative path, a URL of another host).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { localAdapterDir } from "./adapter_path.ts";
 * assert.equal(localAdapterDir("file:///tmp/my%20adapter"), "/tmp/my adapter");
 * assert.equal(localAdapterDir("/tmp/a"), "/tmp/a");
 * assert.equal(localAdapterDir("bios://run-1/weights/x"), null);
 * ```
 */
export function localAdapterDir(path: unknown): string | null {
  if (typeof path !== "string" || path.length > MAX_ADAPTER_PATH_LENGTH) {
    return null;
  }
  let dir = path;
  if (path.startsWith("file:")) {
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      return null;
    }
    if (url.host !== "" && url.host !== "localhost") return null;
    try {
      dir = decodeURIComponent(url.pathname);
    } catch {
      return null;
    }
  }
  // deno-lint-ignore no-control-regex
  if (!dir.startsWith("/") || /[\u0000-\u001f\u007f]/.test(dir)) return null;
  return dir.length > 1 && dir.endsWith("/") ? dir.slice(0, -1) : dir;
}

/** Whether `path` names a local adapter folder rather than a `bios://` checkpoint. */
export function isLocalAdapterPath(path: unknown): boolean {
  return localAdapterDir(path) !== null;
}

const LocalAdapterPathSchema = z.string({ error: LOCAL_RULE }).refine(
  isLocalAdapterPath,
  { error: LOCAL_RULE, abort: true },
);

function eitherPath(checkpoint: z.ZodType<string>) {
  return z.string({ error: LOCAL_RULE })
    .superRefine((s, ctx) => {
      const schema = s.startsWith(CHECKPOINT_SCHEME)
        ? checkpoint
        : LocalAdapterPathSchema;
      const r = schema.safeParse(s);
      if (!r.success) {
        ctx.addIssue({
          code: "custom",
          message: r.error.issues[0].message,
          input: s,
          continue: false,
        });
      }
    });
}

/**
 * Schema of an adapter to sample from: a checkpoint of either kind, or a
 * PEFT adapter folder.
 */
export const AdapterPathSchema: z.ZodType<string> = eitherPath(
  CheckpointPathSchema,
);

/**
 * Schema of an adapter a training run may load: a `weights` checkpoint, or
 * a PEFT adapter folder (weights only: it holds no optimizer state).
 */
export const TrainingAdapterPathSchema: z.ZodType<string> = eitherPath(
  TrainingCheckpointPathSchema,
);
