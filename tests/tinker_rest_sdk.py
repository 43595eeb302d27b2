"""The official Tinker SDK's RestClient (0.24.1) against Bios's gateway: the
script side of tests/tinker_rest_gateway_test.ts.

Run by the vendored runner: `python --sdk 0.24.1 tinker_rest_sdk.py MODE URL KEY [ARGS]`.
Each MODE drives the SDK, unmodified, and prints one JSON line of what it
saw; the Deno test asserts on it.
"""

import hashlib
import io
import json
import sys
import tarfile
import time
import urllib.request

import tinker
from tinker import types

MODEL = "test/tiny"  # tests/_helpers.ts: TINY, a byte-level vocabulary of 259
BOS, EOS = 256, 257


def datum(text):
    seq = [BOS] + list(text.encode()) + [EOS]
    return types.Datum(
        model_input=types.ModelInput.from_ints(seq[:-1]),
        loss_fn_inputs={"target_tokens": seq[1:], "weights": [1.0] * (len(seq) - 1)},
    )


def failure(e):
    """What an SDK exception says, for the test to check."""
    return {"type": type(e).__name__, "status": getattr(e, "status_code", None)}


def attempt(call):
    try:
        call()
        return None
    except Exception as e:  # noqa: BLE001 - the test checks what it was
        return failure(e)


def ckpt(c):
    return {
        "checkpoint_id": c.checkpoint_id,
        "checkpoint_type": c.checkpoint_type,
        "tinker_path": c.tinker_path,
        "size_bytes": c.size_bytes,
        "public": c.public,
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
    }


def owner(sc):
    tc = sc.create_lora_training_client(base_model=MODEL, rank=4, seed=1)
    model_id = tc.get_info().model_id
    tc.forward_backward([datum("Q: 2+2?\nA: 4")], "cross_entropy").result()
    tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    a = tc.save_state("a").result().path
    s = tc.save_weights_for_sampler("s").result().path
    b = tc.save_state("b").result().path
    rest = sc.create_rest_client()

    runs = rest.list_training_runs().result()
    run = rest.get_training_run(model_id).result()
    by_path = rest.get_training_run_by_tinker_path(a).result()
    listed = [ckpt(c) for c in rest.list_checkpoints(model_id).result().checkpoints]
    user = rest.list_user_checkpoints(limit=2).result()
    info = rest.get_weights_info_by_tinker_path(a).result()

    rest.set_checkpoint_ttl_from_tinker_path(a, 3600).result()
    with_ttl = {
        c.tinker_path: c.expires_at.isoformat() if c.expires_at else None
        for c in rest.list_checkpoints(model_id).result().checkpoints
    }
    bad_ttl = attempt(lambda: rest.set_checkpoint_ttl_from_tinker_path(a, 0).result())
    rest.set_checkpoint_ttl_from_tinker_path(a, None).result()
    cleared = [
        c.expires_at for c in rest.list_checkpoints(model_id).result().checkpoints
        if c.tinker_path == a
    ]

    archive = rest.get_checkpoint_archive_url_from_tinker_path(a).result()
    # The URL needs no key, as a signed URL does not.
    with urllib.request.urlopen(archive.url) as res:
        data = res.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    manifest = json.loads(files["manifest.json"])
    record = json.loads(files["checkpoint_complete"])
    hashes_ok = all(
        hashlib.sha256(files[name]).hexdigest() == sha
        for name, sha in manifest["files"].items()
    ) and hashlib.sha256(files["manifest.json"]).hexdigest() == record["manifest_sha256"]

    rest.set_checkpoint_ttl_from_tinker_path(s, 1).result()
    time.sleep(2)
    after_expiry = [c.tinker_path for c in rest.list_checkpoints(model_id).result().checkpoints]
    expired_info = attempt(lambda: rest.get_weights_info_by_tinker_path(s).result())

    rest.delete_checkpoint_from_tinker_path(b).result()
    after_delete = [c.tinker_path for c in rest.list_checkpoints(model_id).result().checkpoints]
    delete_again = attempt(lambda: rest.delete_checkpoint_from_tinker_path(b).result())
    load_deleted = attempt(lambda: tc.load_state(b).result())

    print(json.dumps({
        "model_id": model_id,
        "paths": {"a": a, "s": s, "b": b},
        "runs": {
            "ids": [r.training_run_id for r in runs.training_runs],
            "total": runs.cursor.total_count,
        },
        "run": {
            "training_run_id": run.training_run_id,
            "base_model": run.base_model,
            "is_lora": run.is_lora,
            "lora_rank": run.lora_rank,
            "last_checkpoint": run.last_checkpoint.tinker_path if run.last_checkpoint else None,
            "last_sampler_checkpoint": run.last_sampler_checkpoint.checkpoint_id
            if run.last_sampler_checkpoint else None,
        },
        "by_path": by_path.training_run_id,
        "listed": listed,
        "user": {"paths": [c.tinker_path for c in user.checkpoints], "total": user.cursor.total_count},
        "info": {"base_model": info.base_model, "is_lora": info.is_lora, "lora_rank": info.lora_rank},
        "with_ttl": with_ttl,
        "bad_ttl": bad_ttl,
        "cleared": cleared,
        "archive": {
            "url": archive.url,
            "expires": archive.expires.isoformat(),
            "names": sorted(files),
            "manifest_name": manifest["name"],
            "hashes_ok": hashes_ok,
        },
        "after_expiry": after_expiry,
        "expired_info": expired_info,
        "after_delete": after_delete,
        "delete_again": delete_again,
        "load_deleted": load_deleted,
    }))


def stranger(sc, model_id, path):
    rest = sc.create_rest_client()
    runs = rest.list_training_runs().result()
    print(json.dumps({
        "runs_total": runs.cursor.total_count,
        "user_total": rest.list_user_checkpoints().result().cursor.total_count,
        "get_run": attempt(lambda: rest.get_training_run(model_id).result()),
        "list": attempt(lambda: rest.list_checkpoints(model_id).result()),
        "info": attempt(lambda: rest.get_weights_info_by_tinker_path(path).result()),
        "ttl": attempt(lambda: rest.set_checkpoint_ttl_from_tinker_path(path, 60).result()),
        "archive": attempt(
            lambda: rest.get_checkpoint_archive_url_from_tinker_path(path).result()
        ),
        "delete": attempt(lambda: rest.delete_checkpoint_from_tinker_path(path).result()),
    }))


def main():
    mode, url, key, *rest = sys.argv[1:]
    sc = tinker.ServiceClient(base_url=url, api_key=key)
    if mode == "owner":
        owner(sc)
    elif mode == "stranger":
        stranger(sc, *rest)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
