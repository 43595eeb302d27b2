/**
 * The seed document's "Complete Training Workflow", in TypeScript against the
 * Bios API: initialize, prepare data, train for some epochs with a checkpoint
 * after each, deploy a sampling client, generate.
 *
 * Run: `deno run -A examples/training_workflow.ts`
 *
 * @module
 */
import * as bios from "../mod.ts";
import { FINANCE_QA } from "./data/finance_qa.ts";
import { promptIds, sftDatum } from "./sft_datum.ts";

const numEpochs = 3;
const batchSize = 4;

// 1. Initialize
await using serviceClient = new bios.ServiceClient();
const trainingClient = await serviceClient.createLoraTrainingClient({
  baseModel: "ultrasafe/usf-finance",
  rank: 16,
  alpha: 32,
});

// 2. Prepare data
const tokenizer = await trainingClient.getTokenizer();
const examples = FINANCE_QA.map((ex) =>
  sftDatum(tokenizer, ex.prompt, ex.completion)
);
const dataloader: bios.types.DatumInput[][] = [];
for (let i = 0; i < examples.length; i += batchSize) {
  dataloader.push(examples.slice(i, i + batchSize));
}

// 3. Training loop
for (let epoch = 0; epoch < numEpochs; epoch++) {
  for (const batch of dataloader) {
    // One train() call submits forwardBackward and optimStep together.
    const result = await trainingClient.train(batch, {
      lossFn: "cross_entropy",
      learningRate: 1e-3,
    });
    console.log(`Loss: ${result.loss.toFixed(4)}`);
  }

  // 4. Save checkpoint
  const checkpoint = await trainingClient.saveState(`epoch_${epoch}`);
  console.log(`Saved: ${checkpoint.path}`);
}

// 5. Deploy model
const samplingClient = await trainingClient.saveWeightsAndGetSamplingClient(
  "production-model",
);

// 6. Generate predictions
const promptTokens = promptIds(tokenizer, FINANCE_QA[0].prompt);
const result = await samplingClient.sample({
  prompt: bios.types.ModelInput.fromInts(promptTokens),
  samplingParams: { maxTokens: 256, temperature: 0.7, stop: "\n" },
});

console.log(tokenizer.decode(result.sequences[0].tokens));
