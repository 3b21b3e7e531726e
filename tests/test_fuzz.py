"""The project's fuzzer (``tests/fuzz.py``) in the default suite: mutated configs of every
format's real configs (numeric extremes, deep nesting, huge counts, other types, keys deleted
and added) and corrupted checkpoints (HF single-file, sharded, native). Every case must be
accepted or give a ``LensError``; a run never leaves anything beside its destination.

Sizes: a few hundred cases here; more under ``CI=true``; ``python tests/fuzz.py N M`` for a
large run."""

from __future__ import annotations

import os

import fuzz

CI = bool(os.environ.get("CI"))
CONFIG_CASES = 3000 if CI else 600
CHECKPOINT_CASES = 300 if CI else 120


def escapes(results: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in results.items() if k not in ("lens error", "accepted")}


def test_mutated_configs_give_lens_errors_and_nothing_else():
    results = fuzz.fuzz_configs(CONFIG_CASES)
    assert escapes(results) == {}
    assert len(results["lens error"]) > CONFIG_CASES // 2  # the mutations do bite


def test_every_format_and_real_config_is_fuzzed():
    names = {name for name, _ in fuzz.config_seeds()}
    from ckptlens import formats

    assert set(formats.names()) <= names
    assert "meta-llama__Meta-Llama-3.1-8B.json" in names
    assert "mistralai__Mixtral-8x22B-Instruct-v0.1.json" in names


def test_corrupted_checkpoints_give_lens_errors_and_leave_nothing(tmp_path):
    results = fuzz.fuzz_checkpoints(tmp_path, CHECKPOINT_CASES)
    assert escapes(results) == {}
    accepted = {case.split(" on ")[0] for case in results.get("accepted", [])}
    # accepted only where the corruption can be harmless (a stray shard is left behind and
    # reported; an edit that happened to change nothing)
    assert accepted <= {"extra shard not indexed", "overlapping offsets", "renamed tensor",
                        "flip header bytes", "config mutated"}  # fmt: skip


def test_every_corruption_runs_on_every_seed_it_applies_to(tmp_path):
    applicable = sum(
        fuzz.applicable(c, s) for c in fuzz.CORRUPTIONS for s in ("single", "sharded", "native")
    )
    assert applicable <= CHECKPOINT_CASES  # the default run covers each pair at least once
