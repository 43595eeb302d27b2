"""Peers of the large benchmark model (Qwen2.5-0.5B's shape), timed as
bench/large_worker.ts times Bios.

    V/bin/python bench/large_peer.py train  --impl torch|hf --spec JSON [--batch 4 --seq 256]
    V/bin/python bench/large_peer.py sample --impl torch|hf --spec JSON [--batches 1,8 --prompt 32 --max-tokens 16]

--spec is bench/large_model.ts largePeerSpec(): the Hugging Face config plus
"lora_rank", "lora_alpha", "lora_targets" and "adam". Prints one JSON line
with tokensPerSecond and peakRssBytes (ru_maxrss: the process's peak).

--impl torch: the model in plain PyTorch (RMSNorm, rotate-half RoPE, q/k/v
biases, grouped-query causal attention, SwiGLU, tied head; LoRA
y = x W^T + (alpha/r) (x A^T) B^T on the targets). --impl hf: transformers'
own Qwen2ForCausalLM from the config with PEFT's LoRA (get_peft_model), what
most users run. Both hold and compute the weights in float32 (the values are
bf16-rounded, as Bios's are), torch's default on a CPU.

train: one step = forward, loss = -sum(logprob of targets), backward, AdamW
(LoRA tensors only), zero_grad; one warm-up step, then at least 1 timed step.
sample: a random prompt copied to B sequences, a KV cache, --max-tokens drawn
at temperature 1; tokens/s = B * max-tokens / wall time (prefill included),
after a 2-token warm-up.
"""

import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bf16_randn(gen, *shape):
    return (torch.randn(*shape, generator=gen) * 0.02).to(torch.bfloat16).to(torch.float32)


class Lin:
    def __init__(self, w, b, rank, scale, gen):
        self.w, self.b = w, b
        self.lora = None
        if rank:
            bound = 1.0 / math.sqrt(w.shape[1])
            a = ((torch.rand(rank, w.shape[1], generator=gen) * 2 - 1) * bound).requires_grad_()
            bb = torch.zeros(w.shape[0], rank).requires_grad_()
            self.lora = (a, bb, scale)

    def __call__(self, x):
        y = F.linear(x, self.w, self.b)
        if self.lora:
            a, b, s = self.lora
            y = y + s * F.linear(F.linear(x, a), b)
        return y


