/**
 * The SDK's RestClient calls on the gateway, for a tenant: training runs and
 * checkpoints listed (only the tenant's: another tenant's run or checkpoint
 * is not found, as one that does not exist), a checkpoint deleted, its TTL
 * set, and its archive.
 *
 * An archive's URL is a capability: `…/api/v1/checkpoint_archives/<token>`,
 * a random token this gateway hands the tenant and remembers (with the
 * checkpoint) for {@link ARCHIVE_URL_MS}; fetching it needs no key, as the
 * SDK's signed URLs do not. The tar is built when fetched, from files the
 * store verified and that are checked again here (client/actor_rest.ts
 * `checkpointArchive`), so a damaged checkpoint is refused, never sent.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import { NotFoundError } from "../runtime/errors.ts";
import {
  checkpointPath,
  type CheckpointPathParts,
} from "../protocol/types/checkpoint_path.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type CheckpointListing,
  type TrainingRunSummary,
  TtlSecondsSchema,
} from "../protocol/types/training_runs.ts";
import {
  checkpointArchive,
  cursor,
  cut,
  newestFirst,
} from "../client/actor_rest.ts";
import type { Page } from "../client/link.ts";
import {
  checkpointJson,
  cursorJson,
  trainingRunJson,
} from "../client/tinker_rest_wire.ts";
import type { Gateway } from "./gateway.ts";
import { notFound } from "./errors.ts";
import type { WireJson } from "./tinker/render.ts";

/** How long an archive's URL works. */
export const ARCHIVE_URL_MS = 15 * 60_000;

/** Time a listing may take (it may visit every run). */
const LIST_TIMEOUT_MS = 120_000;

interface ArchiveGrant {
  tenant: string;
  path: string;
  expires: number;
}

/** The RestClient calls over one gateway. */
export class TinkerRest {
  readonly #grants = new Map<string, ArchiveGrant>();

  /** @param gateway whose tenants own what (and whose service answers) */
  constructor(readonly gateway: Gateway) {}

  async #registry(): Promise<ActorRef> {
    return (await this.gateway.service.connection()).registry;
  }

  async #runs(tenant: string): Promise<TrainingRunSummary[]> {
    const all = await (await this.#registry()).ask<TrainingRunSummary[]>(
      { type: "list_runs" },
      { timeoutMs: LIST_TIMEOUT_MS },
    );
    return all.filter((r) => this.gateway.ownsListed(tenant, r));
  }

  async #ownRun(tenant: string, runId: string): Promise<void> {
    if (!(await this.gateway.owns(tenant, runId))) {
      throw notFound("training run", runId);
    }
  }

  /**
   * The `bios://` path of `tenant`'s checkpoint `<kind>/<name>` of `runId`.
   *
   * @throws {HttpError} 404 when the run is not the tenant's
   * @throws {InvalidArgumentError} for a bad kind or name
   */
  async #ownPath(
    tenant: string,
    parts: CheckpointPathParts,
  ): Promise<string> {
    const path = checkpointPath(parts);
    if (!(await this.gateway.owns(tenant, parts.runId))) {
      throw notFound("checkpoint", `${parts.kind}/${parts.name}`);
    }
    return path;
  }

  /** `GET training_runs`: a page of the tenant's runs, newest first. */
  async listTrainingRuns(tenant: string, page: Page): Promise<WireJson> {
    const all = await this.#runs(tenant);
    return {
      "training_runs": cut(all, page).map((r) => trainingRunJson(r, tenant)),
      cursor: cursorJson(cursor(all, page)),
    };
  }

  /** `GET training_runs/{id}`. */
  async getTrainingRun(tenant: string, runId: string): Promise<WireJson> {
    await this.#ownRun(tenant, runId);
    const r = await (await this.#registry()).ask<TrainingRunSummary>({
      type: "get_run",
      runId,
    });
    return trainingRunJson(r, tenant);
  }

  /** `GET training_runs/{id}/checkpoints`: oldest first. */
  async listCheckpoints(tenant: string, runId: string): Promise<WireJson> {
    await this.#ownRun(tenant, runId);
    const cs = await this.#checkpoints(runId);
    return { checkpoints: cs.map(checkpointJson) };
  }

  #checkpoints(runId: string): Promise<CheckpointListing[]> {
    return this.#registry().then((r) =>
      r.ask<CheckpointListing[]>({ type: "list_checkpoints", runId }, {
        timeoutMs: LIST_TIMEOUT_MS,
      })
    );
  }

  /** `GET checkpoints`: a page of every checkpoint of the tenant's, newest first. */
  async listUserCheckpoints(tenant: string, page: Page): Promise<WireJson> {
    const runs = await this.#runs(tenant);
    const all = newestFirst(
      (await Promise.all(runs.map((r) => this.#checkpoints(r.runId)))).flat(),
    );
    return {
      checkpoints: cut(all, page).map(checkpointJson),
      cursor: cursorJson(cursor(all, page)),
    };
  }

  /** `DELETE training_runs/{id}/checkpoints/{kind}/{name}`. */
  async deleteCheckpoint(
    tenant: string,
    parts: CheckpointPathParts,
  ): Promise<void> {
    const path = await this.#ownPath(tenant, parts);
    await (await this.#registry()).ask({ type: "delete_checkpoint", path });
  }

  /** `PUT …/ttl` with `{ttl_seconds}`: an integer ≥ 1, or null for none. */
  async setCheckpointTtl(
    tenant: string,
    parts: CheckpointPathParts,
    ttlSeconds: unknown,
  ): Promise<void> {
    const path = await this.#ownPath(tenant, parts);
    const ttl = parseOrThrow(TtlSecondsSchema, ttlSeconds, "ttl_seconds");
    await (await this.#registry()).ask({
      type: "set_checkpoint_ttl",
      path,
      ttlSeconds: ttl,
    });
  }

  /**
   * `GET …/archive`: `{url, expires}` of the checkpoint's tar, served under
   * `apiBase` (`<origin>/api/v1`).
   *
   * @throws {NotFoundError} when there is no such checkpoint now
   */
  async archiveUrl(
    tenant: string,
    parts: CheckpointPathParts,
    apiBase: string,
  ): Promise<WireJson> {
    const path = await this.#ownPath(tenant, parts);
    // There now (not expired): the manifest is read and verified.
    await (await this.#registry()).ask({ type: "weights_info", path });
    const now = Date.now();
    for (const [t, g] of this.#grants) {
      if (g.expires <= now) this.#grants.delete(t);
    }
    const token = tokenHex();
    const expires = now + ARCHIVE_URL_MS;
    this.#grants.set(token, { tenant, path, expires });
    return {
      url: `${apiBase}/checkpoint_archives/${token}`,
      expires: new Date(expires).toISOString(),
    };
  }

  /**
   * The tar an archive URL's token names, and its file name.
   *
   * @throws {NotFoundError} for an unknown or expired token, or a checkpoint
   *   deleted since
   */
  async archive(token: string): Promise<{ name: string; tar: Uint8Array }> {
    const g = this.#grants.get(token);
    if (g === undefined || g.expires <= Date.now()) {
      this.#grants.delete(token);
      throw new NotFoundError(
        "no checkpoint archive here: the URL is unknown or has expired (ask for a new one)",
      );
    }
    const tar = await checkpointArchive(await this.#registry(), g.path);
    const name = g.path.slice("bios://".length).replaceAll("/", "-") + ".tar";
    return { name, tar };
  }
}

/** 32 random bytes in hex. */
function tokenHex(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (x) => x.toString(16).padStart(2, "0"),
  ).join("");
}
