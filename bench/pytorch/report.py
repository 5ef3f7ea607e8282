#!/usr/bin/env python3
"""The Markdown table of `scripts/bench-vs-pytorch.sh` (standard library only).

usage: report.py compare RAW.jsonl
       report.py fallback RAW.jsonl LIST.jsonl

RAW.jsonl holds one line per process: our `bench` line or `swin_bench.py`'s, each with
`"round"` and `"side"` (`ours`/`pytorch`) added by the script, or a
`{"round", "side", "case", "failed": true}` line where a process failed. Per case:

- ours ms and PyTorch ms: the median over rounds of each process's mean step time;
- speed ratio: PyTorch ms / ours ms per round (both sides of a round ran back to back),
  median over the rounds where both sides ran, with the range (> 1: ours is faster);
- peak memory: on the CPU each process's peak RSS (ours `peak_rss_mib`, PyTorch
  `ru_maxrss`); on CUDA the allocator peaks (ours: the memory pools' reserved bytes;
  PyTorch: `max_memory_allocated` / `max_memory_reserved`), median over rounds;
- others' CPU: the most that other processes used (in cores, `others_cpu_cores` from the
  script) during any of the case's processes. A row with more than ~0.1 is suspect, above
  all on PyTorch's side: its OpenMP threads stall when another process takes a core.

`fallback` is for a machine where PyTorch could not be installed: our numbers next to the
hard-coded PyTorch numbers of `bench --list`, which are from another day, without a ratio.
"""

import json
import statistics
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def by_case(raw):
    """{case: {"ours": {round: line}, "pytorch": {round: line}}} in first-seen case order."""
    cases = {}
    for line in raw:
        # Our bench nests the whole case ({"name": ...}); PyTorch's and failures give the name.
        name = line["case"]["name"] if isinstance(line["case"], dict) else line["case"]
        slot = cases.setdefault(name, {"ours": {}, "pytorch": {}})
        slot[line["side"]][line["round"]] = line
    return cases


def ok(line):
    return line is not None and not line.get("failed")


def ours_peak(line):
    # Our bench's JSON has `device` ("flex", "cuda:0") and a nested `case`.
    if line["device"].startswith("cuda"):
        return line.get("peak_gib")
    return line.get("peak_rss_mib")


def compare(raw_path):
    cases = by_case(load(raw_path))
    gpu = any(ok(l) and str(l.get("device", "")).startswith("cuda")
              for c in cases.values() for side in c.values() for l in side.values())
    if gpu:
        print("| case | ours ms | PyTorch ms | ours ÷ PyTorch speed (range) | rounds "
              "| ours peak GiB (pools reserved) | PyTorch peak GiB (allocated / reserved) "
              "| others' CPU (cores, max) |")
    else:
        print("| case | ours ms | PyTorch ms | ours ÷ PyTorch speed (range) | rounds "
              "| ours peak RSS MiB | PyTorch peak RSS MiB | others' CPU (cores, max) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, sides in cases.items():
        ours = {r: l for r, l in sides["ours"].items() if ok(l)}
        torch = {r: l for r, l in sides["pytorch"].items() if ok(l)}
        rounds = sorted(set(ours) & set(torch))
        ratios = [torch[r]["mean_ms"] / ours[r]["mean_ms"] for r in rounds]
        ratio = median(ratios)
        ratio_cell = "—" if ratio is None else (
            f"{ratio:.2f} ({min(ratios):.2f}–{max(ratios):.2f})")
        failed = (len(sides["ours"]) - len(ours), len(sides["pytorch"]) - len(torch))
        rounds_cell = str(len(rounds)) + (
            f" ({failed[0]} ours, {failed[1]} PyTorch failed)" if any(failed) else "")
        ours_mem = median([ours_peak(l) for l in ours.values()])
        if gpu:
            alloc = median([l.get("cuda_max_allocated_gib") for l in torch.values()])
            res = median([l.get("cuda_max_reserved_gib") for l in torch.values()])
            mem = (fmt(ours_mem, 2), f"{fmt(alloc, 2)} / {fmt(res, 2)}")
        else:
            mem = (fmt(ours_mem, 0), fmt(median([l.get("peak_rss_mib") for l in torch.values()]), 0))
        others = [l.get("others_cpu_cores") for side in sides.values() for l in side.values()]
        others = [o for o in others if o is not None]
        print(f"| {name} | {fmt(median([l['mean_ms'] for l in ours.values()]))} "
              f"| {fmt(median([l['mean_ms'] for l in torch.values()]))} | {ratio_cell} "
              f"| {rounds_cell} | {mem[0]} | {mem[1]} "
              f"| {fmt(max(others), 2) if others else '—'} |")


def fallback(raw_path, list_path):
    listed = {c["name"]: c for c in load(list_path)}
    cases = by_case(load(raw_path))
    print("| case | ours ms | ours peak RSS MiB | ours peak GiB "
          "| FALLBACK PyTorch ms (another day) | FALLBACK PyTorch GiB | measured on |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, sides in cases.items():
        ours = [l for l in sides["ours"].values() if ok(l)]
        ref = listed.get(name, {})
        img_s = ref.get("fallback_pytorch_images_per_s")
        ref_ms = 1000.0 * ref["batch"] / img_s if img_s else None
        print(f"| {name} | {fmt(median([l['mean_ms'] for l in ours]))} "
              f"| {fmt(median([l.get('peak_rss_mib') for l in ours]), 0)} "
              f"| {fmt(median([l.get('peak_gib') for l in ours]), 2)} | {fmt(ref_ms)} "
              f"| {fmt(ref.get('fallback_pytorch_peak_gib'), 2)} "
              f"| {ref.get('fallback_measured_on', 'none')} |")


def main(argv):
    if len(argv) == 2 and argv[0] == "compare":
        compare(argv[1])
    elif len(argv) == 3 and argv[0] == "fallback":
        fallback(argv[1], argv[2])
    else:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