class Qwen2:
    def __init__(self, spec, seed=1):
        gen = torch.Generator().manual_seed(seed)
        c, f = spec["hidden_size"], spec["intermediate_size"]
        self.h, self.g = spec["num_attention_heads"], spec["num_key_value_heads"]
        self.d = spec.get("head_dim") or c // self.h
        self.eps, self.theta = spec["rms_norm_eps"], spec["rope_theta"]
        rank, scale = spec["lora_rank"], spec["lora_alpha"] / spec["lora_rank"]
        targets = set(spec["lora_targets"])
        h, g, d = self.h, self.g, self.d

        def lin(name, out_f, in_f, bias=False):
            b = bf16_randn(gen, out_f) if bias else None
            return Lin(bf16_randn(gen, out_f, in_f), b, rank if name in targets else 0, scale, gen)

        self.embed = bf16_randn(gen, spec["vocab_size"], c)
        self.layers = [
            {
                "q": lin("q_proj", h * d, c, True),
                "k": lin("k_proj", g * d, c, True),
                "v": lin("v_proj", g * d, c, True),
                "o": lin("o_proj", c, h * d),
                "gate": lin("gate_proj", f, c),
                "up": lin("up_proj", f, c),
                "down": lin("down_proj", c, f),
            }
            for _ in range(spec["num_hidden_layers"])
        ]

    def params(self):
        return [t for layer in self.layers for m in layer.values() if m.lora for t in m.lora[:2]]

    def norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, tokens, cache=None, offset=0):
        bsz, t = tokens.shape
        h, g, d = self.h, self.g, self.d
        pos = torch.arange(offset, offset + t, dtype=torch.float32)
        inv = 1.0 / (self.theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        emb = torch.cat([torch.outer(pos, inv)] * 2, dim=-1)
        cos, sin = emb.cos(), emb.sin()

        def rot(x):
            return x * cos + torch.cat((-x[..., d // 2 :], x[..., : d // 2]), dim=-1) * sin

        x = self.embed[tokens]
        for i, p in enumerate(self.layers):
            hn = self.norm(x)
            q = rot(p["q"](hn).view(bsz, t, h, d).transpose(1, 2))
            k = rot(p["k"](hn).view(bsz, t, g, d).transpose(1, 2))
            v = p["v"](hn).view(bsz, t, g, d).transpose(1, 2)
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, offset : offset + t] = k
                cv[:, :, offset : offset + t] = v
                k, v = ck[:, :, : offset + t], cv[:, :, : offset + t]
            att = F.scaled_dot_product_attention(
                q, k, v, is_causal=cache is None or t > 1 and offset == 0, enable_gqa=True
            )
            x = x + p["o"](att.transpose(1, 2).reshape(bsz, t, h * d))
            hn = self.norm(x)
            x = x + p["down"](F.silu(p["gate"](hn)) * p["up"](hn))
        return F.linear(self.norm(x), self.embed)


def build(impl, spec):
    if impl == "torch":
        m = Qwen2(spec)
        return m, m.params(), lambda ids: m.forward(ids)
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    keys = {k: v for k, v in spec.items() if k not in ("lora_rank", "lora_alpha", "lora_targets", "adam")}
    torch.manual_seed(1)
    base = Qwen2ForCausalLM(Qwen2Config(**keys)).float()
    with torch.no_grad():
        for p in base.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    model = get_peft_model(
        base,
        LoraConfig(r=spec["lora_rank"], lora_alpha=spec["lora_alpha"], target_modules=spec["lora_targets"], lora_dropout=0.0),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, lambda ids: model(input_ids=ids).logits


def train(impl, spec, batch, seq):
    model, params, fwd = build(impl, spec)
    ad = spec["adam"]
    opt = torch.optim.AdamW(params, lr=ad["lr"], betas=(ad["beta1"], ad["beta2"]), eps=ad["eps"], weight_decay=ad["weightDecay"])
    gen = torch.Generator().manual_seed(100)
    stream = torch.randint(0, spec["vocab_size"], (batch, seq + 1), generator=gen)
    ids, targets = stream[:, :-1], stream[:, 1:]
    losses = []

    def step():
        lp = torch.log_softmax(fwd(ids), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        loss = -lp.sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        losses.append(loss.item() / (batch * seq))

    step()
    t0 = time.perf_counter()
    step()
    seconds = time.perf_counter() - t0
    return {"tokensPerSecond": batch * seq / seconds, "steps": 1, "seconds": seconds, "loss": losses[0]}


@torch.no_grad()
def sample(impl, spec, batches, prompt_len, max_tokens):
    model, _, _ = build(impl, spec)
    prompt = torch.randint(0, spec["vocab_size"], (prompt_len,), generator=torch.Generator().manual_seed(7))
    gen = torch.Generator().manual_seed(7)
    out = {}
    for b in batches:
        x0 = prompt.unsqueeze(0).expand(b, -1).contiguous()

        def run(n):
            if impl == "hf":
                model.generate(input_ids=x0, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                               max_new_tokens=n, min_new_tokens=n, pad_token_id=0)
                return
            cache = [(torch.zeros(b, model.g, prompt_len + n, model.d), torch.zeros(b, model.g, prompt_len + n, model.d)) for _ in model.layers]
            x, off = x0, 0
            for _ in range(n):
                logits = model.forward(x, cache, off)[:, -1]
                off += x.shape[1]
                x = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen)

        run(2)
        t0 = time.perf_counter()
        run(max_tokens)
        out[str(b)] = b * max_tokens / (time.perf_counter() - t0)
    return {"tokensPerSecond": out, "promptTokens": prompt_len, "maxTokens": max_tokens}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "sample"])
    p.add_argument("--impl", choices=["torch", "hf"], required=True)
    p.add_argument("--spec", required=True)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    if args.mode == "train":
        r = train(args.impl, spec, args.batch, args.seq)
    else:
        r = sample(args.impl, spec, [int(s) for s in args.batches.split(",")], args.prompt, args.max_tokens)
    head = {"peer": "transformers+peft" if args.impl == "hf" else "torch", "version": torch.__version__, "threads": args.threads}
    print(json.dumps({**head, **r, "peakRssBytes": peak_rss()}))


if __name__ == "__main__":
    main()
