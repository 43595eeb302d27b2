/**
 * Host tensor maps in a wire-safe form (plain records of shape + typed array),
 * for LoRA parameters and optimizer moments crossing the transport.
 *
 * @module
 */
import type { HostTensors } from "../model/lora.ts";

export type { WireTensors } from "../protocol/types/wire_tensors.ts";
import type { WireTensors } from "../protocol/types/wire_tensors.ts";

/** Map → record. */
export function toWire(t: HostTensors): WireTensors {
  const out: WireTensors = {};
  for (const [k, v] of t) out[k] = { shape: v.shape, data: v.data };
  return out;
}

/** Record → map (keys sorted, so iteration order is fixed). */
export function fromWire(t: WireTensors): HostTensors {
  const out: HostTensors = new Map();
  for (const k of Object.keys(t).sort()) {
    out.set(k, { shape: t[k].shape, data: t[k].data });
  }
  return out;
}

/** Merge several records into one (shards' parts of one adapter). */
export function mergeWire(parts: readonly WireTensors[]): WireTensors {
  return Object.assign({}, ...parts);
}
