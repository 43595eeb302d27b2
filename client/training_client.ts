/**
 * TrainingClient: one LoRA fine-tuning run. Every operation returns an
 * APIFuture at once and is sent straight away with the next sequence number;
 * the run's trainer handles them one at a time in that order, so
 * `forwardBackward` then `optimStep` pipeline without a round trip.
 *
 * @module
 */
import type { AdamParamsInput } from "../protocol/types/adam_params.ts";
import type { DatumInput } from "../protocol/types/datum.ts";
import type { LossFnType } from "../protocol/types/loss_fn.ts";
import type {
  ForwardBackwardOutput,
  LoadWeightsResponse,
  OptimStepResponse,
  SampleResponse,
  SaveWeightsResponse,
} from "../protocol/types/responses.ts";
import type { Tokenizer } from "../protocol/types/tokenizer.ts";
import { parseOrThrow } from "../protocol/parse.ts";
import { TrainerRequestSchema } from "../protocol/messages.ts";
import { APIFuture } from "./api_future.ts";
import {
  ActorStoppedError,
  InvalidArgumentError,
  NotFoundError,
} from "../runtime/errors.ts";
import type { Connection } from "./connection.ts";
import { ActorLink } from "./actor_link.ts";
import type { Link, RunLink, TrainingRunInfo } from "./link.ts";
import type { TrainerOp } from "./trainer_op.ts";
import { type SampleArgs, SamplingClient } from "./sampling_client.ts";
import type { ServiceClient } from "./service_client.ts";

/**
 * A custom loss for {@linkcode TrainingClient.forwardBackwardCustom}: from
 * the data and each datum's target logprobs, the loss, its gradient with
 * respect to every logprob, and metrics to report.
 */
export type CustomLossFn = (
  data: DatumInput[],
  logprobs: Float32Array[],
) => {
  loss: number;
  grads: ArrayLike<number>[];
  metrics?: Record<string, number>;
};

export type { TrainingRunInfo } from "./link.ts";

/** Result of {@linkcode TrainingClient.train}. */
export interface TrainResult {
  /** The forwardBackward result. */
  forwardBackward: ForwardBackwardOutput;
  /** The optimStep result. */
  optimStep: OptimStepResponse;
  /** The forward-backward loss (sum over weighted tokens). */
  loss: number;
}

/** The sampler `TrainingClient.sample` uses for one weights version. */
interface CachedSampler {
  /** The weights version it samples. */
  version: number;
  /** Its client, made once for every caller of this version. */
  client: Promise<SamplingClient>;
  /** Samples running on it. */
  running: number;
}

/**
 * A client of one training run.
 *
 * @example
 * ```ts ignore
 * const fb = tc.forwardBackward(batch, "cross_entropy");
 * const opt = tc.optimStep({ learningRate: 1e-4 });
 * console.log((await fb).loss, await opt);
 * ```
 */
export class TrainingClient {
  #seq = 0;
  /** The last operation sent, settled (with its resends): the next waits on it to resend. */
  #last: Promise<void> = Promise.resolve();
  #tokenizer?: Promise<Tokenizer>;
  #sampler?: CachedSampler;
  /**
   * The deployment, as the client classes reach it (client/link.ts).
   *
   * @internal
   */
  readonly link: Link;
  readonly #run: RunLink;

  /**
   * A client of run `runId` (made by {@linkcode ServiceClient.createLoraTrainingClient}).
   *
   * @param service the service client that made this run
   * @param link how it reaches the run: a link (client/link.ts), or an
   *   actor connection (embedded or NATS)
   * @param runId the run
   * @param baseModel the run's base model
   */
  constructor(
    readonly service: ServiceClient,
    link: Link | Connection,
    readonly runId: string,
    readonly baseModel: string,
  ) {
    this.link = "system" in link ? new ActorLink(link) : link;
    this.#run = this.link.run(runId);
  }

  /**
   * Check an operation with the protocol's schema, then send it with the
   * next seq. A request refused here (or one the link cannot carry) never
   * reaches the trainer and takes no seq; what is sent is the parsed
   * request, plain data that always encodes.
   */
  #submit<T>(msg: Record<string, unknown>): APIFuture<T> {
    let p: Promise<T>;
    try {
      const req = parseOrThrow(
        TrainerRequestSchema,
        { ...msg, runId: this.runId, seq: this.#seq + 1 },
        "",
      ) as TrainerOp;
      p = this.#run.submit<T>(req, this.#last);
    } catch (e) {
      return new APIFuture(Promise.reject(e));
    }
    this.#seq++;
    this.#last = p.then(() => {}, () => {});
    return new APIFuture(p);
  }

