"""The project's own fuzzer: mutated configs and corrupted checkpoints, seeded and replayable.

Every mutant must end in one of two ways: the library accepts it (the mutation was harmless,
or it changed a value the domain allows), or it raises a ``LensError``. Anything else (another
exception, a run past the time limit) is an escape, reported with the seed that replays it.

The default suite runs a few hundred cases; ``python tests/fuzz.py CONFIGS CHECKPOINTS`` runs
more and prints the shares.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ckptlens import formats
from ckptlens.lenses.errors import LensError
from ckptlens.lenses.paths import same

CASE_SECONDS = 10


def nested(depth: int, leaf: Any = 1, as_dict: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"x": value} if as_dict else [value]
    return value


# ---------------------------------------------------------------- config mutations

NUMERIC_EXTREMES = (
    10**400,
    -(10**400),
    10**21,
    2**53 + 1,
    2**63,
    10**12,
    100_000,
    0,
    -1,
    1e308,
    -1e308,
    5e-324,
    math.nan,
    math.inf,
    -math.inf,
    0.5,
    True,
)
SHAPES = (None, "", "x" * 10_000, [], {}, [1, 2, 3], {"a": 1}, [None], "null")
COUNT_KEYS = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "num_local_experts",
    "num_experts_per_tok",
    "prediction_heads",
    "max_window_layers",
    "hidden_size",
    "intermediate_size",
    "head_dim",
)


def _paths(value: Any, at: tuple = ()) -> Iterator[tuple]:
    """Every key path of a JSON tree (list items included) down to 6 levels."""
    if len(at) >= 6:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*at, key)
            yield from _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*at, index)
            yield from _paths(item, (*at, index))


def _set(tree: Any, path: tuple, value: Any) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(tree: Any, path: tuple) -> None:
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def mutate_config(config: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three mutations: a numeric extreme, a deep value, a huge count, another type,
    a deleted, added or renamed key."""
    mutant = copy.deepcopy(config)
    for _ in range(rng.randint(1, 3)):
        paths = list(_paths(mutant))
        kind = rng.choice(["number", "number", "deep", "count", "shape", "delete", "add"])
        if kind == "count":
            _set(mutant, (rng.choice(COUNT_KEYS),), rng.choice([10**12, 10**21, 2**53 + 1, 0]))
            continue
        if kind == "add" or not paths:
            value = rng.choice([*NUMERIC_EXTREMES, *SHAPES, nested(rng.choice([150, 2000]))])
            mutant[rng.choice(["unknown_key", "rope_theta", "rope_scaling", "layer_types"])] = value
            continue
        path = rng.choice(paths)
        if kind == "delete":
            _delete(mutant, path)
        elif kind == "number":
            _set(mutant, path, rng.choice(NUMERIC_EXTREMES))
        elif kind == "deep":
            _set(mutant, path, nested(rng.choice([99, 150, 600, 3000]), as_dict=rng.random() < 0.5))
        else:
            _set(mutant, path, rng.choice(SHAPES))
    return mutant


def config_seeds() -> list[tuple[str, dict[str, Any]]]:
    """Every supported format's real configs, and a tiny valid config of every format."""
    from conftest import load_real_config, real_config_files
    from hardening_support import tiny_source

    seeds = [(name, tiny_source(name)) for name in formats.names()]
    for name in real_config_files():
        config = load_real_config(name)
        try:
            formats.detect(config)
        except LensError:
            continue  # an unsupported family: detect's refusal is tested elsewhere
        seeds.append((name, config))
    return seeds


def exercise_config(config: Any) -> None:
    """What a user does with a config: detect, get, put back, create, explain."""
    fmt = formats.detect(config)
    view = fmt.lens.get(config)
    if not same(fmt.lens.put(view, config), config):  # an accepted mutant keeps GetPut
        raise AssertionError("put(get(config), config) differs from config")
    fmt.lens.create(view)
    str(fmt.lens.explain(config))


