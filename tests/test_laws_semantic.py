"""The semantic laws: ModelEquiv, MetadataEquiv, the weight round trip, and the pieces they
rest on (activation table, shard packing at the exact boundary)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ckptlens import formats, laws
from ckptlens.formats.hf import ACTIVATION
from ckptlens.laws.model_equiv import activation_problems, activation_tables
from ckptlens.lenses import Enum
from ckptlens.weights.writer import OutputTensor, assign_shards

RUNNABLE = ("llama", "mistral", "qwen2", "mixtral", "qwen3", "olmo2")
REMOTE = ("mtp_llama", "diffusion_llama", "dream")


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_activation_spelling_matches_transformers(name: str) -> None:
    lens = formats.get(name).lens
    tables = list(activation_tables(lens))
    assert tables, "the walk found no activation table"
    assert activation_problems(lens) == []


def test_an_alias_read_as_its_neighbour_is_reported() -> None:
    broken = Enum(dict(ACTIVATION.names), aliases={**ACTIVATION.aliases, "gelu_new": "gelu"})
    llama = formats.get("llama")
    lens = attrs.evolve(llama, lens=llama.lens).lens
    problems = [p for p in _problems_with(lens, broken) if "gelu_new" in p]
    assert problems and "differs from transformers" in problems[0]


def _problems_with(lens, table: Enum) -> list[str]:
    import ckptlens.laws.model_equiv as equiv

    original = equiv.activation_tables
    equiv.activation_tables = lambda _: iter([table])
    try:
        return equiv.activation_problems(lens)
    finally:
        equiv.activation_tables = original


@pytest.mark.parametrize("name", REMOTE)
def test_remote_code_formats_say_model_equiv_did_not_run(name: str) -> None:
    report = laws.check(formats.get(name), laws=["model_equiv"], profile="dev")
    (result,) = report.results
    assert not result.passed and result.not_run.startswith("no runnable model code")
    assert "not run: no runnable model code" in str(report)
    assert report.ok and report.not_run() == ["model_equiv"]


def test_the_plugin_makes_no_item_for_a_law_that_cannot_run() -> None:
    """No skipped items: a law without runnable model code is absent from the parametrization
    (the report says why), and asking for it by name is refused."""
    from ckptlens.laws.plugin import law_tests

    remote = formats.get(REMOTE[0])

    def laws_of(test: Any) -> list[str]:
        (mark,) = [mark for mark in test.pytestmark if mark.name == "parametrize"]
        return mark.args[1]

    assert "model_equiv" not in laws_of(law_tests(remote)) and "get_put" in laws_of(
        law_tests(remote)
    )
    assert "model_equiv" in laws_of(law_tests(formats.get("llama")))
    with pytest.raises(ValueError, match="model_equiv: no runnable model code"):
        law_tests(remote, laws=["model_equiv"])


def test_shard_packing_fills_max_shard_size_exactly_like_transformers() -> None:
    """transformers (huggingface_hub) starts a new shard only when a tensor would exceed the
    limit: tensors that fill it exactly share one shard."""
    import torch
    from huggingface_hub import split_torch_state_dict_into_shards

    tensors = {f"t{i}": torch.zeros(25, dtype=torch.uint8) for i in range(4)}
    theirs = split_torch_state_dict_into_shards(tensors, max_shard_size=100)
    assert len(theirs.filename_to_tensors) == 1  # the oracle's rule at the boundary
    groups = [[OutputTensor(name, "U8", (25,))] for name in tensors]
    assert len(assign_shards(groups, 100)) == 1
    assert len(assign_shards(groups, 99)) == 2
