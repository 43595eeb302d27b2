/**
 * The arguments of a `sampler` child spec (data) from what a client asked
 * for: a checkpoint or adapter folder is read from the checkpoint store
 * here, so the spec carries its adapter and the node that starts it needs
 * nothing else; a base model with or without a LoRA snapshot goes as it is.
 *
 * @module
 */
import type { ActorRef } from "../runtime/actor_ref.ts";
import type { LoraSnapshot } from "../protocol/registry_messages.ts";
import type { CheckpointMsg } from "./checkpoint_store.ts";
import type { AdapterManifest } from "./peft_adapter.ts";
import type { WireTensors } from "./wire_tensors.ts";

/** The arguments of a sampler spec. */
export interface SamplerArgs {
  samplerId: string;
  baseModel: string;
  modelPath?: string;
  lora?: LoraSnapshot;
}

/**
 * Builds a sampler's arguments: from `modelPath` (loaded through `store`),
 * or from `baseModel` and an optional `lora` snapshot.
 */
export async function samplerArgs(
  store: ActorRef<CheckpointMsg, unknown>,
  req: {
    samplerId: string;
    modelPath?: string;
    baseModel?: string;
    lora?: LoraSnapshot;
  },
): Promise<SamplerArgs> {
  if (req.modelPath === undefined) {
    return {
      samplerId: req.samplerId,
      baseModel: req.baseModel!,
      ...(req.lora ? { lora: req.lora } : {}),
    };
  }
  const ck = await store.ask({
    type: "load",
    path: req.modelPath,
    optimizer: false,
    forTraining: false,
    baseModel: req.baseModel,
  }) as { manifest: AdapterManifest; params: WireTensors };
  const m = ck.manifest;
  return {
    samplerId: req.samplerId,
    baseModel: m.baseModel,
    modelPath: req.modelPath,
    lora: {
      spec: {
        rank: m.lora.rank,
        alpha: m.lora.alpha,
        dropout: 0,
        targets: m.lora.targets as LoraSnapshot["spec"]["targets"],
        seed: m.lora.seed,
      },
      params: ck.params as LoraSnapshot["params"],
    },
  };
}
