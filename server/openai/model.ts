/**
 * The `model` of an OpenAI request: a base model this cluster serves (as
 * `getServerCapabilities` lists it), or a checkpoint of the caller's tenant
 * (`tinker://<run>/sampler_weights/<name>` or its `bios://` form; a
 * `weights/` checkpoint samples too). Anything else — a name not served,
 * another tenant's checkpoint, one that is not there — is a 404
 * `model_not_found`, all worded alike.
 *
 * @module
 */
import type { SamplingClient } from "../../client/sampling_client.ts";
import type { Tokenizer } from "../../protocol/types/tokenizer.ts";
import { CHECKPOINT_SCHEME } from "../../protocol/types/checkpoint_path.ts";
import { InvalidArgumentError, NotFoundError } from "../../runtime/errors.ts";
import { HttpError } from "../errors.ts";
import type { Gateway } from "../gateway.ts";
import { TINKER_SCHEME, toTinkerPath } from "../../protocol/tinker/paths.ts";
import { OpenAIError } from "./errors.ts";

/** What a request's `model` resolved to. */
export interface ResolvedModel {
  /** The sampler (shared with later requests for the same model). */
  sampler: SamplingClient;
  /** The base model's tokenizer. */
  tokenizer: Tokenizer;
  /** The base model's context length, in tokens. */
  maxContext: number;
}

function notServed(model: string): OpenAIError {
  return new OpenAIError(
    404,
    `The model \`${model}\` does not exist or you do not have access to it (a base model GET /v1/models lists, or a tinker:// or bios:// checkpoint path of yours)`,
    "model",
    "model_not_found",
  );
}

/** The served base models and their context lengths. */
export async function servedModels(
  gateway: Gateway,
): Promise<Map<string, number>> {
  const caps = await gateway.capabilities() as {
    "supported_models": {
      "model_name": string;
      "max_context_length": number;
    }[];
  };
  return new Map(
    caps.supported_models.map((m) => [m.model_name, m.max_context_length]),
  );
}

/**
 * The sampler and tokenizer of `model` for `tenant`.
 *
 * @throws {OpenAIError} 404 `model_not_found`, or 400 for a malformed checkpoint path
 */
export async function resolveModel(
  gateway: Gateway,
  tenant: string,
  model: string,
): Promise<ResolvedModel> {
  const isPath = model.startsWith(TINKER_SCHEME) ||
    model.startsWith(CHECKPOINT_SCHEME);
  const served = await servedModels(gateway);
  if (!isPath && !served.has(model)) throw notServed(model);
  let sampler: SamplingClient;
  try {
    sampler = await gateway.adhocSampler(
      tenant,
      isPath ? { modelPath: toTinkerPath(model) } : { baseModel: model },
      "model",
    );
  } catch (e) {
    if (
      e instanceof NotFoundError || (e instanceof HttpError && e.status === 404)
    ) throw notServed(model);
    if (e instanceof InvalidArgumentError || e instanceof HttpError) {
      throw new OpenAIError(
        400,
        `model: ${
          e.message.replaceAll(
            TINKER_SCHEME,
            model.slice(0, model.indexOf(":")) + "://",
          )
        }`,
        "model",
      );
    }
    throw e;
  }
  const base = sampler.getBaseModel();
  return {
    sampler,
    tokenizer: await gateway.tokenizer(base),
    maxContext: served.get(base) ?? Infinity,
  };
}
