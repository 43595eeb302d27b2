/**
 * The RestClient's calls over the gateway's Tinker wire (client/link.ts
 * `RestLink`): the SDK's REST routes — `GET training_runs`,
 * `GET training_runs/{id}`, `GET training_runs/{id}/checkpoints`,
 * `GET checkpoints`, `DELETE …/checkpoints/{kind}/{name}`, `PUT …/ttl`,
 * `GET …/archive` — answered for the caller's tenant only.
 *
 * @module
 */
import { parseCheckpointPath } from "../protocol/types/checkpoint_path.ts";
import type {
  CheckpointListing,
  Cursor,
  TrainingRunSummary,
} from "../protocol/types/training_runs.ts";
import type { HttpLink } from "./http_link.ts";
import type { ArchiveUrl, Page, RestLink } from "./link.ts";
import type { Json } from "./tinker_wire.ts";
import {
  checkpointFromJson,
  cursorFromJson,
  trainingRunFromJson,
} from "./tinker_rest_wire.ts";

/** The RestClient's calls through `link`. */
export class HttpRest implements RestLink {
  /** @param link the gateway */
  constructor(readonly link: HttpLink) {}

  async listTrainingRuns(
    page: Page,
  ): Promise<{ trainingRuns: TrainingRunSummary[]; cursor: Cursor }> {
    const j = await this.link.call(
      "GET",
      `training_runs?limit=${page.limit}&offset=${page.offset}`,
    );
    return {
      trainingRuns: (j.training_runs as Json[]).map(trainingRunFromJson),
      cursor: cursorFromJson(j.cursor as Json),
    };
  }

  async getTrainingRun(runId: string): Promise<TrainingRunSummary> {
    return trainingRunFromJson(
      await this.link.call("GET", `training_runs/${encodeURIComponent(runId)}`),
    );
  }

  async listCheckpoints(runId: string): Promise<CheckpointListing[]> {
    const j = await this.link.call(
      "GET",
      `training_runs/${encodeURIComponent(runId)}/checkpoints`,
    );
    return (j.checkpoints as Json[]).map(checkpointFromJson);
  }

  async listUserCheckpoints(
    page: Page,
  ): Promise<{ checkpoints: CheckpointListing[]; cursor: Cursor }> {
    const j = await this.link.call(
      "GET",
      `checkpoints?limit=${page.limit}&offset=${page.offset}`,
    );
    return {
      checkpoints: (j.checkpoints as Json[]).map(checkpointFromJson),
      cursor: cursorFromJson(j.cursor as Json),
    };
  }

  async deleteCheckpoint(path: string): Promise<void> {
    await this.link.call("DELETE", route(path));
  }

  async setCheckpointTtl(
    path: string,
    ttlSeconds: number | null,
  ): Promise<void> {
    await this.link.call("PUT", `${route(path)}/ttl`, {
      "ttl_seconds": ttlSeconds,
    });
  }

  async checkpointArchiveUrl(path: string): Promise<ArchiveUrl> {
    const j = await this.link.call("GET", `${route(path)}/archive`);
    return {
      url: j.url as string,
      expires: typeof j.expires === "string" ? new Date(j.expires) : null,
    };
  }
}

/** `training_runs/<run>/checkpoints/<kind>/<name>` of a checkpoint path. */
function route(path: string): string {
  const p = parseCheckpointPath(path);
  return `training_runs/${encodeURIComponent(p.runId)}/checkpoints/${p.kind}/${
    encodeURIComponent(p.name)
  }`;
}
