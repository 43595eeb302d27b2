/**
 * Base models loaded into host memory once per process and shared by the
 * shards and samplers that run here.
 *
 * @module
 */
import { NotFoundError } from "../runtime/errors.ts";
import { listModels, resolveModel } from "../model/catalog.ts";
import { loadModelFolder } from "../model/model_folder.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import type { NamedTensors } from "../model/stage_weights.ts";

/** A base model in host memory. */
export interface BaseModel {
  name: string;
  dir: string;
  config: LlamaConfig;
  tensors: NamedTensors;
  tokenizer: Tokenizer;
}

const loaded = new Map<string, Promise<BaseModel>>();

/**
 * Load a catalog model by name (building a built-in one on first use).
 *
 * @throws {NotFoundError} naming `baseModel` and the known names
 */
export function loadBaseModel(name: string): Promise<BaseModel> {
  let p = loaded.get(name);
  if (!p) {
    p = (async () => {
      const dir = await resolveModel(name);
      if (!dir) {
        const known = (await listModels()).map((m) => m.name).join(", ");
        throw new NotFoundError(
          `baseModel ${
            JSON.stringify(name)
          } is not in the catalog; known: ${known}`,
        );
      }
      const m = await loadModelFolder(dir);
      return {
        name,
        dir,
        config: m.config,
        tensors: m.tensors,
        tokenizer: m.tokenizer,
      };
    })();
    p.catch(() => loaded.delete(name));
    loaded.set(name, p);
  }
  return p;
}
