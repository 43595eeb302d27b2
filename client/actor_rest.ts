/**
 * The RestClient's calls over the actors (client/link.ts `RestLink`): each
 * is an ask of the registry, which answers from the checkpoint store (runs'
 * records, checkpoints, expiries) and the runs' trainers (their steps).
 * Pages are cut here: every run and checkpoint is the caller's.
 *
 * A checkpoint's archive is a ustar file written to this machine's
 * temporary folder, and its URL a `file://` one: the bytes came over the
 * actor connection already (there is no server to hand out a link), and a
 * URL keeps the call's shape on all three deployments — `fetch(url)` reads
 * it here as it reads the gateway's `http://` URL. The file stays until
 * the caller deletes it (`expires` is null).
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import { BiosError } from "../runtime/errors.ts";
import { parseCheckpointPath } from "../protocol/types/checkpoint_path.ts";
import type {
  CheckpointListing,
  Cursor,
  TrainingRunSummary,
} from "../protocol/types/training_runs.ts";
import type { ArchiveUrl, Page, RestLink } from "./link.ts";
import { type TarFile, ustarArchive } from "./tar.ts";

/** Time a listing may take (it may visit every run). */
const LIST_TIMEOUT_MS = 120_000;

/** The RestClient's calls through `registry`. */
export class ActorRest implements RestLink {
  /** @param registry the registry of the cluster (or embedded node) */
  constructor(readonly registry: ActorRef) {}

  async listTrainingRuns(
    page: Page,
  ): Promise<{ trainingRuns: TrainingRunSummary[]; cursor: Cursor }> {
    const all = await this.registry.ask<TrainingRunSummary[]>(
      { type: "list_runs" },
      { timeoutMs: LIST_TIMEOUT_MS },
    );
    return { trainingRuns: cut(all, page), cursor: cursor(all, page) };
  }

  getTrainingRun(runId: string): Promise<TrainingRunSummary> {
    return this.registry.ask({ type: "get_run", runId });
  }

  listCheckpoints(runId: string): Promise<CheckpointListing[]> {
    return this.registry.ask({ type: "list_checkpoints", runId }, {
      timeoutMs: LIST_TIMEOUT_MS,
    });
  }

  async listUserCheckpoints(
    page: Page,
  ): Promise<{ checkpoints: CheckpointListing[]; cursor: Cursor }> {
    const runs = await this.registry.ask<TrainingRunSummary[]>(
      { type: "list_runs" },
      { timeoutMs: LIST_TIMEOUT_MS },
    );
    const all = newestFirst(
      (await Promise.all(runs.map((r) => this.listCheckpoints(r.runId))))
        .flat(),
    );
    return { checkpoints: cut(all, page), cursor: cursor(all, page) };
  }

  async deleteCheckpoint(path: string): Promise<void> {
    await this.registry.ask({ type: "delete_checkpoint", path });
  }

  async setCheckpointTtl(
    path: string,
    ttlSeconds: number | null,
  ): Promise<void> {
    await this.registry.ask({ type: "set_checkpoint_ttl", path, ttlSeconds });
  }

  async checkpointArchiveUrl(path: string): Promise<ArchiveUrl> {
    const tar = await checkpointArchive(this.registry, path);
    const p = parseCheckpointPath(path);
    const file = await Deno.makeTempFile({
      prefix: `bios-${p.runId}-${p.kind}-${p.name}-`,
      suffix: ".tar",
    });
    await Deno.writeFile(file, tar);
    return { url: new URL(`file://${file}`).href, expires: null };
  }
}

/** Checkpoints ordered newest first. */
export function newestFirst(cs: CheckpointListing[]): CheckpointListing[] {
  return [...cs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** The items of `page`. */
export function cut<T>(all: T[], page: Page): T[] {
  return all.slice(page.offset, page.offset + page.limit);
}

/** The cursor of `page` over `all`. */
export function cursor(all: unknown[], page: Page): Cursor {
  return { offset: page.offset, limit: page.limit, totalCount: all.length };
}

/**
 * A ustar archive of checkpoint `path`'s files — the data files, then
 * `manifest.json` and `checkpoint_complete` — checked once more here before
 * it is built: the manifest against the record's sha256 and each data file
 * against the manifest's (the store verified them; this covers the way).
 *
 * @throws {BiosError} (`corrupt_checkpoint`) when a file does not match
 */
export async function checkpointArchive(
  registry: ActorRef,
  path: string,
): Promise<Uint8Array> {
  const files = await registry.ask<Record<string, Uint8Array>>(
    { type: "checkpoint_files", path },
    { timeoutMs: LIST_TIMEOUT_MS },
  );
  const bad = (what: string) =>
    new BiosError(
      "corrupt_checkpoint",
      `the archive of ${path} was not built: ${what}`,
    );
  const record = JSON.parse(
    new TextDecoder().decode(files["checkpoint_complete"]),
  ) as { "manifest_sha256"?: string };
  const manifestBytes = files["manifest.json"];
  if (
    manifestBytes === undefined ||
    await sha256Hex(manifestBytes) !== record.manifest_sha256
  ) {
    throw bad("manifest.json does not match checkpoint_complete");
  }
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as {
    files: Record<string, string>;
    createdAt: string;
  };
  for (const [name, sha] of Object.entries(manifest.files)) {
    const bytes = files[name];
    if (bytes === undefined || await sha256Hex(bytes) !== sha) {
      throw bad(`${name} does not match its sha256 in manifest.json`);
    }
  }
  const mtime = new Date(manifest.createdAt);
  const entries: TarFile[] = Object.entries(files).map(([name, bytes]) => ({
    name,
    bytes,
    mtime,
  }));
  return ustarArchive(entries);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
