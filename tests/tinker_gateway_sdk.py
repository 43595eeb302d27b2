"""The official Tinker SDK (0.24.1, JSON; 0.25.0, protobuf for
forward_backward and its results) against Bios's gateway: the script side of
tests/tinker_gateway_test.ts. The same flows run unchanged on both.

Run by the vendored runner: `python --sdk VERSION tinker_gateway_sdk.py MODE URL KEY [ARGS]`.
Each MODE drives one flow through the SDK, unmodified, with token ids only
(no tokenizer), and prints one JSON line of what it saw; the Deno test
asserts on it.
"""

import asyncio
import json
import sys

import tinker
from tinker import types

MODEL = "test/tiny"  # tests/_helpers.ts: TINY, a byte-level vocabulary of 259
BOS, EOS = 256, 257


def ids(text):
    return [BOS] + list(text.encode()) + [EOS]


def datum(seq):
    return types.Datum(
        model_input=types.ModelInput.from_ints(seq[:-1]),
        loss_fn_inputs={"target_tokens": seq[1:], "weights": [1.0] * (len(seq) - 1)},
    )


BATCH = [datum(ids("Q: 2+2?\nA: 4")), datum(ids("Q: 3*3?\nA: 9"))]


def loss(out):
    return out.metrics["loss:sum"]


def failure(e):
    """What an SDK exception says, for the test to check."""
    return {
        "type": type(e).__name__,
        "message": str(getattr(e, "message", e)),
        "category": str(getattr(e, "category", "")),
        "status": getattr(e, "status_code", None),
    }


def supervised(sc):
    tc = sc.create_lora_training_client(base_model=MODEL, rank=8, seed=0)
    info = tc.get_info()
    # Pipelined: every step's forward_backward and optim_step submitted before any result is read.
    futures = []
    for _ in range(6):
        fb = tc.forward_backward(BATCH, "cross_entropy")
        opt = tc.optim_step(types.AdamParams(learning_rate=2e-2))
        futures.append((fb, opt))
    losses = []
    for fb, opt in futures:
        out = fb.result()
        opt.result()
        losses.append(loss(out))
    logprobs_len = [len(o["logprobs"].data) for o in out.loss_fn_outputs]
    saved = tc.save_state("step6").result().path
    after_save = loss(tc.forward(BATCH, "cross_entropy").result())
    # Train on, then load the checkpoint back: the forward loss returns to the saved one.
    tc.forward_backward(BATCH, "cross_entropy").result()
    tc.optim_step(types.AdamParams(learning_rate=2e-2)).result()
    moved = loss(tc.forward(BATCH, "cross_entropy").result())
    loaded = tc.load_state(saved).result()
    after_load = loss(tc.forward(BATCH, "cross_entropy").result())
    tc.load_state_with_optimizer(saved).result()
    after_load_opt = loss(tc.forward(BATCH, "cross_entropy").result())
    sampler_path = tc.save_weights_for_sampler("final").result().path
    samp = sc.create_sampling_client(model_path=sampler_path)
    prompt = types.ModelInput.from_ints(ids("Q: 2+2?\nA:")[:-1])
    greedy = samp.sample(
        prompt=prompt,
        num_samples=1,
        sampling_params=types.SamplingParams(max_tokens=6, temperature=0.0),
    ).result().sequences[0]
    stop_at = greedy.tokens[0]
    stopped = samp.sample(
        prompt=prompt,
        num_samples=1,
        sampling_params=types.SamplingParams(max_tokens=6, temperature=0.0, stop=[stop_at]),
    ).result().sequences[0]
    lps = samp.compute_logprobs(prompt).result()
    ephemeral = tc.save_weights_and_get_sampling_client()
    eph = ephemeral.sample(
        prompt=prompt,
        num_samples=2,
        sampling_params=types.SamplingParams(max_tokens=4, temperature=0.0),
    ).result()
    resumed = sc.create_training_client_from_state_with_optimizer(saved)
    resumed_loss = loss(resumed.forward(BATCH, "cross_entropy").result())
    return {
        "sdk_version": tinker.__version__,
        "model_id": info.model_id,
        "lora_rank": info.lora_rank,
        "model_name": info.model_name,
        "losses": losses,
        "logprobs_len": logprobs_len,
        "saved": saved,
        "after_save": after_save,
        "moved": moved,
        "loaded_path": loaded.path,
        "after_load": after_load,
        "after_load_opt": after_load_opt,
        "sampler_path": sampler_path,
        "greedy": {"tokens": greedy.tokens, "stop_reason": greedy.stop_reason, "logprobs": greedy.logprobs},
        "stop_at": stop_at,
        "stopped": {"tokens": stopped.tokens, "stop_reason": stopped.stop_reason, "logprobs": stopped.logprobs},
        "compute_logprobs": lps,
        "ephemeral": [s.tokens for s in eph.sequences],
        "resumed_id": resumed.model_id,
        "resumed_loss": resumed_loss,
    }


