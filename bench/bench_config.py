"""Config lens cost, import time and law-suite time, against baselines measured in the same run.

    python bench/bench_config.py [CONFIG.json ...]

Baselines: ``json.loads`` + ``json.dumps`` of the same file (the floor for touching a config),
and transformers' ``LlamaConfig.from_dict(d).to_dict()`` (what loading a config in the peer
costs). Import times are measured in fresh interpreters.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = (
    HERE.parent / "tests" / "fixtures" / "real-configs" / "meta-llama__Meta-Llama-3.1-8B.json"
)


def per_call(function: Callable[[], object], repeat: int = 7, number: int = 200) -> float:
    """Median seconds per call over ``repeat`` runs of ``number`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - started) / number)
    return statistics.median(times)


def import_seconds(statement: str, repeat: int = 5) -> float:
    """Median wall time of a fresh interpreter running ``statement``, minus a bare one."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    bare = statistics.median(run("pass") for _ in range(repeat))
    return statistics.median(run(statement) for _ in range(repeat)) - bare


def main(paths: list[str]) -> None:
    import copy
    import warnings

    from transformers import LlamaConfig

    from ckptlens import formats

    warnings.simplefilter("ignore")
    for path in paths or [str(DEFAULT_CONFIG)]:
        text = Path(path).read_text()
        source = json.loads(text)
        fmt = formats.detect(source)
        view = fmt.lens.get(source)
        floor = per_call(lambda: json.dumps(json.loads(text)))  # noqa: B023
        get = per_call(lambda: fmt.lens.get(source))  # noqa: B023
        put = per_call(lambda: fmt.lens.put(view, source))  # noqa: B023
        peer = per_call(
            lambda: LlamaConfig.from_dict(copy.deepcopy(source)).to_dict(),  # noqa: B023
            number=50,
        )
        print(f"{Path(path).name} ({fmt.name})")
        print(f"  json loads+dumps        {floor * 1e6:9.1f} us")
        print(f"  lens.get                {get * 1e6:9.1f} us")
        print(f"  lens.put                {put * 1e6:9.1f} us")
        both = get + put
        print(f"  get+put                 {both * 1e6:9.1f} us  = {both / floor:6.1f}x json")
        print(f"  transformers from_dict+to_dict {peer * 1e6:9.1f} us = {peer / both:.1f}x get+put")

    print("imports (fresh interpreter, minus a bare one)")
    ours = import_seconds("import ckptlens.formats")
    theirs = import_seconds("import transformers; transformers.LlamaConfig")
    print(f"  import ckptlens.formats       {ours * 1e3:7.0f} ms")
    print(f"  import transformers.LlamaConfig {theirs * 1e3:7.0f} ms  ({theirs / ours:.1f}x ours)")

    from ckptlens import laws

    started = time.perf_counter()
    report = laws.check(formats.get("llama"), profile="ci")
    seconds = time.perf_counter() - started
    print(f"law suite, llama, ci profile: {seconds:.1f} s, all pass: {report.ok}")
    print(f"  examples per law: {min(r.examples for r in report.results)} at least")


if __name__ == "__main__":
    main(sys.argv[1:])
