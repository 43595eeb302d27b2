/**
 * The exact types of the checked requests the client classes hand to a link
 * (client/link.ts), as the protocol's schemas give them. Kept out of link.ts:
 * the link's interface is part of the package's public API, whose types must
 * be written out (JSR's no-slow-types), while these are inferred from zod
 * schemas; the links' implementations narrow to them.
 *
 * @module
 */
import type { z } from "zod";
import type {
  ComputeLogprobsRequestSchema,
  SampleRequest as CheckedSampleRequest,
  TrainerRequest,
} from "../protocol/messages.ts";

/** A trainer request that runs in a run's seq order (not a query). */
export type TrainerOp = Exclude<
  TrainerRequest,
  { type: "get_info" | "snapshot" }
>;

/** A checked `compute_logprobs` request. */
export type CheckedComputeLogprobs = z.output<
  typeof ComputeLogprobsRequestSchema
>;

/** A checked `sample` request. */
export type { CheckedSampleRequest };
