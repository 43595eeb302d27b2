/**
 * Sampler: base weights plus a frozen LoRA snapshot, generating with a KV
 * cache. Requests are handled one at a time; the `numSamples` sequences of a
 * request are generated together as one batch. The base weights on the device
 * are shared with the other samplers of the same model in this process
 * (`shared_base_weights.ts`); a sampler owns only its adapter.
 *
 * Besides its own address, a sampler of a base model or a checkpoint answers
 * at its model's group address (`samplerModelAddress`): the samplers of one
 * model, wherever they run, share that model's requests (one NATS queue
 * group). Sampling is a function of the model and the request (its seed), so
 * any member gives the same tokens. A snapshot's sampler has no group.
 *
 * @module
 */
import type { Actor, ActorContext } from "../runtime/actor.ts";
import { InvalidArgumentError } from "../runtime/errors.ts";
import type { Backend } from "../kernels/backend.ts";
import { generate, type Generated } from "../model/generate.ts";
import { topkLogprobs, type TopkRow } from "../model/topk_logprobs.ts";
import { LoraSet, type LoraSpec } from "../model/lora.ts";
import { Stage } from "../model/stage.ts";
import type { LlamaConfig } from "../model/config.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import {
  checkTokenRange,
  type ModelInput,
} from "../protocol/types/model_input.ts";
import type { SamplingParams } from "../protocol/types/sampling_params.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import {
  type SamplerRequest,
  SamplerRequestSchema,
} from "../protocol/messages.ts";
import { loadBaseModel } from "./base_models.ts";
import { sharedBackend } from "./compute.ts";
import {
  acquireBaseWeights,
  type BaseWeightsLease,
} from "./shared_base_weights.ts";
import { fromWire, type WireTensors } from "./wire_tensors.ts";
import { samplerModelAddress } from "../protocol/addresses.ts";

/** How to build a sampler. */
export interface SamplerSpec {
  samplerId: string;
  baseModel: string;
  /** The adapter to sample with; none samples the base model. */
  lora?: { spec: LoraSpec; params: WireTensors };
  /** The checkpoint path it came from, if any. */
  modelPath?: string;
}

/** Messages a sampler handles (see `protocol/messages.ts`). */
export type SamplerMsg = SamplerRequest;

/** The Sampler actor. */
export class Sampler implements Actor<unknown, unknown> {
  #be!: Backend;
  #stage!: Stage;
  #cfg!: LlamaConfig;
  #tok!: Tokenizer;
  #base?: BaseWeightsLease;
  /** Its model's group address, once joined. */
  #group?: string;
  /** Requests served (sample and compute_logprobs), for `info`. */
  #served = 0;
  #ctx!: ActorContext;

  /** @param spec what to sample */
  constructor(readonly spec: SamplerSpec) {}

  /** Take the model's shared device weights and upload the adapter snapshot. */
  async init(ctx: ActorContext): Promise<void> {
    this.#ctx = ctx;
    this.#be = (await sharedBackend()).backend;
    const base = await loadBaseModel(this.spec.baseModel);
    this.#cfg = base.config;
    this.#tok = base.tokenizer;
    const lease = acquireBaseWeights(this.#be, base);
    try {
      const range = lease.range;
      const lora = this.spec.lora
        ? LoraSet.fromHost(
          this.#be,
          base.config,
          this.spec.lora.spec,
          {
            first: range.first,
            last: range.last,
            head: true,
          },
          fromWire(this.spec.lora.params),
          { frozen: true },
        )
        : undefined;
      this.#stage = new Stage(
        this.#be,
        base.config,
        range,
        lease.weights,
        lora,
      );
    } catch (e) {
      lease.release(); // terminate does not run after a failed init
      throw e;
    }
    this.#base = lease;
    // A snapshot (an adapter without a path) is this sampler's alone.
    if (this.spec.lora === undefined || this.spec.modelPath !== undefined) {
      const group = await samplerModelAddress(
        this.spec.baseModel,
        this.spec.modelPath,
      );
      if (ctx.join(group)) this.#group = group;
    }
  }

  /** Handle one message, parsed here by the protocol's schema. */
  async receive(raw: unknown): Promise<unknown> {
    const msg = parseOrThrow(SamplerRequestSchema, raw, "");
    switch (msg.type) {
      case "info":
        return {
          samplerId: this.spec.samplerId,
          baseModel: this.spec.baseModel,
          modelPath: this.spec.modelPath,
          ...(this.#group !== undefined ? { group: this.#group } : {}),
          served: this.#served,
        };
      case "compute_logprobs":
        this.#served++;
        return (await this.#promptScores(
          this.#checkPrompt(flatTokens(msg.prompt), 0),
          true,
          0,
        )).promptLogprobs;
      case "sample":
        this.#served++;
        return await this.#sample(msg);
    }
  }

  #checkPrompt(ids: number[], maxTokens: number): number[] {
    checkTokenRange(ids, this.#cfg.vocabSize, "prompt");
    const ctx = this.#cfg.maxPositionEmbeddings;
    if (ids.length + maxTokens > ctx) {
      throw new InvalidArgumentError(
        "samplingParams.maxTokens",
        `prompt length + samplingParams.maxTokens must be at most ${ctx} (the model's context): got ${ids.length} + ${maxTokens}`,
      );
    }
    return ids;
  }

