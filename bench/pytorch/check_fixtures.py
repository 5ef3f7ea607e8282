#!/usr/bin/env python3
"""Checks the benchmark's PyTorch model (`swin_bench.py`) against the golden backbone
fixtures of `shared/fixtures` (the official code's outputs and gradients), so that the
PyTorch side of `scripts/bench-vs-pytorch.sh` times the right model and not merely one
with the right parameter count.

For every fixture of kind `swin_backbone`: build `SwinBackbone` with the fixture's config
and method (drop path 0, float64), load its `param.*` tensors, run it in eval mode, and
compare the per-stage outputs, the input gradient and the gradient of every trainable
parameter (of `sum_i sum(output_i * loss_weight_i)`), with the fixture's tolerances
(outputs 1e-4, gradients 1e-3, relative to the largest magnitude); the trainable set must
be exactly the fixture's `grad.*` set and the counts its `params_total/trainable`. LoRA
runs unmerged (the fixture gives its factors' gradients); its merged eval forward is
checked against the same outputs.

usage: check_fixtures.py [FIXTURES_DIR]   (default: $MONA_FIXTURES or ../shared/fixtures)
Needs only torch (safetensors files are read with the standard library).
"""

import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swin_bench import LoraQkv, SwinBackbone, count_params  # noqa: E402

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[start:end]), dtype=DTYPES[meta["dtype"]])
        out[key] = t.reshape(meta["shape"])
    return out


def rel_err(got, want):
    scale = want.abs().max().item()
    return (got - want).abs().max().item() / (scale if scale > 0 else 1.0)


def check(path_json):
    meta = json.load(open(path_json))
    t = load_safetensors(path_json[: -len(".json")] + ".safetensors")
    cfg = meta["config"]
    method = meta["method"]
    arch = (cfg["embed_dim"], tuple(cfg["depths"]), tuple(cfg["num_heads"]))
    model = SwinBackbone(arch, method, window=cfg["window_size"],
                         out_indices=cfg["out_indices"], drop_path_rate=0.0).double()
    model.eval()
    for m in model.modules():
        if isinstance(m, LoraQkv):
            m.train(True)  # unmerged: the fixture has the LoRA factors' gradients
    params = {k[len("param."):]: v.double() for k, v in t.items() if k.startswith("param.")}
    missing, unexpected = model.load_state_dict(params, strict=False)
    problems = []
    if unexpected or any(not k.endswith("relative_position_index") for k in missing):
        problems.append(f"keys: missing {missing}, unexpected {unexpected}")
    total, trainable = count_params(model)
    if (total, trainable) != (meta["params_total"], meta["params_trainable"]):
        problems.append(f"counts {total}/{trainable} != {meta['params_total']}/"
                        f"{meta['params_trainable']}")
    x = t["input"].double().requires_grad_(True)
    outs = model(x)
    loss = sum((o * t[f"loss_weight.{i}"].double()).sum() for i, o in enumerate(outs))
    loss.backward()
    worst_out = max(rel_err(o, t[f"output.{i}"].double()) for i, o in enumerate(outs))
    worst_grad = rel_err(x.grad, t["grad.input"].double())
    want_grads = {k[len("grad."):] for k in t if k.startswith("grad.") and k != "grad.input"}
    have = {n for n, p in model.named_parameters() if p.requires_grad}
    if have != want_grads:
        problems.append(f"trainable set differs: extra {sorted(have - want_grads)[:5]}, "
                        f"missing {sorted(want_grads - have)[:5]}")
    for n, p in model.named_parameters():
        if n in want_grads:
            worst_grad = max(worst_grad, rel_err(p.grad, t["grad." + n].double()))
    if method == "lora":
        model.eval()  # merges the deltas into qkv
        with torch.no_grad():
            merged = model(t["input"].double())
        worst_out = max(worst_out, max(rel_err(o, t[f"output.{i}"].double())
                                       for i, o in enumerate(merged)))
    if worst_out > 1e-4:
        problems.append(f"output error {worst_out:.2e}")
    if worst_grad > 1e-3:
        problems.append(f"gradient error {worst_grad:.2e}")
    return {"fixture": os.path.basename(path_json), "method": method,
            "output_rel_err": worst_out, "grad_rel_err": worst_grad,
            "params_total": total, "params_trainable": trainable,
            "pass": not problems, "problems": problems}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.environ.get("MONA_FIXTURES",
                             os.path.join(here, "..", "..", "..", "shared", "fixtures"))
    folder = sys.argv[1] if len(sys.argv) > 1 else default
    if not os.path.isdir(folder):
        print(f"no fixtures folder {folder}", file=sys.stderr)
        return 2
    failed = 0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder, name)
        if json.load(open(path)).get("kind") != "swin_backbone":
            continue
        result = check(path)
        failed += not result["pass"]
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