# ---------------------------------------------------------------- checkpoint corruptions


def _header(path: Path) -> tuple[dict[str, Any], bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write_header(path: Path, header: Any, data: bytes, raw_text: str | None = None) -> None:
    text = (raw_text if raw_text is not None else json.dumps(header)).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def _shard(directory: Path, rng: random.Random) -> Path:
    return rng.choice(sorted(directory.glob("*.safetensors")))


def _edit_entry(directory: Path, rng: random.Random, edit: Callable[[dict], None]) -> None:
    shard = _shard(directory, rng)
    header, data = _header(shard)
    name = rng.choice([k for k in header if k != "__metadata__"])
    edit(header[name])
    _write_header(shard, header, data)


def _edit_config(directory: Path, edit: Callable[[dict], Any]) -> None:
    path = directory / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(edit(config)))


def _write_mutant(directory: Path, rng: random.Random) -> None:
    """A mutated config.json; mutants too deep for ``json.dumps`` are drawn again."""
    path = directory / "config.json"
    config = json.loads(path.read_text())
    while True:
        try:
            path.write_text(json.dumps(mutate_config(config, rng)))
            return
        except (RecursionError, ValueError):
            continue


def _index(directory: Path) -> Path:
    return directory / "model.safetensors.index.json"


CORRUPTIONS: dict[str, Callable[[Path, random.Random], None]] = {
    "truncate a shard": lambda d, r: (
        lambda s: s.write_bytes(s.read_bytes()[: r.randint(0, s.stat().st_size - 1)])
    )(_shard(d, r)),
    "trailing bytes": lambda d, r: (lambda s: s.write_bytes(s.read_bytes() + b"\0" * 7))(
        _shard(d, r)
    ),
    "header length huge": lambda d, r: (
        lambda s: s.write_bytes(struct.pack("<Q", 2**63 + r.randint(0, 9)) + s.read_bytes()[8:])
    )(_shard(d, r)),
    "header not JSON": lambda d, r: (
        lambda s: _write_header(s, None, _header(s)[1], "{not json" + " " * r.randint(0, 9))
    )(_shard(d, r)),
    "header a list": lambda d, r: (lambda s: _write_header(s, [1, 2], _header(s)[1]))(_shard(d, r)),
    "header nested 100000 deep": lambda d, r: (
        lambda s: _write_header(s, None, _header(s)[1], "[" * 100_000 + "]" * 100_000)
    )(_shard(d, r)),
    "header with a 5000-digit offset": lambda d, r: (
        lambda s: _write_header(
            s,
            None,
            _header(s)[1],
            json.dumps(_header(s)[0]).replace("[0,", "[" + "9" * 5000 + ",", 1),
        )
    )(_shard(d, r)),
    "flip header bytes": lambda d, r: (
        lambda s, raw: s.write_bytes(
            bytes(
                b ^ (1 << r.randint(0, 7)) if 8 <= i < 8 + 200 and r.random() < 0.05 else b
                for i, b in enumerate(raw)
            )
        )
    )(*(lambda s: (s, s.read_bytes()))(_shard(d, r))),
    "bogus dtype": lambda d, r: _edit_entry(d, r, lambda e: e.update(dtype=r.choice(["Q4", 7]))),
    "bad shape": lambda d, r: _edit_entry(
        d, r, lambda e: e.update(shape=r.choice([[-1], [10**30], "x", [1.5], [2**40, 2**40]]))
    ),
    "bad offsets": lambda d, r: _edit_entry(
        d,
        r,
        lambda e: e.update(
            data_offsets=r.choice([[5, 2], [0, 10**20], [-4, 4], [0], "x", [10**400, 10**401]])
        ),
    ),
    "overlapping offsets": lambda d, r: _edit_entry(
        d, r, lambda e: e.update(data_offsets=[0, e["data_offsets"][1] - e["data_offsets"][0]])
    ),
    "renamed tensor": lambda d, r: (
        lambda s, hd: _write_header(
            s,
            {
                ("model.extra" if k != "__metadata__" and r.random() < 0.3 else k): v
                for k, v in hd[0].items()
            },
            hd[1],
        )
    )(*(lambda s: (s, _header(s)))(_shard(d, r))),
    "bad metadata": lambda d, r: (
        lambda s, hd: _write_header(
            s, {**hd[0], "__metadata__": r.choice([[1], {"a": 1}, "x"])}, hd[1]
        )
    )(*(lambda s: (s, _header(s)))(_shard(d, r))),
    "shard deleted": lambda d, r: _shard(d, r).unlink(),
    "shard is a directory": lambda d, r: (lambda s: (s.unlink(), s.mkdir()))(_shard(d, r)),
    "shard is a named pipe": lambda d, r: (lambda s: (s.unlink(), os.mkfifo(s)))(_shard(d, r)),
    "shard is a looping link": lambda d, r: (lambda s: (s.unlink(), os.symlink(s.name, s)))(
        _shard(d, r)
    ),
    "extra shard not indexed": lambda d, r: shutil.copy(_shard(d, r), d / "stray.safetensors"),
    "index not JSON": lambda d, r: _index(d).write_text("{"),
    "index deep": lambda d, r: _index(d).write_text("[" * 100_000 + "]" * 100_000),
    "index weight_map bad": lambda d, r: _index(d).write_text(
        json.dumps({"weight_map": r.choice([[1], {"a": 1}, None, {"x": "../../etc/passwd"}])})
    ),
    "index drops a tensor": lambda d, r: (
        lambda doc: _index(d).write_text(
            json.dumps({**doc, "weight_map": dict(list(doc["weight_map"].items())[1:])})
        )
    )(json.loads(_index(d).read_text())),
    "index deleted": lambda d, r: _index(d).unlink(),
    "config deleted": lambda d, r: (d / "config.json").unlink(),
    "config not JSON": lambda d, r: (d / "config.json").write_text("{"),
    "config a list": lambda d, r: (d / "config.json").write_text("[]"),
    "config is a named pipe": lambda d, r: (
        (d / "config.json").unlink(),
        os.mkfifo(d / "config.json"),
    ),
    "config deep": lambda d, r: (d / "config.json").write_text("[" * 100_000 + "]" * 100_000),
    "config huge layers": lambda d, r: _edit_config(
        d, lambda c: {**c, "num_hidden_layers": r.choice([10**12, 10**21, 9000, 100_000])}
    ),
    "config mutated": lambda d, r: _write_mutant(d, r),
    "native model a list": lambda d, r: _edit_config(d, lambda c: {**c, "model": [1]}),
    "native blocks huge": lambda d, r: _edit_config(
        d, lambda c: (c, _set(c, ("model", "decoder", "num_blocks"), 10**12))[0]
    ),
    "native hf_source bad": lambda d, r: _edit_config(d, lambda c: {**c, "hf_source": [1]}),
    "pickles only": lambda d, r: [
        (p.unlink(), (d / "pytorch_model.bin").write_bytes(b"x")) for p in d.glob("*safetensors*")
    ],
}


