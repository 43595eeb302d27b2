"""Make tests/fixtures/sampling/hf_generate.json: the tokens transformers'
own `generate` picks on a committed tiny checkpoint
(tests/fixtures/hf/llama_theta500k/model, written by make_hf_fixtures.py),
for the sampling controls whose result does not depend on a random draw:

- greedy (`do_sample=False`), without and with `repetition_penalty=1.3`
  (and 2.0 and 10.0), so that the penalty's effect is pinned to transformers'
  `RepetitionPenaltyLogitsProcessor`;
- `do_sample=True` with `min_p=1.0` at temperature 1 (only the most likely
  token survives `MinPLogitsWarper`, so the draw is forced), without and with
  `repetition_penalty=1.3`.

Run with a venv holding transformers 5 and torch:

    V/bin/python scripts/make_sampling_fixtures.py
"""

import json
import pathlib

import torch
import transformers
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests" / "fixtures" / "hf" / "llama_theta500k" / "model"
OUT = ROOT / "tests" / "fixtures" / "sampling" / "hf_generate.json"

PROMPT = [1, 17, 42, 17, 5, 33, 9, 42]
NEW_TOKENS = 24

model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
# no end-of-sequence stop: every case generates exactly NEW_TOKENS tokens
model.generation_config.eos_token_id = None
model.generation_config.pad_token_id = 0

cases = [
    {"name": "greedy", "args": {"do_sample": False}},
    {"name": "greedy_rep1.3", "args": {"do_sample": False, "repetition_penalty": 1.3}},
    {"name": "greedy_rep2", "args": {"do_sample": False, "repetition_penalty": 2.0}},
    {"name": "greedy_rep10", "args": {"do_sample": False, "repetition_penalty": 10.0}},
    {"name": "minp1", "args": {"do_sample": True, "min_p": 1.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0}},
    {"name": "minp1_rep1.3", "args": {"do_sample": True, "min_p": 1.0, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.3}},
]
out = {
    "transformers": transformers.__version__,
    "torch": torch.__version__,
    "model": "tests/fixtures/hf/llama_theta500k/model",
    "prompt": PROMPT,
    "cases": [],
}
for c in cases:
    torch.manual_seed(0)
    with torch.no_grad():
        seq = model.generate(
            torch.tensor([PROMPT]),
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            **c["args"],
        )
    tokens = seq[0, len(PROMPT):].tolist()
    assert len(tokens) == NEW_TOKENS, (c["name"], tokens)
    print(c["name"], tokens)
    out["cases"].append({**c, "tokens": tokens})
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(out, indent=1) + "\n")
