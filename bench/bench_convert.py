"""Benchmark ``ckptlens convert`` against ``cp`` + ``sync`` and transformers load + save.

Builds a synthetic Llama-shaped checkpoint (random bf16, several shards; about 2 GB by
default), then measures in one run, each in a fresh subprocess:

- ``cp -r`` then ``sync`` of the checkpoint (the plain-copy baseline);
- ckptlens HF -> native and native -> HF: throughput from the first read to the last byte
  written and synced (timed inside the child, interpreter start and imports excluded), the
  whole-process wall time, peak RSS, and the plan's memory bound;
- the casts bf16 -> fp16 (HF -> native) and fp32 -> bf16 (an fp32 copy of the checkpoint,
  made once with ckptlens, HF -> native): the same numbers; each cast's throughput ratio is
  against ``cp -r`` + ``sync`` of its own source checkpoint in the same round;
- transformers ``from_pretrained`` + ``save_pretrained`` of the same checkpoint (whole process).

Usage: ``python bench/bench_convert.py [--layers 19] [--hidden 2048] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CKPTLENS_CHILD = """
import json, os, resource, sys, time
import numpy  # loaded before the baseline: the bound counts tensor data, not libraries
import ckptlens.formats
from ckptlens.weights.convert import convert
baseline = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
started, cpu = time.perf_counter(), time.process_time()
dtype = sys.argv[4] if len(sys.argv) > 4 else None
plan = convert(sys.argv[1], sys.argv[2], to=sys.argv[3], dtype=dtype, progress=False)
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
status = open("/proc/self/status").read()
peak = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps({"seconds": elapsed, "cpu": cpu, "bytes": plan.write_bytes,
                  "bound": plan.memory_bound, "baseline_rss": baseline, "peak_rss": peak}))
"""

TRANSFORMERS_CHILD = """
import sys, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16)
model.save_pretrained(sys.argv[2])
print(int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) * 1024)
"""

BUILD_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from bench.bench_convert import build
build(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
"""