  async #sample(msg: Extract<SamplerMsg, { type: "sample" }>) {
    const p: SamplingParams = msg.samplingParams;
    const n = msg.numSamples;
    const ids = flatTokens(msg.prompt);
    const ctx = this.#cfg.maxPositionEmbeddings;
    const maxTokens = p.maxTokens ?? Math.max(1, ctx - ids.length);
    const prompt = this.#checkPrompt(ids, maxTokens);
    const stopTokens: number[] = [...this.#cfg.eosTokenIds];
    const stopStrings: string[] = [];
    const stop = p.stop === undefined
      ? []
      : typeof p.stop === "string"
      ? [p.stop]
      : Array.from(p.stop as ArrayLike<number | string>);
    for (const s of stop) {
      if (typeof s === "number") stopTokens.push(s);
      else stopStrings.push(s);
    }
    checkTokenRange(stopTokens, this.#cfg.vocabSize, "samplingParams.stop");
    const topk = msg.topkPromptLogprobs;
    if (topk > this.#cfg.vocabSize) {
      throw new InvalidArgumentError(
        "topkPromptLogprobs",
        `topkPromptLogprobs must be at most the model's vocabulary (${this.#cfg.vocabSize}): got ${topk}`,
      );
    }
    const seqs = await generate(this.#be, [this.#stage], prompt, {
      numSamples: n,
      maxTokens,
      temperature: p.temperature,
      topK: p.topK,
      topP: p.topP,
      minP: p.minP,
      repetitionPenalty: p.repetitionPenalty,
      seed: p.seed ?? Math.floor(Math.random() * 2 ** 31),
      stopTokens,
      stopStrings,
      decode: (ids) => this.#tok.decode(ids),
      readEvery: this.#be.name === "webgpu" ? 8 : 1,
      onRead: msg.streamTo === undefined
        ? undefined
        : this.#streamer(msg.streamTo),
    });
    const scores = msg.includePromptLogprobs || topk > 0
      ? await this.#promptScores(prompt, msg.includePromptLogprobs, topk)
      : {};
    return { sequences: seqs, ...scores };
  }

  /**
   * Tells `address`, after each read, the tokens each sequence gained
   * (protocol/sample_progress.ts); nothing when none did.
   */
  #streamer(address: string): (seqs: readonly Generated[]) => void {
    const to = this.#ctx.system.ref(address);
    const sent: number[] = [];
    return (seqs) => {
      let grew = false;
      const sequences = seqs.map((q, b) => {
        const from = sent[b] ?? 0;
        if (q.tokens.length > from) grew = true;
        sent[b] = q.tokens.length;
        return {
          from,
          tokens: q.tokens.slice(from),
          logprobs: q.logprobs.slice(from),
        };
      });
      if (!grew) return;
      try {
        to.tell({ type: "sample_progress", sequences });
      } catch {
        // A stream is a courtesy: the reply holds every token.
      }
    };
  }

  /**
   * From one forward over the prompt: the log-probability of each prompt
   * token given the ones before it (when `logprobs`), and the `topk`
   * likeliest tokens at each position (when `topk` > 0); element 0 of each
   * is null. Both are the raw model's (untempered log-softmax).
   */
  async #promptScores(
    prompt: number[],
    logprobs: boolean,
    topk: number,
  ): Promise<{
    promptLogprobs?: (number | null)[];
    topkPromptLogprobs?: (TopkRow | null)[];
  }> {
    const res: {
      promptLogprobs?: (number | null)[];
      topkPromptLogprobs?: (TopkRow | null)[];
    } = {};
    if (logprobs) res.promptLogprobs = [null];
    if (topk > 0) res.topkPromptLogprobs = [null];
    if (prompt.length < 2) return res;
    const be = this.#be;
    const T = prompt.length - 1;
    const ids = be.fromInts(Int32Array.from(prompt.slice(0, T)), [T]);
    const targets = be.fromInts(Int32Array.from(prompt.slice(1)), [T]);
    const { out, ctx } = this.#stage.forward(
      ids,
      { batch: 1, seqLen: T },
      targets,
    );
    try {
      if (res.promptLogprobs) {
        for (const lp of await be.read(out)) res.promptLogprobs.push(lp);
      }
      if (res.topkPromptLogprobs) {
        const head = ctx.head!;
        const rows = await topkLogprobs(be, head.logits.y, head.lse, topk);
        for (const row of rows) res.topkPromptLogprobs.push(row);
      }
    } finally {
      be.free(out);
      this.#stage.release(ctx);
    }
    return res;
  }

  /** Free the adapter and let go of the shared base weights. */
  terminate(): void {
    if (!this.#base) return;
    this.#stage.lora?.dispose();
    this.#base.release();
    this.#base = undefined;
  }
}

/** The token ids of a model input, its chunks concatenated. */
function flatTokens(mi: ModelInput): number[] {
  return mi.chunks.flatMap((c) => Array.from(c.tokens));
}
