/**
 * Reading a LoRA adapter folder that PEFT saved (`save_pretrained`):
 * `adapter_config.json` and `adapter_model.safetensors`, with tensors named
 * `base_model.model.<module>.lora_<A|B>.weight`, in F32, F16 or BF16.
 *
 * Bios takes such a folder for sampling and for training when it is plain
 * LoRA on modules Bios adapts, on every layer, with one rank: the config is
 * parsed by `PeftAdapterConfigSchema` (which refuses the options Bios does
 * not implement, by name), and the tensors must be exactly the adapter of
 * the base model it is loaded onto — every name, every shape. The base
 * model is the one the caller names; without one, `base_model_name_or_path`
 * when it names a model this node serves (by name, or by its folder).
 *
 * @module
 */
import { InvalidArgumentError, NotFoundError } from "../runtime/errors.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type PeftAdapterConfig,
  PeftAdapterConfigSchema,
} from "../protocol/types/peft_adapter_config.ts";
import type { CheckpointManifest } from "../protocol/types/checkpoint_manifest.ts";
import { parseSafetensors } from "../model/safetensors.ts";
import {
  adaptedModules,
  type HostTensors,
  LORA_TARGETS,
  type LoraTarget,
  modulePath,
  peftKeys,
} from "../model/lora.ts";
import type { LlamaConfig } from "../model/config.ts";
import { tensorF32 } from "../model/model_folder.ts";
import type { NamedTensors } from "../model/stage_weights.ts";
import { listModels } from "../model/catalog.ts";

/** Kind of an adapter read from a PEFT folder (beside a checkpoint's kinds). */
export const PEFT_ADAPTER_KIND = "peft_adapter";

/**
 * What the trainer and the registry learn about an adapter they load: a
 * checkpoint's manifest fields, or the same fields for a PEFT folder (step
 * 0, kind `peft_adapter`).
 */
export interface AdapterManifest
  extends Pick<CheckpointManifest, "baseModel" | "lora" | "step"> {
  /** `weights`, `sampler_weights`, or `peft_adapter` for a PEFT folder. */
  kind: CheckpointManifest["kind"] | typeof PEFT_ADAPTER_KIND;
}

/** A PEFT adapter folder, read and checked on its own (not yet against a model). */
export interface PeftAdapter {
  /** The parsed `adapter_config.json`. */
  config: PeftAdapterConfig;
  /** The modules it adapts, in Bios's order. */
  targets: LoraTarget[];
  /** Its tensors in float32, by PEFT name. */
  params: HostTensors;
  /**
   * Base weights PEFT saved beside the factors, by the model's tensor name
   * (`lm_head.weight`, `model.embed_tokens.weight`): PEFT saves the layer a
   * tied embedding adapter sits on. They must equal the model's.
   */
  baseLayers: HostTensors;
}

const BASE_LAYER_KEY =
  /^base_model\.model\.(lm_head|model\.embed_tokens)(?:\.base_layer)?\.weight$/;

const KEY =
  /^base_model\.model\.(lm_head|model\.layers\.(0|[1-9][0-9]*)\.(self_attn|mlp)\.([a-z_]+))\.lora_([AB])\.weight$/;

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (
      e instanceof Deno.errors.NotFound ||
      e instanceof Deno.errors.NotADirectory
    ) return null;
    throw e;
  }
}

/**
 * Read the PEFT adapter in `dir`. `label` is the path as the caller gave it
 * and `field` the request field it came in, for errors.
 *
 * @throws {NotFoundError} when the folder has no `adapter_config.json`
 * @throws {InvalidArgumentError} on `field` for anything Bios cannot load:
 *   an option it does not implement, a module it cannot adapt, a tensor
 *   that is no plain LoRA factor, factors of another rank, a pickled
 *   `adapter_model.bin` only
 */
export async function readPeftAdapter(
  dir: string,
  label: string,
  field = "path",
): Promise<PeftAdapter> {
  const refuse = (what: string) =>
    new InvalidArgumentError(field, `${field} ${label}: ${what}`);
  const cfgBytes = await readOrNull(`${dir}/adapter_config.json`);
  if (cfgBytes === null) {
    throw new NotFoundError(
      `${field} ${label} names no adapter folder (it has no adapter_config.json)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(cfgBytes));
  } catch {
    throw refuse("adapter_config.json is not valid JSON");
  }
  let config: PeftAdapterConfig;
  try {
    config = parseOrThrow(PeftAdapterConfigSchema, json, "adapter_config.json");
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw refuse(e.message);
    throw e;
  }
  const bytes = await readOrNull(`${dir}/adapter_model.safetensors`);
  if (bytes === null) {
    const bin = await readOrNull(`${dir}/adapter_model.bin`);
    throw refuse(
      bin === null
        ? "adapter_model.safetensors is missing"
        : "holds adapter_model.bin (a pickle, which Bios does not read): save it with safe_serialization=True",
    );
  }
  let tensors;
  try {
    tensors = parseSafetensors(bytes).tensors;
  } catch (e) {
    throw refuse(
      `adapter_model.safetensors is not a valid safetensors file (${
        (e as Error).message
      })`,
    );
  }
  const r = config.r;
  const params: HostTensors = new Map();
  const baseLayers: HostTensors = new Map();
  const found = new Set<LoraTarget>();
  for (const [key, t] of tensors) {
    const baseLayer = BASE_LAYER_KEY.exec(key);
    if (baseLayer && t.data instanceof Float32Array) {
      baseLayers.set(`${baseLayer[1]}.weight`, {
        shape: t.shape,
        data: t.data,
      });
      continue;
    }
    const m = KEY.exec(key);
    const target = (m?.[1] === "lm_head" ? "lm_head" : m?.[4]) as LoraTarget;
    if (
      !m || !LORA_TARGETS.includes(target) ||
      (target !== "lm_head" && modulePath(target, Number(m[2])) !== m[1])
    ) {
      throw refuse(
        `adapter_model.safetensors holds tensor ${key}, which is no LoRA factor of a module Bios adapts (${
          LORA_TARGETS.join(", ")
        })`,
      );
    }
    if (!(t.data instanceof Float32Array)) {
      throw refuse(`tensor ${key} is ${t.dtype}, not a float`);
    }
    const side = m[5];
    if (t.shape.length !== 2 || t.shape[side === "A" ? 0 : 1] !== r) {
      throw refuse(
        `tensor ${key} has shape [${t.shape}], not that of a rank ${r} (r in adapter_config.json) lora_${side}`,
      );
    }
    found.add(target);
    params.set(key, { shape: t.shape, data: t.data });
  }
  if (found.size === 0) {
    throw refuse("adapter_model.safetensors holds no tensor");
  }
  const targets = LORA_TARGETS.filter((t) => found.has(t));
  if (Array.isArray(config.target_modules)) {
    const listed = new Set(
      config.target_modules.map((m) => m.slice(m.lastIndexOf(".") + 1)),
    );
    const unlisted = targets.find((t) => !listed.has(t));
    const absent = [...listed].find((t) => !found.has(t as LoraTarget));
    if (unlisted !== undefined || absent !== undefined) {
      throw refuse(
        unlisted !== undefined
          ? `adapter_model.safetensors adapts ${unlisted}, which adapter_config.json's target_modules does not list`
          : `adapter_config.json's target_modules lists ${absent}, which adapter_model.safetensors does not adapt`,
      );
    }
  }
  return { config, targets, params, baseLayers };
}

