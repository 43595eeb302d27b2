"""Make the golden fixtures in tests/fixtures/golden/.

Run with Debian's system python and its python3-torch package:

    /usr/bin/python3 scripts/make_golden.py

For each fixture (`untied`, `tied`) this builds, from a fixed torch seed, a tiny
Llama and a LoRA adapter, and computes in float64 exactly what Hugging Face
`LlamaForCausalLM` + PEFT LoRA (dropout 0) compute: logits, per-token target
logprobs, the Tinker `cross_entropy` loss (a weighted SUM of -logprob), and the
gradient of that loss with respect to every LoRA A and B. Weights are first
rounded to float32 (the stored precision), so the files are self-consistent.

Only torch and the standard library are used; the safetensors format is written
by hand (u64 LE header length, JSON header with sorted keys padded with spaces
to a multiple of 8 bytes, then raw little-endian data). The output is
deterministic: running the script twice gives byte-identical files.
"""

import hashlib
import json
import os
import pathlib
import struct

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "golden"
SEED = 1234
BATCH = 2
SEQ = 7

FIXTURES = [
    {
        "name": "untied",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "intermediate_size": 48,
        "vocab_size": 40,
        "tie_word_embeddings": False,
        "rank": 4,
        "alpha": 8,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
    },
    {
        "name": "tied",
        "hidden_size": 24,
        "num_hidden_layers": 2,
        "num_attention_heads": 3,
        "num_key_value_heads": 3,
        "head_dim": 8,
        "intermediate_size": 40,
        "vocab_size": 37,
        "tie_word_embeddings": True,
        "rank": 2,
        "alpha": 4,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
    },
]

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
TARGET_MODULES = ATTN + MLP + ["lm_head"]


# ---------------------------------------------------------------- safetensors