  /** Forward pass only: logprobs and loss, no gradients. */
  forward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#submit({ type: "forward", data, lossFn, lossFnConfig });
  }

  /** Forward and backward: gradients accumulate until the next `optimStep`. */
  forwardBackward(
    data: DatumInput[],
    lossFn: LossFnType,
    lossFnConfig?: Record<string, number>,
  ): APIFuture<ForwardBackwardOutput> {
    return this.#submit({
      type: "forward_backward",
      data,
      lossFn,
      lossFnConfig,
    });
  }

  /**
   * Forward and backward with a loss computed here, in TypeScript, as the
   * anchor's `forward_backward_custom` does: a `forward` gives each datum's
   * target logprobs; `lossFn` returns the loss and its gradient with respect
   * to them; a `forwardBackward` of `cross_entropy` with weights = −gradient
   * then sends exactly that gradient into the model. The reply is the second
   * call's, with `loss` set to `lossFn`'s and its `metrics` added.
   *
   * Two operations run, one after the other: await this before submitting
   * others, or they would run between the two.
   *
   * @example
   * ```ts ignore
   * // −Σ logprob, by hand: the same step as forwardBackward(data, "cross_entropy")
   * await tc.forwardBackwardCustom(data, (_data, logprobs) => ({
   *   loss: -logprobs.reduce((s, lp) => s + lp.reduce((a, b) => a + b, 0), 0),
   *   grads: logprobs.map((lp) => lp.map(() => -1)),
   * }));
   * ```
   */
  forwardBackwardCustom(
    data: DatumInput[],
    lossFn: CustomLossFn,
  ): APIFuture<ForwardBackwardOutput> {
    const p = (async () => {
      const forwardData = data.map((d, i) => {
        const inputs = d?.lossFnInputs ?? {};
        const targets = inputs.targetTokens ?? inputs["target_tokens"];
        if (targets === undefined) {
          throw new InvalidArgumentError(
            `data[${i}].lossFnInputs.targetTokens`,
            `data[${i}].lossFnInputs.targetTokens is required by forwardBackwardCustom`,
          );
        }
        return {
          modelInput: d.modelInput,
          lossFnInputs: { targetTokens: targets },
        };
      });
      const fwd = await this.forward(forwardData, "cross_entropy");
      const logprobs = fwd.lossFnOutputs.map((o) =>
        Float32Array.from(o.logprobs.data as ArrayLike<number>)
      );
      const out = lossFn(data, logprobs);
      if (
        out === null || typeof out !== "object" || !Number.isFinite(out.loss) ||
        !Array.isArray(out.grads) || out.grads.length !== logprobs.length
      ) {
        throw new InvalidArgumentError(
          "lossFn",
          `lossFn must return { loss: a finite number, grads: one array per datum (${logprobs.length}) }`,
        );
      }
      const linear = forwardData.map((d, i) => {
        const g = out.grads[i];
        if (g?.length !== logprobs[i].length) {
          throw new InvalidArgumentError(
            `lossFn.grads[${i}]`,
            `lossFn's grads[${i}] must have one value per token (${
              logprobs[i].length
            }): got ${g?.length}`,
          );
        }
        return {
          modelInput: d.modelInput,
          lossFnInputs: {
            targetTokens: d.lossFnInputs.targetTokens,
            // cross_entropy is Σ −logprob·weight: weight −g gives dL/dlogprob = g.
            weights: Array.from(g, (v) => -v),
          },
        };
      });
      const result = await this.forwardBackward(linear, "cross_entropy");
      return {
        ...result,
        loss: out.loss,
        metrics: { ...result.metrics, ...out.metrics },
      };
    })();
    return new APIFuture(p);
  }

  /** Apply the accumulated gradients with AdamW (torch semantics; anchor defaults). */
  optimStep(adamParams: AdamParamsInput = {}): APIFuture<OptimStepResponse> {
    return this.#submit({ type: "optim_step", adamParams });
  }

  /** `forwardBackward` then `optimStep`, both submitted at once. */
  train(
    data: DatumInput[],
    opts: {
      lossFn?: LossFnType;
      learningRate?: number;
      adamParams?: AdamParamsInput;
    } = {},
  ): APIFuture<TrainResult> {
    const fb = this.forwardBackward(data, opts.lossFn ?? "cross_entropy");
    const adam = {
      ...opts.adamParams,
      ...(opts.learningRate !== undefined
        ? { learningRate: opts.learningRate }
        : {}),
    };
    const opt = this.optimStep(adam);
    return new APIFuture(
      Promise.all([fb.result(), opt.result()]).then(([f, o]) => ({
        forwardBackward: f,
        optimStep: o,
        loss: f.loss,
      })),
    );
  }

  /** Save weights and optimizer state as `bios://<run>/weights/<name>`. */
  saveState(
    name: string,
    opts: { overwrite?: boolean } = {},
  ): APIFuture<SaveWeightsResponse> {
    return this.#submit({
      type: "save_state",
      name,
      overwrite: opts.overwrite ?? false,
    });
  }

  /**
   * Load weights from a `weights/` checkpoint, or from a PEFT adapter folder
   * on the node's disk (an absolute path or a `file:///` URL) of this run's
   * rank, alpha and targets; Adam starts fresh.
   */
  loadState(path: string): APIFuture<LoadWeightsResponse> {
    return this.#submit({ type: "load_state", path, optimizer: false });
  }

  /** Load weights and Adam state from a `weights/` checkpoint. */
  loadStateWithOptimizer(path: string): APIFuture<LoadWeightsResponse> {
    return this.#submit({ type: "load_state", path, optimizer: true });
  }

  /** Save a sampler-only copy as `bios://<run>/sampler_weights/<name>`. */
  saveWeightsForSampler(
    name: string,
    opts: { overwrite?: boolean } = {},
  ): APIFuture<SaveWeightsResponse> {
    return this.#submit({
      type: "save_weights_for_sampler",
      name,
      overwrite: opts.overwrite ?? false,
    });
  }

  /**
   * A sampling client of the current weights. With a name, the weights are
   * saved as `sampler_weights/<name>` first; without, the snapshot lives only
   * in memory.
   */
  async saveWeightsAndGetSamplingClient(
    name?: string,
  ): Promise<SamplingClient> {
    if (name !== undefined) {
      const { path } = await this.saveWeightsForSampler(name, {
        overwrite: true,
      });
      return await this.service.createSamplingClient({ modelPath: path });
    }
    return new SamplingClient(await this.#run.snapshotSampler());
  }

  /**
   * Sample from the current weights (an in-memory snapshot, reused while the
   * weights are unchanged). Concurrent calls share one sampler per weights
   * version; an older version's sampler is stopped once newer weights
   * replaced it and no sample is still running on it. A snapshot sampler
   * that is gone (its node died, or the gateway that held it restarted) is
   * taken again once, of the weights then current.
   */
  sample(args: SampleArgs): APIFuture<SampleResponse> {
    const p = (async () => {
      try {
        return await this.#sampleOnce(args);
      } catch (e) {
        if (!(e instanceof NotFoundError || e instanceof ActorStoppedError)) {
          throw e;
        }
        this.#sampler = undefined;
        return await this.#sampleOnce(args);
      }
    })();
    return new APIFuture(p);
  }

  async #sampleOnce(args: SampleArgs): Promise<SampleResponse> {
    const info = await this.getInfo();
    let s = this.#sampler;
    if (!s || s.version !== info.version) {
      const fresh: CachedSampler = {
        version: info.version,
        client: this.saveWeightsAndGetSamplingClient(),
        running: 0,
      };
      // A failed start is not cached: the next call tries again.
      fresh.client.catch(() => {
        if (this.#sampler === fresh) this.#sampler = undefined;
      });
      const old = s;
      this.#sampler = s = fresh;
      if (old) this.#retire(old);
    }
    s.running++;
    try {
      return await (await s.client).sample(args);
    } finally {
      s.running--;
      this.#retire(s);
    }
  }

  /** Close a replaced sampler once no sample runs on it. */
  #retire(s: CachedSampler): void {
    if (s === this.#sampler || s.running > 0) return;
    s.client.then((c) => c.close()).catch(() => {});
  }

  /** The run's model, rank, step and sequence state. */
  async getInfo(): Promise<TrainingRunInfo> {
    return await this.#run.getInfo();
  }

  /** The base model's tokenizer. */
  getTokenizer(): Promise<Tokenizer> {
    this.#tokenizer ??= this.link.tokenizer(this.baseModel).then(async (r) => {
      // Tokenizer code (and @huggingface/tokenizers) loads only when asked for.
      const { tokenizerFromFiles } = await import("../model/tokenizer.ts");
      return tokenizerFromFiles(r.files, r.hints);
    });
    return this.#tokenizer;
  }
}