/**
 * Refuse an adapter whose tensors are not exactly the rank-`r` adapter of
 * `targets` on every layer of the model (and `lm_head` when targeted): a
 * missing tensor (PEFT's `exclude_modules` or a partial selection), an
 * extra one (a deeper model), or a shape of another model; and one whose
 * saved base layers are not the model's own (an adapter of another model
 * of the same shapes; checked when `base.tensors` is given).
 */
export function checkPeftFits(
  a: PeftAdapter,
  base: { config: LlamaConfig; tensors?: NamedTensors },
  baseModel: string,
  label: string,
  field = "path",
): void {
  const cfg = base.config;
  const spec = {
    rank: a.config.r,
    alpha: a.config.lora_alpha,
    dropout: 0,
    targets: a.targets,
    seed: 0,
  };
  const want = new Map<string, number[]>();
  for (
    const mod of adaptedModules(cfg, spec, {
      first: 0,
      last: cfg.numLayers,
      head: true,
    })
  ) {
    const k = peftKeys(mod.path);
    want.set(k.a, [spec.rank, mod.shape[1]]);
    want.set(k.b, [mod.shape[0], spec.rank]);
  }
  const misfit = (what: string) =>
    new InvalidArgumentError(
      field,
      `${field} ${label} does not fit baseModel ${baseModel}: ${what}`,
    );
  for (const [k, shape] of want) {
    const t = a.params.get(k);
    if (!t) {
      throw misfit(
        `tensor ${k} is missing (Bios adapts each target on every layer)`,
      );
    }
    if (t.shape.join(",") !== shape.join(",")) {
      throw misfit(
        `tensor ${k} has shape [${t.shape}], the model needs [${shape}]`,
      );
    }
  }
  for (const k of a.params.keys()) {
    if (!want.has(k)) throw misfit(`tensor ${k} has no place in the model`);
  }
  const tensors = base.tensors;
  if (tensors === undefined) return;
  for (const [name, t] of a.baseLayers) {
    const own = tensors.get(name) ??
      (cfg.tieWordEmbeddings && name === "lm_head.weight"
        ? tensors.get("model.embed_tokens.weight")
        : undefined);
    const ownData = own && tensorF32(own);
    if (
      !own || own.shape.join(",") !== t.shape.join(",") ||
      !ownData!.every((v, i) => v === t.data[i])
    ) {
      throw misfit(
        `the ${name} PEFT saved with the adapter is not the model's (the adapter was made on another model)`,
      );
    }
  }
}

/**
 * The served model an adapter belongs to: `baseModel` when given, else the
 * adapter's `base_model_name_or_path` when it is a model name this node
 * serves or the folder of one.
 *
 * @throws {InvalidArgumentError} on `baseModel` when neither names one
 */
export function adapterBaseModel(
  a: PeftAdapter,
  baseModel: string | undefined,
  label: string,
): string {
  if (baseModel !== undefined) return baseModel;
  const named = a.config.base_model_name_or_path;
  if (typeof named === "string" && named !== "") {
    const models = listModels().filter((m) => m.problem === undefined);
    const hit = models.find((m) => m.name === named) ??
      models.find((m) =>
        m.dir !== undefined && m.dir.replace(/\/+$/, "") ===
          named.replace(/\/+$/, "")
      );
    if (hit) return hit.name;
  }
  throw new InvalidArgumentError(
    "baseModel",
    `baseModel is required for the adapter at ${label}: its adapter_config.json names ${
      JSON.stringify(named ?? null)
    } as base_model_name_or_path, which is no model this node serves`,
  );
}

/** The manifest fields of a PEFT adapter loaded onto `baseModel`. */
export function peftManifest(
  a: PeftAdapter,
  baseModel: string,
): AdapterManifest {
  return {
    kind: PEFT_ADAPTER_KIND,
    baseModel,
    lora: {
      rank: a.config.r,
      alpha: a.config.lora_alpha,
      dropout: a.config.lora_dropout ?? 0,
      targets: [...a.targets],
      seed: 0,
    },
    step: 0,
  };
}
