"""Config lens cost, import time and law-suite time, against baselines measured in the same run.

    python bench/bench_config.py [--laws PROFILE] [CONFIG.json ...]

For every format, on a config of that format (the real published ones in
``tests/fixtures/real-configs``; the remote-code formats, which transformers cannot load, on
the configs their own code saves, from ``tests/test_formats_remote_code.py``), the cost of
``lens.get`` + ``lens.put`` against two baselines: ``json.loads`` + ``json.dumps`` of the same
file (the floor for touching a config) and the transformers config class's
``from_dict(d).to_dict()`` (the format's peer; for remote-code formats the class whose keys
they extend). Import times are measured in fresh interpreters; ``--laws`` times the law suite
of every format in that hypothesis profile (wall and CPU time: on a shared machine the CPU time
is the steadier of the two).
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
REAL = HERE.parent / "tests" / "fixtures" / "real-configs"
REAL_CONFIGS = {
    "llama": REAL / "meta-llama__Meta-Llama-3.1-8B.json",
    "mistral": REAL / "mistralai__Mistral-7B-v0.1.json",
    "qwen2": REAL / "Qwen__Qwen2.5-0.5B.json",
    "mixtral": REAL / "mistralai__Mixtral-8x7B-v0.1.json",
}
BASE_PEERS = {"mtp_llama": "LlamaConfig", "diffusion_llama": "LlamaConfig", "dream": "Qwen2Config"}
"""The transformers class a remote-code format's config class extends."""


def default_configs() -> list[tuple[str, str]]:
    """(label, JSON text) of one config per format."""
    import importlib.util

    configs = [(path.name, path.read_text()) for path in REAL_CONFIGS.values()]
    spec = importlib.util.spec_from_file_location(
        "remote_samples", HERE.parent / "tests" / "test_formats_remote_code.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, sample in module.SAMPLES.items():
        configs.append((f"{name} (saved by its remote code)", json.dumps(sample)))
    return configs


def per_call(function: Callable[[], object], repeat: int = 7, number: int = 200) -> float:
    """Median CPU seconds per call over ``repeat`` runs of ``number`` calls (CPU time, not
    wall: on a shared machine other processes' load would otherwise land in the numbers)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(number):
            function()
        times.append((time.process_time() - started) / number)
    return statistics.median(times)


def import_seconds(statement: str, repeat: int = 5) -> float:
    """Median wall time of a fresh interpreter running ``statement``, minus a bare one."""

    def run(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    bare = statistics.median(run("pass") for _ in range(repeat))
    return statistics.median(run(statement) for _ in range(repeat)) - bare


def main(argv: list[str]) -> None:
    import copy
    import warnings

    import transformers

    from ckptlens import formats

    laws_profile = None
    if argv[:1] == ["--laws"]:
        laws_profile, argv = argv[1], argv[2:]
    warnings.simplefilter("ignore")
    configs = [(Path(p).name, Path(p).read_text()) for p in argv] or default_configs()
    ratios = {}
    for label, text in configs:
        source = json.loads(text)
        fmt = formats.detect(source)
        peer = getattr(transformers, fmt.peer or BASE_PEERS[fmt.name])
        view = fmt.lens.get(source)
        floor = per_call(lambda: json.dumps(json.loads(text)))  # noqa: B023
        get = per_call(lambda: fmt.lens.get(source))  # noqa: B023
        put = per_call(lambda: fmt.lens.put(view, source))  # noqa: B023
        theirs = per_call(
            lambda: peer.from_dict(copy.deepcopy(source)).to_dict(),  # noqa: B023
            number=50,
        )
        both = get + put
        ratios[fmt.name] = both / theirs
        print(f"{label} ({fmt.name})")
        print(f"  json loads+dumps        {floor * 1e6:9.1f} us")
        print(f"  lens.get                {get * 1e6:9.1f} us")
        print(f"  lens.put                {put * 1e6:9.1f} us")
        print(f"  get+put                 {both * 1e6:9.1f} us  = {both / floor:6.1f}x json")
        print(
            f"  {peer.__name__}.from_dict+to_dict {theirs * 1e6:9.1f} us;"
            f" get+put = {both / theirs:.2f}x it (target <= 0.1x)"
        )
    print(
        "get+put / transformers, per format: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    )

    print("imports (fresh interpreter, minus a bare one)")
    ours = import_seconds("import ckptlens.formats")
    theirs = import_seconds("import transformers; transformers.LlamaConfig")
    print(f"  import ckptlens.formats       {ours * 1e3:7.0f} ms")
    print(f"  import transformers.LlamaConfig {theirs * 1e3:7.0f} ms  ({theirs / ours:.1f}x ours)")
    if laws_profile:
        law_suite(laws_profile)


def law_suite(profile: str) -> None:
    """The whole law suite of every format, timed one format at a time."""
    import transformers

    from ckptlens import formats, laws

    # The peer laws import transformers' config classes: not a cost of the first format's laws.
    assert transformers.LlamaConfig is not None
    for name in formats.names():
        started, cpu = time.perf_counter(), time.process_time()
        report = laws.check(formats.get(name), profile=profile)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        fewest = min(r.examples for r in report.results)
        print(
            f"law suite, {name}, {profile} profile: {seconds:.1f} s wall, {cpu:.1f} s CPU,"
            f" all pass: {report.ok}, at least {fewest} examples per law",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
