"""The Python side of tests/peft_interop_test.ts: transformers and PEFT,
used as a user would, unmodified.

Reads one JSON request on stdin and prints one JSON line:

- {"action": "logprobs", "model": DIR, "adapter": DIR or null,
   "tokens": [[...]], "targets": [[...]]}
  -> {"logprobs": [[...]], "warnings": [...]}: log p(target) under
  `AutoModelForCausalLM.from_pretrained(model)`, wrapped by
  `PeftModel.from_pretrained(model, adapter)` when an adapter is given
  (float32 logits, log-softmax in float64), and the warnings loading gave
  (PEFT warns of adapter keys it did not use or did not find).
- {"action": "train", "model": DIR, "out": DIR, "r": R, "alpha": A,
   "target_modules": [...], "steps": N, "lr": LR, "seed": S,
   "tokens": [[...]], "targets": [[...]]}
  -> {"loss": [...]}: a PEFT LoRA adapter trained for N Adam steps on
  −Σ log p(target), saved with `save_pretrained(out)`.
"""

import json
import sys
import warnings

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM


def load(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)


def logprobs(model, tokens, targets):
    with torch.no_grad():
        logits = model(torch.tensor(tokens)).logits.double()
    lp = torch.log_softmax(logits, dim=-1)
    return lp.gather(-1, torch.tensor(targets)[..., None])[..., 0].tolist()


def main():
    req = json.load(sys.stdin)
    torch.manual_seed(req.get("seed", 0))
    model = load(req["model"]).eval()
    if req["action"] == "logprobs":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if req.get("adapter"):
                model = PeftModel.from_pretrained(model, req["adapter"]).eval()
        print(json.dumps({
            "logprobs": logprobs(model, req["tokens"], req["targets"]),
            "warnings": [str(w.message) for w in caught],
        }))
    elif req["action"] == "train":
        cfg = LoraConfig(
            r=req["r"],
            lora_alpha=req["alpha"],
            target_modules=req["target_modules"],
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, cfg)
        opt = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=req["lr"]
        )
        tokens, targets = torch.tensor(req["tokens"]), torch.tensor(req["targets"])
        losses = []
        for _ in range(req["steps"]):
            lp = torch.log_softmax(model(tokens).logits, dim=-1)
            loss = -lp.gather(-1, targets[..., None]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.save_pretrained(req["out"])
        print(json.dumps({"loss": losses}))
    else:
        raise SystemExit(f"unknown action {req['action']!r}")


if __name__ == "__main__":
    main()
