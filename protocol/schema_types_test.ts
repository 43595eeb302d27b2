// The public types are written out by hand (JSR forbids inferred "slow"
// types in a public API); these compile-time checks keep each one identical
// to what its schema accepts and produces.
import assert from "node:assert/strict";
import type { z } from "zod";
import type * as p from "./mod.ts";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends
  (<T>() => T extends B ? 1 : 2) ? true : false;
type Same<A, B> = Equal<A, B> extends true ? true
  : { error: "types differ"; a: A; b: B };

type Out<S extends z.ZodType> = z.output<S>;
type In<S extends z.ZodType> = z.input<S>;

Deno.test("hand-written types match their schemas exactly", () => {
  const checks: true[] = [
    true as Same<Out<typeof p.EncodedTextChunkSchema>, p.EncodedTextChunk>,
    true as Same<Out<typeof p.ModelInputSchema>, p.ModelInput>,
    true as Same<In<typeof p.ModelInputSchema>, p.ModelInput>,
    true as Same<Out<typeof p.TensorDataSchema>, p.TensorData>,
    true as Same<Out<typeof p.TensorDtypeSchema>, p.TensorDtype>,
    true as Same<Out<typeof p.LossFnTypeSchema>, p.LossFnType>,
    true as Same<Out<typeof p.LossFnConfigSchema>, p.LossFnConfig>,
    true as Same<Out<typeof p.DatumSchema>, p.Datum>,
    true as Same<In<typeof p.DatumSchema>, p.DatumInput>,
    true as Same<Out<typeof p.AdamParamsSchema>, p.AdamParams>,
    true as Same<In<typeof p.AdamParamsSchema>, p.AdamParamsInput>,
    true as Same<Out<typeof p.SamplingParamsSchema>, p.SamplingParams>,
    true as Same<In<typeof p.SamplingParamsSchema>, p.SamplingParamsInput>,
    true as Same<Out<typeof p.LoraConfigSchema>, p.LoraConfig>,
    true as Same<In<typeof p.LoraConfigSchema>, p.LoraConfigInput>,
    true as Same<
      Out<typeof p.CreateLoraTrainingClientOptionsSchema>,
      p.CreateLoraTrainingClientOptions
    >,
    true as Same<
      In<typeof p.CreateLoraTrainingClientOptionsSchema>,
      p.CreateLoraTrainingClientOptionsInput
    >,
    true as Same<Out<typeof p.MetricsSchema>, p.Metrics>,
    true as Same<
      Out<typeof p.ForwardBackwardOutputSchema>,
      p.ForwardBackwardOutput
    >,
    true as Same<Out<typeof p.OptimStepResponseSchema>, p.OptimStepResponse>,
    true as Same<
      Out<typeof p.SaveWeightsResponseSchema>,
      p.SaveWeightsResponse
    >,
    true as Same<
      Out<typeof p.SaveWeightsForSamplerResponseSchema>,
      p.SaveWeightsForSamplerResponse
    >,
    true as Same<
      Out<typeof p.LoadWeightsResponseSchema>,
      p.LoadWeightsResponse
    >,
    true as Same<Out<typeof p.SampledSequenceSchema>, p.SampledSequence>,
    true as Same<Out<typeof p.SampleResponseSchema>, p.SampleResponse>,
    true as Same<Out<typeof p.GetInfoResponseSchema>, p.GetInfoResponse>,
    true as Same<Out<typeof p.SupportedModelSchema>, p.SupportedModel>,
    true as Same<
      Out<typeof p.GetServerCapabilitiesResponseSchema>,
      p.GetServerCapabilitiesResponse
    >,
    true as Same<
      Out<typeof p.WeightsInfoResponseSchema>,
      p.WeightsInfoResponse
    >,
  ];
  assert.ok(checks.every((c) => c === true));
});