def llama_shaped(layers: int, hidden: int):
    """Llama-7B proportions scaled to ``hidden``: GQA 4:1, head size 128, vocab 32000."""
    from ckptlens.demo import tiny_llama
    from ckptlens.native.config import (
        MLP,
        Attention,
        Block,
        DefaultRotary,
        FixedDecoder,
        Head,
        Model,
        RMSNorm,
    )

    heads = hidden // 128
    block = Block(
        Attention(heads, max(1, heads // 4), 128, DefaultRotary(10000.0)),
        MLP(hidden * 11 // 4),
        RMSNorm(1e-5),
    )
    metadata = tiny_llama().metadata
    return Model(hidden, 32000, FixedDecoder(block, layers), Head(RMSNorm(1e-5)), metadata=metadata)


def build(directory: str, layers: int, hidden: int, shard: str) -> None:
    from ckptlens.demo import write_hf_checkpoint
    from ckptlens.weights.convert import parse_size

    write_hf_checkpoint(directory, llama_shaped(layers, hidden), parse_size(shard))


def run_child(arguments: list[str]) -> tuple[float, str]:
    """Wall seconds and stdout of a child process. (Peak RSS is read by the child from
    VmHWM: ``ru_maxrss`` would carry over the parent's peak through fork and exec.)"""
    started = time.perf_counter()
    done = subprocess.run(arguments, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{arguments[:3]} failed:\n{done.stderr}")
    return seconds, done.stdout


def directory_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


def copy_baseline(src: str, dst: str) -> float:
    subprocess.run(["sync"], check=True)
    started = time.perf_counter()
    subprocess.run(["cp", "-r", src, dst], check=True)
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - started


def ckptlens_run(src: str, dst: str, to: str, dtype: str | None = None) -> dict:
    subprocess.run(["sync"], check=True)  # start every measurement without dirty pages
    extra = [dtype] if dtype else []
    seconds, out = run_child([sys.executable, "-c", CKPTLENS_CHILD, src, dst, to, *extra])
    result = json.loads(out.strip().splitlines()[-1])
    result.update(process_seconds=seconds)
    return result


def gib(count: float) -> str:
    return f"{count / 2**30:.2f} GiB"


def mib(count: float) -> str:
    return f"{count / 2**20:.0f} MiB"


CONVERSIONS = ("HF -> native", "native -> HF")
CASTS = {"bf16 -> fp16": "copy bf16", "fp32 -> bf16": "copy fp32"}
"""Each cast and the copy baseline its throughput is compared with (that of its source)."""


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(size: int, rounds: list[dict], wide_size: int) -> None:
    """Medians over rounds; ratios are taken within each round (the same minute of a noisy
    shared machine) and then their median reported."""
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"checkpoint: {gib(size)}, {len(rounds)} rounds, medians shown")
    copy = median([r["copy"] for r in rounds])
    print(f"cp -r + sync: {copy:.2f} s, {mib(size / copy)}/s")
    hf_seconds = median([r["hf"][0] for r in rounds])
    for name in (*CONVERSIONS, *CASTS):
        runs = [r[name] for r in rounds]
        seconds = median([run["seconds"] for run in runs])
        baseline = CASTS.get(name, "copy")
        ratio = median([r[baseline] / r[name]["seconds"] for r in rounds])
        if name in CASTS:
            copied = median([r[baseline] for r in rounds])
            source = wide_size if baseline == "copy fp32" else size
            print(f"cp -r + sync of the {name.split()[0]} source ({gib(source)}): {copied:.2f} s")
        whole = median([run["process_seconds"] for run in runs])
        speedup = median([r["hf"][0] / r[name]["process_seconds"] for r in rounds])
        peak, start = max(run["peak_rss"] for run in runs), max(run["baseline_rss"] for run in runs)
        bound = runs[0]["bound"]
        within = all(run["peak_rss"] <= run["baseline_rss"] + run["bound"] for run in runs)
        print(f"ckptlens {name}:")
        written = runs[0]["bytes"]
        cpu = median([run["cpu"] for run in runs])
        print(
            f"  convert {seconds:.2f} s ({cpu:.2f} s CPU, all threads), writes"
            f" {mib(written / seconds)}/s; {ratio:.2f}x cp"
        )
        than = "" if name in CASTS else f"; {speedup:.1f}x faster than transformers"
        print(f"  whole process {whole:.2f} s{than}")
        verdict = "within" if within else "EXCEEDED"
        print(f"  peak RSS {mib(peak)} (start {mib(start)} + plan bound {mib(bound)}: {verdict})")
    hf_rss = max(r["hf"][1] for r in rounds)
    print(f"transformers from_pretrained + save_pretrained: {hf_seconds:.2f} s")
    print(f"  peak RSS {mib(hf_rss)}")


def one_round(workdir: str, src: str, wide: str, with_transformers: bool) -> dict:
    """cp, HF -> native, native -> HF, then each cast right after a copy of its own source,
    transformers: one measurement each. Every output is removed as soon as it is measured (or
    used), so no measurement pays for reclaiming the page cache of the ones before it."""
    names = ("copy", "native", "back", "transformers", "copy-fp32", "fp16", "bf16", "copy-bf16")
    out = dict(zip(names, (os.path.join(workdir, n) for n in names), strict=True))

    def done(*keys: str) -> None:
        for key in keys:
            shutil.rmtree(out[key], ignore_errors=True)

    result: dict = {"copy": copy_baseline(src, out["copy"])}
    done("copy")
    result["HF -> native"] = ckptlens_run(src, out["native"], "native")
    result["native -> HF"] = ckptlens_run(out["native"], out["back"], "llama")
    done("native", "back")
    result["copy bf16"] = copy_baseline(src, out["copy-bf16"])
    done("copy-bf16")
    result["bf16 -> fp16"] = ckptlens_run(src, out["fp16"], "native", "float16")
    done("fp16")
    result["copy fp32"] = copy_baseline(wide, out["copy-fp32"])
    done("copy-fp32")
    result["fp32 -> bf16"] = ckptlens_run(wide, out["bf16"], "native", "bfloat16")
    done("bf16")
    result["hf"] = (float("nan"), 0)
    if with_transformers:
        subprocess.run(["sync"], check=True)
        seconds, text = run_child(
            [sys.executable, "-c", TRANSFORMERS_CHILD, src, out["transformers"]]
        )
        result["hf"] = (seconds, int(text.strip().splitlines()[-1]))
        done("transformers")
    return result


def summary(result: dict) -> str:
    parts = [f"cp {result['copy']:.2f} s"]
    parts += [f"{k} {result[k]['seconds']:.2f} s" for k in (*CONVERSIONS, *CASTS)]
    return ", ".join([*parts, f"transformers {result['hf'][0]:.2f} s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=19)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--shard", default="500MB", help="source shard size")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="ckptlens-bench-")
    try:
        src = os.path.join(workdir, "hf")
        sizes = [str(args.layers), str(args.hidden), args.shard]
        run_child([sys.executable, "-c", BUILD_CHILD, ROOT, src, *sizes])
        size = directory_bytes(src)
        print(f"built {gib(size)} in {src} ({len(os.listdir(src))} files)")
        wide = os.path.join(workdir, "hf-fp32")
        ckptlens_run(src, wide, "llama", "float32")
        rounds = []
        for index in range(args.repeat):
            rounds.append(one_round(workdir, src, wide, not args.skip_transformers))
            print(f"round {index + 1}: " + summary(rounds[-1]), flush=True)
        report(size, rounds, directory_bytes(wide))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