def write_safetensors(path, tensors):
    """Write {name: tensor} (float -> F32, int -> I32) as a safetensors file."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().reshape(-1)
        if t.dtype.is_floating_point:
            dtype, blob = "F32", struct.pack("<%df" % t.numel(), *t.tolist())
        else:
            dtype, blob = "I32", struct.pack("<%di" % t.numel(), *t.tolist())
        shape = list(tensors[name].shape)
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"))
    raw = text.encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------- parameters


def f32(t):
    """Round to float32 (what is stored), then compute in float64."""
    return t.to(torch.float32).to(torch.float64)


def make_base(cfg, gen):
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D, NH, NKV = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def lin(out_f, in_f):
        return f32(torch.randn(out_f, in_f, generator=gen, dtype=torch.float64) / in_f ** 0.5)

    def norm(n):
        return f32(1.0 + 0.1 * torch.randn(n, generator=gen, dtype=torch.float64))

    # Embedding std 0.5: with a tied head the logits are ~N(0, 0.25 H), i.e. a
    # softmax that is peaked but not saturated, so every gradient stays informative.
    w = {"model.embed_tokens.weight": f32(0.5 * torch.randn(V, H, generator=gen, dtype=torch.float64))}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "self_attn.q_proj.weight"] = lin(NH * D, H)
        w[p + "self_attn.k_proj.weight"] = lin(NKV * D, H)
        w[p + "self_attn.v_proj.weight"] = lin(NKV * D, H)
        w[p + "self_attn.o_proj.weight"] = lin(H, NH * D)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        w[p + "mlp.gate_proj.weight"] = lin(I, H)
        w[p + "mlp.up_proj.weight"] = lin(I, H)
        w[p + "mlp.down_proj.weight"] = lin(H, I)
    w["model.norm.weight"] = norm(H)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = lin(V, H)
    return w


def module_shapes(cfg):
    """(PEFT module path, in_features, out_features) for every LoRA target."""
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D, NH, NKV = cfg["head_dim"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    dims = {
        "q_proj": (H, NH * D),
        "k_proj": (H, NKV * D),
        "v_proj": (H, NKV * D),
        "o_proj": (NH * D, H),
        "gate_proj": (H, I),
        "up_proj": (H, I),
        "down_proj": (I, H),
    }
    out = []
    for i in range(cfg["num_hidden_layers"]):
        for m in ATTN:
            out.append(("model.layers.%d.self_attn.%s" % (i, m),) + dims[m])
        for m in MLP:
            out.append(("model.layers.%d.mlp.%s" % (i, m),) + dims[m])
    out.append(("lm_head", H, V))
    return out


def lora_key(module, ab):
    return "base_model.model.%s.lora_%s.weight" % (module, ab)


def make_lora(cfg, gen):
    r = cfg["rank"]
    w = {}
    for module, in_f, out_f in module_shapes(cfg):
        # Both A and B nonzero so that both gradients are nontrivial.
        w[lora_key(module, "A")] = f32(0.1 * torch.randn(r, in_f, generator=gen, dtype=torch.float64))
        w[lora_key(module, "B")] = f32(0.1 * torch.randn(out_f, r, generator=gen, dtype=torch.float64))
    return w


# ---------------------------------------------------------------- HF Llama math


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(seq, dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    pos = torch.arange(seq, dtype=torch.float64)
    freqs = torch.outer(pos, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def forward(cfg, base, lora, tokens):
    """Logits [B, T, V] of LlamaForCausalLM with PEFT LoRA on every target."""
    H, D = cfg["hidden_size"], cfg["head_dim"]
    NH, NKV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    eps = cfg["rms_norm_eps"]
    scale = cfg["alpha"] / cfg["rank"]
    B, T = tokens.shape

    def proj(x, weight, module):
        a = lora[lora_key(module, "A")]
        b = lora[lora_key(module, "B")]
        return x @ weight.T + scale * ((x @ a.T) @ b.T)

    cos, sin = rope_cos_sin(T, D, cfg["rope_theta"])
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    x = base["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % i
        h = rms_norm(x, base[p + "input_layernorm.weight"], eps)
        q = proj(h, base[p + "self_attn.q_proj.weight"], p + "self_attn.q_proj")
        k = proj(h, base[p + "self_attn.k_proj.weight"], p + "self_attn.k_proj")
        v = proj(h, base[p + "self_attn.v_proj.weight"], p + "self_attn.v_proj")
        q = q.view(B, T, NH, D).transpose(1, 2)
        k = k.view(B, T, NKV, D).transpose(1, 2)
        v = v.view(B, T, NKV, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # repeat_kv: each kv head serves NH / NKV consecutive query heads.
        k = k.repeat_interleave(NH // NKV, dim=1)
        v = v.repeat_interleave(NH // NKV, dim=1)
        scores = (q @ k.transpose(-1, -2)) / D ** 0.5
        scores = scores.masked_fill(causal, float("-inf"))
        attn = torch.softmax(scores, dim=-1) @ v
        attn = attn.transpose(1, 2).reshape(B, T, NH * D)
        x = x + proj(attn, base[p + "self_attn.o_proj.weight"], p + "self_attn.o_proj")
        h = rms_norm(x, base[p + "post_attention_layernorm.weight"], eps)
        gate = proj(h, base[p + "mlp.gate_proj.weight"], p + "mlp.gate_proj")
        up = proj(h, base[p + "mlp.up_proj.weight"], p + "mlp.up_proj")
        x = x + proj(torch.nn.functional.silu(gate) * up, base[p + "mlp.down_proj.weight"], p + "mlp.down_proj")
    x = rms_norm(x, base["model.norm.weight"], eps)
    head = base["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else base["lm_head.weight"]
    assert head.shape[1] == H
    return proj(x, head, "lm_head")


def loss_of(cfg, base, lora, tokens, targets, weights):
    logits = forward(cfg, base, lora, tokens)
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    loss = (-logprobs * weights).sum()  # Tinker cross_entropy: a SUM, not a mean
    return logits, logprobs, loss


# ---------------------------------------------------------------- fixture


def finite_difference_check(cfg, base, lora, grads, tokens, targets, weights, gen):
    """Central differences in float64 on a few LoRA entries; returns max rel err.

    The relative error's denominator is floored at 1e-3: the loss is O(100), so
    float64 rounding alone gives the difference quotient an absolute error of
    about 1e-9, which would dominate a gradient entry that is itself ~1e-5.
    """
    h = 1e-5
    keys = sorted(lora)
    picks = []
    for j in range(8):
        key = keys[int(torch.randint(len(keys), (1,), generator=gen))]
        idx = int(torch.randint(lora[key].numel(), (1,), generator=gen))
        picks.append((key, idx))
    # Always include the first layer's q_proj A and the lm_head B.
    picks.append((lora_key("model.layers.0.self_attn.q_proj", "A"), 0))
    picks.append((lora_key("lm_head", "B"), 1))
    worst = 0.0
    with torch.no_grad():
        for key, idx in picks:
            flat = lora[key].view(-1)
            orig = flat[idx].item()
            flat[idx] = orig + h
            lp = loss_of(cfg, base, lora, tokens, targets, weights)[2].item()
            flat[idx] = orig - h
            lm = loss_of(cfg, base, lora, tokens, targets, weights)[2].item()
            flat[idx] = orig
            fd = (lp - lm) / (2 * h)
            ad = grads[key].view(-1)[idx].item()
            rel = abs(fd - ad) / max(abs(fd), abs(ad), 1e-3)
            worst = max(worst, rel)
            print("  %-62s[%3d] autograd % .10e fd % .10e abs %.1e rel %.1e" % (key, idx, ad, fd, abs(fd - ad), rel))
    return worst


def make_fixture(cfg):
    name = cfg["name"]
    gen = torch.Generator().manual_seed(SEED + (0 if name == "untied" else 1))
    V = cfg["vocab_size"]
    base = make_base(cfg, gen)
    lora = make_lora(cfg, gen)
    tokens = torch.randint(V, (BATCH, SEQ), generator=gen)
    targets = torch.randint(V, (BATCH, SEQ), generator=gen)
    weights = (torch.rand(BATCH, SEQ, generator=gen, dtype=torch.float64) > 0.35).to(torch.float64)
    weights[0, 0] = 0.0  # at least one masked token
    weights[0, 1] = 1.0  # at least one full token
    weights[1, 3] = 0.5  # one fractional weight

    for t in lora.values():
        t.requires_grad_(True)
    logits, logprobs, loss = loss_of(cfg, base, lora, tokens, targets, weights)
    grad_list = torch.autograd.grad(loss, [lora[k] for k in sorted(lora)])
    grads = dict(zip(sorted(lora), grad_list))
    for t in lora.values():
        t.requires_grad_(False)

    # Sanity: the LoRA contribution is visible in the logits.
    with torch.no_grad():
        zero = {k: (torch.zeros_like(v) if k.endswith("lora_B.weight") else v) for k, v in lora.items()}
        base_logits = forward(cfg, base, zero, tokens)
        lora_effect = (logits.detach() - base_logits).abs().max().item()

    print("%s: loss %.10f, max |logits - base logits| %.4f" % (name, loss.item(), lora_effect))
    worst = finite_difference_check(cfg, base, lora, grads, tokens, targets, weights, gen)
    print("%s: max relative error autograd vs central FD = %.3e" % (name, worst))
    assert worst < 1e-6, "finite-difference check failed for %s" % name
    assert lora_effect > 1e-2, "LoRA contribution too small for %s" % name
    for k, g in grads.items():
        assert g.abs().max().item() > 0, "zero gradient for %s" % k

    d = OUT / name
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg["hidden_size"],
        "intermediate_size": cfg["intermediate_size"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"],
        "num_key_value_heads": cfg["num_key_value_heads"],
        "head_dim": cfg["head_dim"],
        "vocab_size": V,
        "rms_norm_eps": cfg["rms_norm_eps"],
        "rope_theta": cfg["rope_theta"],
        "tie_word_embeddings": cfg["tie_word_embeddings"],
        "max_position_embeddings": 64,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
    write_json(d / "model" / "config.json", config)
    write_safetensors(d / "model" / "model.safetensors", base)
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": cfg["rank"],
        "lora_alpha": cfg["alpha"],
        "lora_dropout": 0.0,
        "target_modules": TARGET_MODULES,
        "bias": "none",
        "base_model_name_or_path": "../model",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    write_json(d / "adapter" / "adapter_config.json", adapter_config)
    write_safetensors(d / "adapter" / "adapter_model.safetensors", lora)
    io = {
        "tokens": tokens.to(torch.int32),
        "targets": targets.to(torch.int32),
        "weights": weights,
        "logits": logits.detach(),
        "logprobs": logprobs.detach(),
        "loss": loss.detach().reshape(1),
    }
    for k, g in grads.items():
        io["grad." + k] = g
    write_safetensors(d / "io.safetensors", io)
    return worst


README = """# Golden fixtures

