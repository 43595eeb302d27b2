"""Peer: the benchmark model in plain PyTorch, timed as Bios's workers time it.

    /usr/bin/python3 bench/torch_peer.py train  --spec JSON [--batch 8 --seq 128 --seconds 2]
    /usr/bin/python3 bench/torch_peer.py sample --spec JSON [--batches 1,8 --prompt 32 --max-tokens 64]
    add --device cuda to run on the GPU (float32, TF32 off)

--spec is the model's Hugging Face config plus "lora_rank", "lora_alpha" and
"adam" (lr, beta1, beta2, eps, weightDecay), as bench/bench_model.ts peerSpec()
writes it. Prints one JSON line.

The math is that of scripts/make_golden.py (Hugging Face LlamaForCausalLM with
PEFT LoRA, dropout 0) in float32: RMSNorm, rotate-half RoPE, grouped-query
causal attention (repeat_kv), SwiGLU MLP, untied LM head, and LoRA
y = x W^T + (alpha/r) (x A^T) B^T on every linear layer (A kaiming-uniform,
B zero, as PEFT). The base is frozen; AdamW (torch.optim.AdamW) updates the
LoRA tensors only. On the CPU it runs with 1 and 2 threads and reports the
faster setting; with --device cuda it runs once, in float32 with TF32 off (the
precision Bios's WebGPU kernels compute in), weights made on the CPU as there
and copied over.

train: one step = forward, loss = -sum(logprob of targets) (weights 1),
backward, AdamW step, zero_grad. One warm-up step, then steps until at least
2 and --seconds (at most 8; one step when a step takes over 3 s).

sample: a random prompt of --prompt tokens, copied to B sequences, prefilled
once into a preallocated KV cache, then --max-tokens tokens each drawn at
temperature 1 (torch.multinomial) and fed back one at a time. tokens/s =
B * max-tokens / wall time of the whole generation (prefill included). A
short warm-up generation (4 tokens) per batch size; then one timed generation,
and when it took under 4 s, timed generations anew until at least 2 and
--seconds.
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F


class LoraLinear:
    """y = x W^T + scale (x A^T) B^T with W frozen."""

    def __init__(self, w, rank, scale, gen, device):
        out_f, in_f = w.shape
        self.w = w.to(device)
        bound = 1.0 / math.sqrt(in_f)
        self.a = ((torch.rand(rank, in_f, generator=gen) * 2 - 1) * bound).to(device).requires_grad_()
        self.b = torch.zeros(out_f, rank, device=device).requires_grad_()
        self.scale = scale

    def __call__(self, x):
        return F.linear(x, self.w) + self.scale * F.linear(F.linear(x, self.a), self.b)

    def params(self):
        return [self.a, self.b]


class Llama:
    def __init__(self, spec, device="cpu", seed=1):
        gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.c = spec["hidden_size"]
        self.f = spec["intermediate_size"]
        self.n_layers = spec["num_hidden_layers"]
        self.h = spec["num_attention_heads"]
        self.g = spec["num_key_value_heads"]
        self.d = spec["head_dim"]
        self.v = spec["vocab_size"]
        self.eps = spec["rms_norm_eps"]
        self.theta = spec["rope_theta"]
        rank, alpha = spec["lora_rank"], spec["lora_alpha"]
        scale = alpha / rank

        def mat(out_f, in_f):
            return torch.randn(out_f, in_f, generator=gen) * 0.02

        def lin(out_f, in_f):
            return LoraLinear(mat(out_f, in_f), rank, scale, gen, device)

        c, f, h, g, d = self.c, self.f, self.h, self.g, self.d
        self.embed = mat(self.v, c).to(device)
        self.layers = []
        for _ in range(self.n_layers):
            self.layers.append(
                {
                    "in_norm": torch.ones(c, device=device),
                    "q": lin(h * d, c),
                    "k": lin(g * d, c),
                    "v": lin(g * d, c),
                    "o": lin(c, h * d),
                    "post_norm": torch.ones(c, device=device),
                    "gate": lin(f, c),
                    "up": lin(f, c),
                    "down": lin(c, f),
                }
            )
        self.norm = torch.ones(c, device=device)
        self.lm_head = lin(self.v, c)

    def lora_params(self):
        out = []
        for layer in self.layers:
            for m in layer.values():
                if isinstance(m, LoraLinear):
                    out += m.params()
        return out + self.lm_head.params()

    def rms_norm(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def rope(self, positions):
        d = self.d
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, d, 2, dtype=torch.float32, device=self.device) / d))
        freqs = torch.outer(positions.to(torch.float32), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)

    def forward(self, tokens, cache=None, offset=0):
        """Logits [B, T, V]. With `cache` (list of (k, v) [B, G, cap, D]) the new
        keys and values are written at offset..offset+T and attention reads
        keys 0..offset+T."""
        bsz, t = tokens.shape
        h, g, d = self.h, self.g, self.d
        dev = self.device
        cos, sin = self.rope(torch.arange(offset, offset + t, device=dev))
        tk = offset + t
        mask = None
        if t > 1:
            # query i (at position offset+i) sees keys 0..offset+i
            q_pos = torch.arange(offset, offset + t, device=dev).unsqueeze(1)
            k_pos = torch.arange(tk, device=dev).unsqueeze(0)
            mask = torch.zeros(t, tk, device=dev).masked_fill(k_pos > q_pos, float("-inf"))
        x = self.embed[tokens]
        for i, p in enumerate(self.layers):
            hn = self.rms_norm(x, p["in_norm"])
            q = p["q"](hn).view(bsz, t, h, d).transpose(1, 2)
            k = p["k"](hn).view(bsz, t, g, d).transpose(1, 2)
            v = p["v"](hn).view(bsz, t, g, d).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, offset:tk] = k
                cv[:, :, offset:tk] = v
                k, v = ck[:, :, :tk], cv[:, :, :tk]
            k = k.repeat_interleave(h // g, dim=1)
            v = v.repeat_interleave(h // g, dim=1)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
            if mask is not None:
                scores = scores + mask
            attn = torch.softmax(scores, dim=-1) @ v
            attn = attn.transpose(1, 2).reshape(bsz, t, h * d)
            x = x + p["o"](attn)
            hn = self.rms_norm(x, p["post_norm"])
            x = x + p["down"](F.silu(p["gate"](hn)) * p["up"](hn))
        x = self.rms_norm(x, self.norm)
        return self.lm_head(x)


def repeat(step, min_runs, max_runs, min_seconds):
    runs, t0, seconds = 0, time.perf_counter(), 0.0
    while runs < max_runs and (runs < min_runs or seconds < min_seconds):
        step()
        runs += 1
        seconds = time.perf_counter() - t0
    return runs, seconds


def bench_train(spec, batch, seq, min_seconds, device):
    model = Llama(spec, device)
    ad = spec["adam"]
    params = model.lora_params()
    opt = torch.optim.AdamW(
        params, lr=ad["lr"], betas=(ad["beta1"], ad["beta2"]), eps=ad["eps"], weight_decay=ad["weightDecay"]
    )
    gen = torch.Generator().manual_seed(100)
    stream = torch.randint(0, 256, (batch, seq + 1), generator=gen)
    stream = stream.to(device)
    ids, targets = stream[:, :-1], stream[:, 1:]
    weights = torch.ones(batch, seq, device=device)
    last_loss = [float("nan")]

    def step():
        logits = model.forward(ids)
        lp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        loss = -(lp * weights).sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)
        last_loss[0] = loss.item() / (batch * seq)

    w0 = time.perf_counter()
    step()
    loss = last_loss[0]
    slow = time.perf_counter() - w0 > 3.0
    runs, seconds = repeat(step, 1 if slow else 2, 8, 0.0 if slow else min_seconds)
    return {
        "tokensPerSecond": batch * seq * runs / seconds,
        "steps": runs,
        "seconds": seconds,
        "loss": loss,
    }


@torch.no_grad()
def generate(model, prompt, batch, max_tokens, gen):
    cap = prompt.shape[0] + max_tokens
    dev = model.device
    cache = [
        (torch.zeros(batch, model.g, cap, model.d, device=dev), torch.zeros(batch, model.g, cap, model.d, device=dev))
        for _ in model.layers
    ]
    x = prompt.unsqueeze(0).expand(batch, -1).contiguous()
    offset = 0
    out = []
    for _ in range(max_tokens):
        logits = model.forward(x, cache, offset)[:, -1]
        offset += x.shape[1]
        probs = torch.softmax(logits, dim=-1)
        x = torch.multinomial(probs, 1, generator=gen)
        out.append(x)
    return torch.cat(out, dim=1).cpu()  # on a GPU, waits for the last token


def bench_sample(spec, batches, prompt_len, max_tokens, min_seconds, device):
    model = Llama(spec, device)
    prompt = torch.randint(0, 256, (prompt_len,), generator=torch.Generator().manual_seed(7)).to(device)
    gen = torch.Generator(device=device).manual_seed(7)
    result = {}
    for b in batches:
        generate(model, prompt, b, min(4, max_tokens), gen)
        w0 = time.perf_counter()
        generate(model, prompt, b, max_tokens, gen)
        first = time.perf_counter() - w0
        if first > 4.0:
            runs, seconds = 1, first
        else:
            runs, seconds = repeat(lambda: generate(model, prompt, b, max_tokens, gen), 2, 20, min_seconds)
        result[str(b)] = b * max_tokens * runs / seconds
    return {"tokensPerSecond": result, "promptTokens": prompt_len, "maxTokens": max_tokens}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "sample"])
    p.add_argument("--spec", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--prompt", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seconds", type=float, default=None)
    # PyTorch's best setting on a 2-core machine is not always 2 threads (its
    # OpenMP pool and OpenBLAS's threads can fight): try each, report the best.
    p.add_argument("--threads", default="1,2")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    spec = json.loads(args.spec)
    device = args.device
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def run(threads):
        if threads is not None:
            torch.set_num_threads(threads)
        if args.mode == "train":
            return bench_train(spec, args.batch, args.seq, 2.0 if args.seconds is None else args.seconds, device)
        batches = [int(s) for s in args.batches.split(",")]
        return bench_sample(
            spec, batches, args.prompt, args.max_tokens, 1.0 if args.seconds is None else args.seconds, device
        )

    def score(r):
        tps = r["tokensPerSecond"]
        return sum(tps.values()) if isinstance(tps, dict) else tps

    if device == "cuda":
        head = {"peer": "torch", "version": torch.__version__, "device": torch.cuda.get_device_name()}
        print(json.dumps({**head, **run(None)}))
        return
    tried = {}
    for t in [int(s) for s in str(args.threads).split(",")]:
        tried[t] = run(t)
    best = max(tried, key=lambda t: score(tried[t]))
    by_threads = {str(t): r["tokensPerSecond"] for t, r in tried.items()}
    head = {"peer": "torch", "version": torch.__version__, "device": "cpu", "threads": best, "byThreads": by_threads}
    print(json.dumps({**head, **tried[best]}))


if __name__ == "__main__":
    main()
