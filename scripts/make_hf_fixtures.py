"""Make tests/fixtures/hf/: tiny checkpoints written by transformers' own
classes (`save_pretrained`), with the log-probabilities transformers computes
for a fixed batch, so that Bios is checked against the real library.

Run with a venv holding transformers 5 and torch (the machine's wheelhouse):

    python3 -m venv V && V/bin/pip install --retries 0 --timeout 5 torch transformers
    V/bin/python scripts/make_hf_fixtures.py

Fixtures:

- `llama_theta500k/`: a Llama with rope_theta 500000, saved by transformers 5
  (whose config.json keeps rope_theta inside `rope_parameters`).
- `llama3_scaling/`: a Llama with Llama 3's RoPE scaling (factor 8, low/high
  frequency factors 1 and 4, original context 64, theta 10000, head_dim 8), so
  that its four frequencies fall in all three bands: kept, blended, divided.
- `qwen2_tied/`: a Qwen2 / Qwen2.5 (biases on q, k and v), tied embeddings.
- `qwen3_tied/`: a Qwen3 (per-head q/k RMSNorm before RoPE), head_dim 16
  apart from hidden/heads, tied embeddings.

Each folder holds `model/` (config.json, model.safetensors) and `io.json`:
`tokens` [B][T], `targets` [B][T] (the next token) and `logprobs` [B][T]
(log p(target), float64 from transformers' logits in float32). `peft/` holds a
PEFT LoRA adapter of the model (r 4, alpha 8, on every attention and MLP
projection, B drawn at random so that every gradient flows), as
`save_pretrained` wrote it, and `peft_grads.safetensors`: the gradient of the
loss −Σ log p(target) with respect to every adapter tensor, computed in
float64 and stored in float32, named as in the adapter file.
"""

import json
import pathlib

import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "hf"


def make(name, config, seed=0, batch=2, seq=48, cls=LlamaForCausalLM):
    torch.manual_seed(seed)
    model = cls(config).float().eval()
    with torch.no_grad():
        # Larger weights than the default init, so position effects show.
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
            else:
                # Norm gains (and Qwen2's biases) near 1 but not 1, so a
                # missed norm or bias shows.
                p.uniform_(0.5, 1.5)
    folder = OUT / name
    model.save_pretrained(folder / "model", safe_serialization=True)
    tokens = torch.randint(0, config.vocab_size, (batch, seq + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    with torch.no_grad():
        logits = model(inputs).logits.double()
    lp = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
    (folder / "io.json").write_text(json.dumps({
        "transformers": transformers.__version__,
        "tokens": inputs.tolist(),
        "targets": targets.tolist(),
        "logprobs": lp.tolist(),
    }) + "\n")
    cfg = json.loads((folder / "model" / "config.json").read_text())
    print(name, "rope keys:", {k: v for k, v in cfg.items() if "rope" in k})

    # PEFT's LoRA on the same model, and its gradients for the same batch.
    torch.manual_seed(seed + 100)
    peft_model = get_peft_model(model, LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                        "gate_proj", "up_proj", "down_proj"],
    ))
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.2)
    # In float64 (from the float32 weights, exactly), so that the reference
    # carries no float32 rounding of its own.
    peft_model.double().train()
    logits = peft_model(inputs).logits
    lp = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])
    loss = -lp.sum()
    loss.backward()
    grads = {}
    for n, p in peft_model.named_parameters():
        if p.grad is not None and "lora_" in n:
            grads[n.replace(".default", "")] = p.grad.detach().float().contiguous()
    peft_model.float().save_pretrained(folder / "peft")
    (folder / "peft" / "README.md").unlink(missing_ok=True)  # a blank model card
    save_file(grads, folder / "peft_grads.safetensors")


make("llama_theta500k", LlamaConfig(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=256,
    rope_theta=500000.0,
    tie_word_embeddings=False,
))

make("llama3_scaling", LlamaConfig(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=256,
    rope_parameters={
        "rope_type": "llama3",
        "rope_theta": 10000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    tie_word_embeddings=False,
), seed=1)

make("qwen3_tied", Qwen3Config(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=64,
    max_position_embeddings=256,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    use_sliding_window=False,
), seed=2, cls=Qwen3ForCausalLM)

make("qwen2_tied", Qwen2Config(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=64,
    max_position_embeddings=256,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    use_sliding_window=False,
), seed=3, cls=Qwen2ForCausalLM)