def checkpoint_seeds(root: Path) -> dict[str, tuple[Path, str]]:
    """An HF checkpoint in one file, one in shards with an index, and a native one."""
    from ckptlens.demo import tiny_llama, write_hf_checkpoint
    from ckptlens.weights import convert

    write_hf_checkpoint(str(root / "single"), tiny_llama())
    write_hf_checkpoint(str(root / "sharded"), tiny_llama(), 30_000)
    convert(root / "sharded", root / "native", to="native", progress=False, max_shard_size=30_000)
    return {
        "single": (root / "single", "native"),
        "sharded": (root / "sharded", "native"),
        "native": (root / "native", "llama"),
    }


def applicable(corruption: str, seed: str) -> bool:
    if corruption.startswith("index") or corruption == "extra shard not indexed":
        return seed != "single"
    if corruption.startswith("native"):
        return seed == "native"
    return True


def exercise_checkpoint(directory: Path, target: str, out: Path) -> None:
    from ckptlens.weights import convert

    convert(directory, out, to=target, progress=False)


# ---------------------------------------------------------------- the harness


class Timeout(BaseException):
    """A case ran past ``CASE_SECONDS``."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: Any) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(run: Callable[[], None]) -> str:
    """``accepted``, ``lens error``, or the escape (exception type or ``timeout``)."""
    try:
        with time_limit(CASE_SECONDS):
            run()
    except LensError:
        return "lens error"
    except Timeout:
        return "timeout"
    except Exception as error:  # an escape: what the fuzzer is for
        return f"{type(error).__name__}: {str(error)[:200]}\n{traceback.format_exc(limit=-3)}"
    return "accepted"


def fuzz_configs(count: int, seed: int = 0) -> dict[str, list[str]]:
    """Outcomes of ``count`` mutants spread over every seed config."""
    seeds = config_seeds()
    results: dict[str, list[str]] = {}
    for case in range(count):
        rng = random.Random(seed * 1_000_003 + case)
        name, config = seeds[case % len(seeds)]
        mutant = mutate_config(config, rng)
        result = outcome(lambda m=mutant: exercise_config(m))
        results.setdefault(result, []).append(f"{name} seed {seed} case {case}")
    return results


def fuzz_checkpoints(root: Path, count: int, seed: int = 0) -> dict[str, list[str]]:
    """Outcomes of ``count`` corrupted checkpoints (every corruption of every seed first)."""
    pristine = checkpoint_seeds(root / "pristine")
    cases = [(c, s) for c in CORRUPTIONS for s in pristine if applicable(c, s)]
    results: dict[str, list[str]] = {}
    for case in range(count):
        corruption, seed_name = cases[case % len(cases)]
        rng = random.Random(seed * 1_000_003 + case)
        work = root / f"case-{case}"
        source, target = pristine[seed_name]
        shutil.copytree(source, work / "src", symlinks=True)
        corrupt = CORRUPTIONS[corruption]
        outcome_of = outcome(lambda c=corrupt, w=work, r=rng: c(w / "src", r))
        if outcome_of != "accepted":
            raise RuntimeError(f"corruption {corruption!r} failed to apply: {outcome_of}")
        result = outcome(lambda w=work, t=target: exercise_checkpoint(w / "src", t, w / "dst"))
        leftovers = sorted(set(os.listdir(work)) - {"src", "dst"})
        if (result != "accepted" and (work / "dst").exists()) or leftovers:
            result = f"left {leftovers or ['dst']} after {result}"
        results.setdefault(result, []).append(f"{corruption} on {seed_name}, case {case}")
        shutil.rmtree(work, ignore_errors=True)
    return results


def summary(results: dict[str, list[str]]) -> str:
    total = sum(map(len, results.values()))
    clean = len(results.get("lens error", []))
    accepted = len(results.get("accepted", []))
    escapes = total - clean - accepted
    return (
        f"{total} cases: {clean} LensError ({clean / total:.1%}), {accepted} accepted, "
        f"{escapes} escapes"
    )


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    configs, checkpoints = (int(a) for a in sys.argv[1:3])
    started = time.perf_counter()
    config_results = fuzz_configs(configs, seed=1)
    print("configs:", summary(config_results), f"{time.perf_counter() - started:.0f}s")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        checkpoint_results = fuzz_checkpoints(Path(tmp), checkpoints, seed=1)
    print("checkpoints:", summary(checkpoint_results), f"{time.perf_counter() - started:.0f}s")
    for results in (config_results, checkpoint_results):
        for result, cases in results.items():
            if result not in ("lens error", "accepted"):
                print(f"ESCAPE x{len(cases)} ({cases[0]}): {result}")
