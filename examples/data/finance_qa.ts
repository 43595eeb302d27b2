/**
 * A small built-in supervised fine-tuning set: finance questions and short
 * answers, for the demo and the SFT example.
 *
 * @module
 */

/** One prompt and the completion the model should learn. */
export interface PromptCompletion {
  prompt: string;
  completion: string;
}

/** Eight question/answer pairs in a fixed `Q: …\nA:` format. */
export const FINANCE_QA: readonly PromptCompletion[] = [
  {
    prompt: "Q: What is a bond?\nA:",
    completion: " A loan that pays interest.",
  },
  { prompt: "Q: What is a stock?\nA:", completion: " A share of a company." },
  {
    prompt: "Q: What is inflation?\nA:",
    completion: " Rising prices over time.",
  },
  {
    prompt: "Q: What is a dividend?\nA:",
    completion: " Profit paid to owners.",
  },
  { prompt: "Q: What is liquidity?\nA:", completion: " How fast assets sell." },
  { prompt: "Q: What is a budget?\nA:", completion: " A plan for spending." },
  { prompt: "Q: What is equity?\nA:", completion: " Assets minus debts." },
  { prompt: "Q: What is a loan?\nA:", completion: " Money you must repay." },
];