Made by `scripts/make_golden.py`, run from the repository root with Debian's system python:

    /usr/bin/python3 scripts/make_golden.py

with torch {torch_version} (Debian `python3-torch`), on CPU, seed {seed}. The script is
deterministic: running it again gives byte-identical files. It computes everything in float64
from float32-rounded weights, in exactly Hugging Face `LlamaForCausalLM` math (RMSNorm,
rotate-half RoPE, grouped-query attention with causal mask, SiLU-gated MLP) with PEFT LoRA
(dropout 0, scale = lora_alpha / r) on q/k/v/o/gate/up/down of every layer and on lm_head
(for `tied`, on the tied head `x @ embed_tokens.T`). It checks its autograd gradients
against central finite differences (max relative error printed; must be < 1e-6).

Fixtures:

- `untied/`: hidden 32, 2 layers, 4 heads, 2 kv heads, head_dim 8, intermediate 48,
  vocab 40, separate lm_head; LoRA r 4, alpha 8.
- `tied/`: hidden 24, 2 layers, 3 heads, 3 kv heads, head_dim 8, intermediate 40,
  vocab 37, tie_word_embeddings; LoRA r 2, alpha 4.

Files in each fixture folder:

- `model/config.json`: Hugging Face Llama config.
- `model/model.safetensors`: base weights, F32, HF names (`model.embed_tokens.weight`,
  `model.layers.{{i}}.input_layernorm.weight`, `model.layers.{{i}}.self_attn.{{q,k,v,o}}_proj.weight`,
  `model.layers.{{i}}.post_attention_layernorm.weight`, `model.layers.{{i}}.mlp.{{gate,up,down}}_proj.weight`,
  `model.norm.weight`, and `lm_head.weight` in `untied` only). Norm weights are near 1, not 1.
