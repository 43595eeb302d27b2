/**
 * The subject map: where each actor of a node answers. Addresses are
 * dot-separated tokens (`trainer.<run>`), so on the NATS transport each is a
 * subject as it is; in one process they key the local transport.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shardAddress, trainerAddress } from "./addresses.ts";
 * assert.equal(trainerAddress("run-1"), "trainer.run-1");
 * assert.equal(shardAddress("run-1", 0), "shard.run-1.0");
 * assert.equal(shardAddress("run-1", 0, 1), "shard.run-1.0.1");
 * ```
 *
 * @module
 */

/** A node's registry: models, runs, samplers, checkpoint questions. */
export const REGISTRY = "registry";

/** A node's checkpoint store. */
export const CHECKPOINT_STORE = "checkpoints";

/** Address of a run's trainer. */
export function trainerAddress(runId: string): string {
  return `trainer.${runId}`;
}

/**
 * Address of a run's i-th parameter shard (pipeline stage) in pipeline
 * replica `replica` (data parallelism; replica 0's has no suffix).
 */
export function shardAddress(
  runId: string,
  i: number,
  replica: number = 0,
): string {
  return replica === 0
    ? `shard.${runId}.${i}`
    : `shard.${runId}.${i}.${replica}`;
}

/**
 * The group address of the samplers of one model (`sampler.model.<hash>`):
 * a base model, with the checkpoint (or adapter folder) at `modelPath` if
 * any. Every sampler of that model joins it, so on a cluster they serve its
 * requests as one queue group; a sampler of an in-memory snapshot is unique
 * and has none.
 */
export async function samplerModelAddress(
  baseModel: string,
  modelPath?: string,
): Promise<string> {
  const key = new TextEncoder().encode(
    JSON.stringify([baseModel, modelPath ?? null]),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", key));
  const hex = Array.from(
    digest.subarray(0, 16),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return `sampler.model.${hex}`;
}

/**
 * The address a streaming `sample` request's tokens go to as they are drawn
 * (`stream.<id>`): a listener in the requesting client's process
 * (protocol/sample_progress.ts). Samplers tell progress only to addresses
 * of this form ({@linkcode SAMPLE_STREAM_ADDRESS}).
 */
export function sampleStreamAddress(id: string): string {
  return `stream.${id}`;
}

/** The form of a sample stream's address: `stream.` and one token of 1–64 characters. */
export const SAMPLE_STREAM_ADDRESS: RegExp = /^stream\.[A-Za-z0-9_-]{1,64}$/;
