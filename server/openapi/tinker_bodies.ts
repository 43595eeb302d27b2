/**
 * The Tinker wire's request bodies whole, for the OpenAPI document: each is
 * the head a route parses at once (server/tinker/schemas.ts) joined with the
 * body server/tinker/to_bios.ts parses in the operation's future — the same
 * zod schemas, composed, not copies.
 *
 * @module
 */
import type { z } from "zod";
import {
  ForwardBackwardInputSchema,
  LoadWeightsBodySchema,
  OpHeadSchema,
  OptimStepBodySchema,
  SampleBodySchema,
  SampleHeadSchema,
  SaveForSamplerBodySchema,
  SaveWeightsBodySchema,
} from "../tinker/schemas.ts";
import type { TrainingOpKind } from "../gateway.ts";

/** The whole body of each training operation's route. */
export const TRAINING_OP_BODIES: Readonly<Record<TrainingOpKind, z.ZodType>> = {
  forward: OpHeadSchema.extend({ "forward_input": ForwardBackwardInputSchema }),
  "forward_backward": OpHeadSchema.extend({
    "forward_backward_input": ForwardBackwardInputSchema,
  }),
  "optim_step": OpHeadSchema.extend(OptimStepBodySchema.shape),
  "save_weights": OpHeadSchema.extend(SaveWeightsBodySchema.shape),
  "save_weights_for_sampler": OpHeadSchema.extend(
    SaveForSamplerBodySchema.shape,
  ),
  "load_weights": OpHeadSchema.extend(LoadWeightsBodySchema.shape),
};

/** The whole body of `asample`. */
export const SAMPLE_BODY: z.ZodType = SampleHeadSchema.extend(
  SampleBodySchema.shape,
);

/** What every operation's route answers at once. */
export const FUTURE_RESPONSE =
  '{"request_id"}: the future to poll with retrieve_future';