def base(sc):
    samp = sc.create_sampling_client(base_model=MODEL)
    prompt = types.ModelInput.from_ints(ids("hello")[:-1])
    out = samp.sample(
        prompt=prompt,
        num_samples=3,
        sampling_params=types.SamplingParams(max_tokens=5, temperature=1.0, seed=7),
        include_prompt_logprobs=True,
        topk_prompt_logprobs=2,
    ).result()
    again = samp.sample(
        prompt=prompt,
        num_samples=3,
        sampling_params=types.SamplingParams(max_tokens=5, temperature=1.0, seed=7),
    ).result()
    return {
        "sequences": [{"tokens": s.tokens, "logprobs": s.logprobs, "stop_reason": s.stop_reason} for s in out.sequences],
        "again": [s.tokens for s in again.sequences],
        "prompt_len": prompt.length,
        "prompt_logprobs": out.prompt_logprobs,
        "topk": out.topk_prompt_logprobs,
        "compute_logprobs": samp.compute_logprobs(prompt).result(),
        "base_model": samp.get_base_model(),
    }


async def run_async(sc):
    tc = await sc.create_lora_training_client_async(base_model=MODEL, rank=4, seed=1)
    losses = []
    for _ in range(4):
        fb = await tc.forward_backward_async(BATCH, "cross_entropy")
        opt = await tc.optim_step_async(types.AdamParams(learning_rate=2e-2))
        losses.append(loss(await fb))
        await opt
    fwd = await (await tc.forward_async(BATCH, "cross_entropy"))
    path = (await (await tc.save_weights_for_sampler_async("async"))).path
    samp = await sc.create_sampling_client_async(model_path=path)
    out = await samp.sample_async(
        prompt=types.ModelInput.from_ints(ids("Q:")[:-1]),
        num_samples=2,
        sampling_params=types.SamplingParams(max_tokens=3, temperature=0.0),
    )
    caps = await sc.get_server_capabilities_async()
    return {
        "losses": losses,
        "forward_loss": loss(fwd),
        "path": path,
        "tokens": [s.tokens for s in out.sequences],
        "models": [m.model_name for m in caps.supported_models],
    }


def errors(sc):
    out = {}
    tc = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=2)
    bad_token = datum([BOS, 5000, 65, EOS])
    try:
        tc.forward_backward([bad_token], "cross_entropy").result()
    except Exception as e:  # noqa: BLE001
        out["bad_token"] = failure(e)
    mismatched = types.Datum(
        model_input=types.ModelInput.from_ints([BOS, 65, 66]),
        loss_fn_inputs={"target_tokens": [65, 66], "weights": [1.0, 1.0]},
    )
    try:
        tc.forward_backward([mismatched], "cross_entropy").result()
    except Exception as e:  # noqa: BLE001
        out["mismatched"] = failure(e)
    # A target beyond 32 bits: over 0.25's protobuf the decoder refuses it
    # (its seq_id still taken); over JSON the datum check does.
    huge = types.Datum(
        model_input=types.ModelInput.from_ints([BOS, 65, 66]),
        loss_fn_inputs={"target_tokens": [65, 66, 2**40], "weights": [1.0, 1.0, 1.0]},
    )
    try:
        tc.forward_backward([huge], "cross_entropy").result()
    except Exception as e:  # noqa: BLE001
        out["huge_target"] = failure(e)
    try:
        tc.optim_step(types.AdamParams(learning_rate=-1.0)).result()
    except Exception as e:  # noqa: BLE001
        out["bad_lr"] = failure(e)
    try:
        tc.load_state("tinker://run-nope/weights/none").result()
    except Exception as e:  # noqa: BLE001
        out["missing_checkpoint"] = failure(e)
    # The refused operations took their seq_id: the run goes on.
    out["after"] = loss(tc.forward_backward(BATCH, "cross_entropy").result())
    try:
        sc.create_lora_training_client(base_model="no/such-model", rank=4)
    except Exception as e:  # noqa: BLE001
        out["bad_model"] = failure(e)
    samp = sc.create_sampling_client(base_model=MODEL)
    try:
        samp.sample(
            prompt=types.ModelInput.from_ints([BOS, 65]),
            num_samples=1,
            sampling_params=types.SamplingParams(max_tokens=100000),
        ).result()
    except Exception as e:  # noqa: BLE001
        out["too_many_tokens"] = failure(e)
    return out


