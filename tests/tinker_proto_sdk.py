"""The official Tinker SDK's (0.25) side of tests/tinker_proto_test.ts.

Run by the vendored runner (`python --sdk 0.25.0 tinker_proto_sdk.py DIR`).
Reads DIR/spec.json, written by the Deno test, and:

- builds each request in spec["requests"] from SDK types and serializes it
  with the SDK's own `forward_backward_request_to_proto` (as
  resources/training.py does, forward_only included), or, for dtypes the
  SDK never sends (bfloat16, int32), builds the `tinker_public.Tensor`
  with the SDK's generated classes; writes DIR/<name>.bin;
- parses each response file in spec["responses"] with the SDK's own
  `deserialize_forward_backward_output` / `deserialize_sample_response`,
  as api_future_impl.py does;
- prints one JSON line: the parsed responses, and the SDK's descriptor of
  tinker_public as proto3 JSON. Non-finite floats print as strings
  ("NaN", "Infinity", "-Infinity"), which JSON cannot hold.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
from google.protobuf import descriptor_pb2, json_format

from tinker import types
from tinker.proto import tinker_public_pb2 as public_pb
from tinker.proto.request_conv import forward_backward_request_to_proto
from tinker.proto.response_conv import (
    deserialize_forward_backward_output,
    deserialize_sample_response,
)


def num(v):
    """A JSON-safe number: non-finite floats as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def nums(xs):
    return None if xs is None else [num(x) for x in xs]


def loss_input(spec):
    """A loss input as the user would hand it to the SDK's Datum."""
    kind = spec["kind"]
    if kind == "list":
        return spec["values"]
    if kind == "numpy":
        return np.asarray(spec["values"], dtype=spec["np_dtype"]).reshape(spec["shape"])
    if kind == "sparse":
        return types.TensorData(
            data=spec["values"],
            dtype=spec["dtype"],
            shape=spec["shape"],
            sparse_crow_indices=spec["crow"],
            sparse_col_indices=spec["col"],
        )
    raise ValueError(f"unknown loss input kind {kind}")


def chunk(spec):
    if spec.get("image") is not None:
        return types.ImageChunk(data=bytes(spec["image"]), format="png", expected_tokens=2)
    return types.EncodedTextChunk(tokens=spec["tokens"])


def sdk_request(spec):
    data = [
        types.Datum(
            model_input=types.ModelInput(chunks=[chunk(c) for c in d["chunks"]]),
            loss_fn_inputs={k: loss_input(v) for k, v in d["inputs"].items()},
        )
        for d in spec["data"]
    ]
    req = types.ForwardBackwardRequest(
        forward_backward_input=types.ForwardBackwardInput(
            data=data,
            loss_fn=spec["loss_fn"],
            loss_fn_config=spec.get("loss_fn_config"),
        ),
        model_id=spec["model_id"],
        seq_id=spec["seq_id"],
    )
    msg = forward_backward_request_to_proto(req)
    msg.forward_only = spec["forward_only"]
    return msg.SerializeToString()


def raw_tensor(spec):
    """A Tensor in a dtype the SDK never sends, built with its generated classes."""
    t = public_pb.Tensor()
    if spec["dtype"] == "bfloat16":
        f32 = np.asarray(spec["values"], dtype=np.float32)
        t.dense = (f32.view(np.uint32) >> 16).astype("<u2").tobytes()
        t.dtype = public_pb.DTYPE_BFLOAT16
    elif spec["dtype"] == "int32":
        t.dense = np.asarray(spec["values"], dtype="<i4").tobytes()
        t.dtype = public_pb.DTYPE_INT32
    else:
        raise ValueError(spec["dtype"])
    t.shape.extend([len(spec["values"])])
    return t


def raw_request(spec):
    msg = public_pb.ForwardBackwardRequest(
        model_id=spec["model_id"], seq_id=spec["seq_id"], loss_fn=spec["loss_fn"]
    )
    for d in spec["data"]:
        dm = msg.data.add()
        for c in d["chunks"]:
            dm.model_input.add().encoded_text.tokens = np.asarray(c["tokens"], "<i4").tobytes()
        for k, v in d["inputs"].items():
            dm.loss_fn_inputs[k].CopyFrom(raw_tensor(v))
    return msg.SerializeToString()


def tensor_json(td):
    return {"dtype": td.dtype, "shape": td.shape, "data": nums(td.data)}


def fbo_json(b):
    out = deserialize_forward_backward_output(b)
    return {
        "loss_fn_output_type": out.loss_fn_output_type,
        "loss_fn_outputs": [
            {k: tensor_json(v) for k, v in o.items()} for o in out.loss_fn_outputs
        ],
        "metrics": {k: num(v) for k, v in out.metrics.items()},
    }


def sample_json(b):
    out = deserialize_sample_response(b)
    topk = out.topk_prompt_logprobs
    return {
        "sequences": [
            {
                "stop_reason": s.stop_reason,
                "tokens": s.tokens,
                "tokens_dtype": str(s.tokens_np.dtype),
                "logprobs": nums(s.logprobs),
            }
            for s in out.sequences
        ],
        "prompt_logprobs": None
        if out.prompt_logprobs is None
        else [None if v is None else num(v) for v in out.prompt_logprobs],
        "topk_prompt_logprobs": None
        if topk is None
        else [None if r is None else [[t, num(lp)] for t, lp in r] for r in topk],
        "topk_shape": None
        if out.topk_prompt_logprobs_np is None
        else list(out.topk_prompt_logprobs_np.token_ids.shape),
        "prompt_cache_hit_tokens": out.prompt_cache_hit_tokens,
    }


def main():
    work = Path(sys.argv[1])
    spec = json.loads((work / "spec.json").read_text())
    errors = {}
    for name, req in spec["requests"].items():
        try:
            body = raw_request(req) if req.get("raw") else sdk_request(req)
            (work / f"{name}.bin").write_bytes(body)
        except Exception as e:  # the test reports which request the SDK refused
            errors[name] = f"{type(e).__name__}: {e}"
    parsed = {}
    for name, r in spec["responses"].items():
        b = (work / r["file"]).read_bytes()
        try:
            parsed[name] = fbo_json(b) if r["kind"] == "fbo" else sample_json(b)
        except Exception as e:
            parsed[name] = {"error": f"{type(e).__name__}: {e}"}
    fd = descriptor_pb2.FileDescriptorProto()
    public_pb.DESCRIPTOR.CopyToProto(fd)
    print(
        json.dumps(
            {
                "request_errors": errors,
                "responses": parsed,
                "descriptor": json_format.MessageToDict(fd),
            }
        )
    )


main()
