/**
 * RestClient: the anchor's REST calls — training runs and checkpoints
 * listed, a checkpoint's weights info, deletion, expiry (TTL) and archive —
 * on all three deployments, through the service client's link.
 *
 * @module
 */
import { InvalidArgumentError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  CheckpointPathSchema,
  RunIdSchema,
} from "../protocol/types/checkpoint_path.ts";
import {
  type CheckpointListing,
  type Cursor,
  type TrainingRunSummary,
  TtlSecondsSchema,
} from "../protocol/types/training_runs.ts";
import type { ArchiveUrl, Link, Page, WeightsInfo } from "./link.ts";

/** Largest page a listing returns. */
export const MAX_PAGE = 1000;

/** A page of training runs (newest first) and where it is. */
export interface TrainingRunsPage {
  /** The runs. */
  trainingRuns: TrainingRunSummary[];
  /** The page's offset and limit, and how many runs there are. */
  cursor: Cursor;
}

/** A page of checkpoints and where it is. */
export interface CheckpointsPage {
  /** The checkpoints. */
  checkpoints: CheckpointListing[];
  /** The page's offset and limit, and how many checkpoints there are. */
  cursor: Cursor;
}

/**
 * The REST calls of a {@linkcode ServiceClient}
 * (`service.createRestClient()`): what runs and checkpoints there are, and
 * a checkpoint's deletion, expiry and archive. Through the HTTP gateway
 * they see the caller's tenant only (another tenant's run or checkpoint is
 * not found); embedded or over NATS, every run of the cluster.
 *
 * @example
 * ```ts ignore
 * const service = new ServiceClient();
 * const rest = service.createRestClient();
 * const { trainingRuns } = await rest.listTrainingRuns({ limit: 10 });
 * const [ckpt] = await rest.listCheckpoints(trainingRuns[0].runId);
 * await rest.setCheckpointTtl(ckpt.path, 7 * 24 * 3600); // kept a week
 * const { url } = await rest.getCheckpointArchiveUrl(ckpt.path);
 * const tar = new Uint8Array(await (await fetch(url)).arrayBuffer());
 * await rest.deleteCheckpoint(ckpt.path);
 * ```
 */
export class RestClient {
  readonly #link: () => Promise<Link>;

  /**
   * @param link how the calls reach the deployment (the service client's)
   * @internal
   */
  constructor(link: () => Promise<Link>) {
    this.#link = link;
  }

  /** A page of the training runs, newest first (default 20 from the first). */
  async listTrainingRuns(
    opts: { limit?: number; offset?: number } = {},
  ): Promise<TrainingRunsPage> {
    const page = checkPage(opts, 20);
    return await (await this.#link()).rest().listTrainingRuns(page);
  }

  /**
   * One training run: base model, LoRA settings, step, when it was made,
   * its newest checkpoints.
   *
   * @throws {NotFoundError} when there is no such run (or it is another tenant's)
   */
  async getTrainingRun(runId: string): Promise<TrainingRunSummary> {
    parseOrThrow(RunIdSchema, runId, "runId");
    return await (await this.#link()).rest().getTrainingRun(runId);
  }

  /** A run's checkpoints (both kinds), oldest first. */
  async listCheckpoints(runId: string): Promise<CheckpointListing[]> {
    parseOrThrow(RunIdSchema, runId, "runId");
    return await (await this.#link()).rest().listCheckpoints(runId);
  }

  /** A page of the checkpoints of every run, newest first (default 100). */
  async listUserCheckpoints(
    opts: { limit?: number; offset?: number } = {},
  ): Promise<CheckpointsPage> {
    const page = checkPage(opts, 100);
    return await (await this.#link()).rest().listUserCheckpoints(page);
  }

  /** What a checkpoint holds: base model, LoRA rank and targets, kind, step. */
  async getWeightsInfo(path: string): Promise<WeightsInfo> {
    parseOrThrow(CheckpointPathSchema, path, "path");
    return await (await this.#link()).weightsInfo(path);
  }

  /**
   * Delete a checkpoint, whole and at once.
   *
   * @throws {NotFoundError} when there is none at `path`
   */
  async deleteCheckpoint(path: string): Promise<void> {
    parseOrThrow(CheckpointPathSchema, path, "path");
    await (await this.#link()).rest().deleteCheckpoint(path);
  }

  /**
   * Make a checkpoint expire `ttlSeconds` from now (an integer ≥ 1), or
   * never (null). From then on it is not listed or loadable, and it is
   * deleted.
   */
  async setCheckpointTtl(
    path: string,
    ttlSeconds: number | null,
  ): Promise<void> {
    parseOrThrow(CheckpointPathSchema, path, "path");
    parseOrThrow(TtlSecondsSchema, ttlSeconds, "ttlSeconds");
    await (await this.#link()).rest().setCheckpointTtl(path, ttlSeconds);
  }

  /**
   * Where to fetch a tar (ustar) of the checkpoint's files (PEFT's
   * `adapter_config.json` and `adapter_model.safetensors`, the optimizer
   * state, `manifest.json`, `checkpoint_complete`), each verified against
   * its sha256 first. Through the gateway: an `http(s)://` URL it serves
   * (no key needed) until `expires`. Embedded or over NATS: a `file://`
   * URL of a temporary file written now (`expires` null; delete it when
   * done). `fetch(url)` reads either.
   */
  async getCheckpointArchiveUrl(path: string): Promise<ArchiveUrl> {
    parseOrThrow(CheckpointPathSchema, path, "path");
    return await (await this.#link()).rest().checkpointArchiveUrl(path);
  }
}

function checkPage(
  opts: { limit?: number; offset?: number },
  defaultLimit: number,
): Page {
  const limit = opts.limit ?? defaultLimit;
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new InvalidArgumentError(
      "limit",
      `limit must be an integer in [1, ${MAX_PAGE}]: got ${
        JSON.stringify(opts.limit)
      }`,
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new InvalidArgumentError(
      "offset",
      `offset must be an integer ≥ 0: got ${JSON.stringify(opts.offset)}`,
    );
  }
  return { limit, offset };
}