def tenant_a(sc):
    tc = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=3)
    path = tc.save_weights_for_sampler("mine").result().path
    state = tc.save_state("mine").result().path
    return {"model_id": tc.model_id, "sampler_path": path, "state_path": state}


def tenant_b(sc, model_id, sampler_path, state_path):
    out = {}
    holder = sc.holder
    try:
        from tinker.lib.public_interfaces.training_client import TrainingClient

        TrainingClient(holder, model_seq_id=0, model_id=model_id).get_info()
    except Exception as e:  # noqa: BLE001
        out["get_info"] = failure(e)
    try:
        sc.create_sampling_client(model_path=sampler_path).sample(
            prompt=types.ModelInput.from_ints([BOS, 65]),
            num_samples=1,
            sampling_params=types.SamplingParams(max_tokens=2),
        ).result()
    except Exception as e:  # noqa: BLE001
        out["sample_other"] = failure(e)
    try:
        sc.create_training_client_from_state(state_path)
    except Exception as e:  # noqa: BLE001
        out["from_state_other"] = failure(e)
    mine = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=4)
    try:
        mine.load_state(state_path).result()
    except Exception as e:  # noqa: BLE001
        out["load_other"] = failure(e)
    return out


def custom(sc):
    """forward_backward_custom (needs torch in the SDK's venv): a hand-written
    -sum(logprob * w) takes the same step as cross_entropy with weights w, and
    a signed loss (async) lowers one datum's target logprobs while raising the
    other's."""
    import torch

    adam = types.AdamParams(learning_rate=2e-2)
    w = [0.25 + 0.5 * (i % 3) for i in range(13)]
    weighted = [types.Datum(model_input=d.model_input, loss_fn_inputs={**d.loss_fn_inputs, "weights": w}) for d in BATCH]

    shapes = []

    def nll(data, logprobs_list):
        shapes.extend(list(lp.shape) for lp in logprobs_list)
        total = sum(-(lp * d.loss_fn_inputs["weights"].to_torch()).sum() for d, lp in zip(data, logprobs_list))
        return total, {"nll": total.item()}

    ce_tc = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=7)
    cu_tc = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=7)
    ce = ce_tc.forward_backward(weighted, "cross_entropy").result()
    ce_tc.optim_step(adam).result()
    cu = cu_tc.forward_backward_custom(weighted, nll).result()
    cu_tc.optim_step(adam).result()
    after = [ce_tc.forward(weighted, "cross_entropy").result(), cu_tc.forward(weighted, "cross_entropy").result()]

    # Target tokens only (no weights): the SDK's forward sends zero weights.
    bare = [types.Datum(model_input=d.model_input, loss_fn_inputs={"target_tokens": d.loss_fn_inputs["target_tokens"]}) for d in BATCH]

    def signed(data, logprobs_list):
        down, up = logprobs_list[0].sum(), logprobs_list[1].sum()
        return down - up, {"down:sum": down.item(), "up:sum": up.item()}

    async def signed_step():
        tc = await sc.create_lora_training_client_async(base_model=MODEL, rank=4, seed=8)
        before = await (await tc.forward_async(BATCH, "cross_entropy"))
        out = await (await tc.forward_backward_custom_async(bare, signed))
        await (await tc.optim_step_async(adam))
        after = await (await tc.forward_async(BATCH, "cross_entropy"))
        return before, out, after

    before, sg, sg_after = asyncio.run(signed_step())

    def lps(out):
        return [o["logprobs"].data for o in out.loss_fn_outputs]

    return {
        "ce_metrics": ce.metrics,
        "custom_metrics": cu.metrics,
        "ce_logprobs": lps(ce),
        "custom_logprobs": lps(cu),
        "ce_next": lps(after[0]),
        "custom_next": lps(after[1]),
        "ce_next_loss": loss(after[0]),
        "custom_next_loss": loss(after[1]),
        "logprob_shapes": shapes,
        "signed_metrics": sg.metrics,
        "signed_before": lps(before),
        "signed_after": lps(sg_after),
    }


def main():
    mode, url, key, *rest = sys.argv[1:]
    sc = tinker.ServiceClient(base_url=url, api_key=key)
    if mode == "supervised":
        out = supervised(sc)
    elif mode == "base":
        out = base(sc)
    elif mode == "async":
        out = asyncio.run(run_async(sc))
    elif mode == "custom":
        out = custom(sc)
    elif mode == "errors":
        out = errors(sc)
    elif mode == "tenant_a":
        out = tenant_a(sc)
    elif mode == "tenant_b":
        out = tenant_b(sc, *rest)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