- `adapter/adapter_config.json`: PEFT LoRA config.
- `adapter/adapter_model.safetensors`: LoRA weights, F32, PEFT names
  `base_model.model.model.layers.{{i}}.self_attn.{{q,k,v,o}}_proj.lora_{{A,B}}.weight`,
  `base_model.model.model.layers.{{i}}.mlp.{{gate,up,down}}_proj.lora_{{A,B}}.weight`,
  `base_model.model.lm_head.lora_{{A,B}}.weight`; A is [r, in], B is [out, r]; both nonzero.
- `io.safetensors`: one batch (2 sequences of 7 tokens) and the expected results:
  `tokens` I32 [2,7], `targets` I32 [2,7], `weights` F32 [2,7] (0, 1 and one 0.5),
  `logits` F32 [2,7,V], `logprobs` F32 [2,7] (log-softmax of logits at the target),
  `loss` F32 [1] = sum over tokens of -logprob * weight (Tinker `cross_entropy`, a sum),
  and `grad.<K>` F32 for every adapter key K: d loss / d K.
"""


def main():
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    for cfg in FIXTURES:
        make_fixture(cfg)
    (OUT / "README.md").write_text(README.format(torch_version=torch.__version__, seed=SEED), encoding="utf-8")
    total = 0
    for path in sorted(OUT.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            total += len(data)
            print("%s  %7d  %s" % (hashlib.sha256(data).hexdigest()[:16], len(data), path.relative_to(ROOT)))
    print("total %d bytes" % total)
    assert os.path.isdir(OUT)


if __name__ == "__main__":
    main()
