"""Phi-3: the reconstructed published configs, what transformers 5.24 makes of them, refusals,
conversion between formats, and a tiny real checkpoint through ``convert`` and ``verify``.

The configs in ``tests/fixtures/reconstructed-configs`` are written from the published key sets
(not downloaded): key names, sizes, spellings (``su``, ``auto_map``, Phi-4-mini's remote-code
keys) are those of the published files; the LongRoPE factor values are stand-ins of the right
length.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pytest
import torch

from ckptlens import formats
from ckptlens.lenses import LensError, SourceError, same
from ckptlens.native.config import DefaultRotary, LongRopeRotary
from ckptlens.verify import verify
from ckptlens.weights import convert

FIXTURES = Path(__file__).parent / "fixtures" / "reconstructed-configs"
NAMES = sorted(path.name for path in FIXTURES.glob("*.json"))
PHI3 = formats.get("phi3")
SU = {"microsoft__Phi-3-mini-128k-instruct.json", "microsoft__Phi-3-medium-128k-instruct.json"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def canonical(source: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PHI3.canonical(source)


def rotary(source: dict):
    return PHI3.lens.get(source).decoder.block.mixer.rotary


@pytest.mark.parametrize("name", NAMES)
def test_reconstructed_configs_read_and_put_back_exactly(name: str) -> None:
    source = load(name)
    assert formats.detect(source) is PHI3
    assert PHI3.lens.check_source(source) == []
    view = PHI3.lens.get(source)
    assert same(PHI3.lens.put(view, source), source)
    assert same(source, load(name))


@pytest.mark.parametrize("name", sorted(set(NAMES) - SU))
def test_transformers_reads_them_the_same(name: str) -> None:
    source = load(name)
    assert PHI3.lens.get(canonical(source)) == PHI3.lens.get(source)


@pytest.mark.parametrize("name", sorted(SU))
def test_su_reads_as_longrope(name: str) -> None:
    """transformers 5.24 renames ``su`` to ``longrope`` only after it has standardised the
    rope dict, so it refuses a v4 ``su`` dict without its own original context; the meaning is
    not in doubt (``Phi3Config`` renames it), so the view is LongRoPE, and equals the view of
    the same config spelled ``longrope`` (which transformers reads)."""
    source = load(name)
    renamed = copy.deepcopy(source)
    renamed["rope_scaling"]["type"] = "longrope"
    assert rotary(source) == rotary(renamed)
    assert PHI3.lens.get(canonical(renamed)) == PHI3.lens.get(source)
    with pytest.raises(KeyError, match="original_max_position_embeddings"):
        canonical(source)


def test_published_facts_in_the_view() -> None:
    mini = PHI3.lens.get(load("microsoft__Phi-3-mini-4k-instruct.json"))
    attention = mini.decoder.block.mixer
    assert attention.rotary == DefaultRotary(10000.0)
    assert (attention.heads, attention.kv_heads, attention.head_size) == (32, 32, 96)
    assert attention.window == 2047
    phi4 = PHI3.lens.get(load("microsoft__Phi-4-mini-instruct.json"))
    attention = phi4.decoder.block.mixer
    assert (attention.heads, attention.kv_heads, attention.head_size) == (24, 8, 128)
    assert isinstance(attention.rotary, LongRopeRotary)
    assert attention.rotary.fraction == 0.75 and len(attention.rotary.short_factor) == 48
    assert attention.rotary.factor == 32.0 and attention.rotary.original_context_length == 4096
    assert phi4.tied_embeddings and phi4.metadata.eos_token_id == 199999
    medium = PHI3.lens.get(load("microsoft__Phi-3-medium-128k-instruct.json"))
    assert medium.decoder.block.mixer.kv_heads == 10


def test_v5_spelling_round_trips_and_means_the_same() -> None:
    source = load("microsoft__Phi-4-mini-instruct.json")
    v5 = canonical(source)
    assert v5["rope_parameters"]["partial_rotary_factor"] == 0.75
    assert same(PHI3.lens.put(PHI3.lens.get(v5), v5), v5)
    created = PHI3.lens.create(PHI3.lens.get(source), generation="v5")
    assert PHI3.lens.get(canonical(created)) == PHI3.lens.get(source)


def _problems(source: dict) -> set[str]:
    with pytest.raises(LensError) as raised:
        PHI3.lens.get(source)
    return {violation.path for violation in raised.value.violations}


def test_bad_configs_are_refused_naming_each_problem() -> None:
    source = load("microsoft__Phi-4-mini-instruct.json")
    bad = copy.deepcopy(source)
    bad["rope_scaling"]["long_factor"] = bad["rope_scaling"]["long_factor"][:-1]
    bad["attention_bias"] = True
    bad["head_dim"] = 128
    bad["partial_rotary_factor"] = 1.5
    problems = _problems(bad)
    assert {"$.rope_scaling.long_factor", "$.attention_bias", "$.head_dim"} <= problems
    assert "$.partial_rotary_factor" in problems
    assert same(source, load("microsoft__Phi-4-mini-instruct.json"))
    # factors of the wrong length for the rotated features of a head
    short = copy.deepcopy(source)
    for key in ("short_factor", "long_factor"):
        short["rope_scaling"][key] = short["rope_scaling"][key][:32]
    with pytest.raises(SourceError):
        PHI3.lens.get(short)
    # flat and nested partial_rotary_factor that disagree (v5)
    v5 = canonical(source)
    v5["partial_rotary_factor"] = 0.5
    assert "$.partial_rotary_factor" in _problems(v5)


def test_llama_converts_into_phi3_and_back() -> None:
    llama = formats.get("llama")
    view = llama.lens.get({"model_type": "llama", "rms_norm_eps": 1e-5, "head_dim": 128})
    assert PHI3.lens.check_view(view) == []
    assert llama.lens.get(llama.lens.create(PHI3.lens.get(PHI3.lens.create(view)))) == view


def test_longrope_and_partial_rotary_do_not_fit_llama() -> None:
    view = PHI3.lens.get(load("microsoft__Phi-4-mini-instruct.json"))
    paths = {v.path for v in formats.get("llama").lens.check_view(view)}
    assert any("rotary" in path for path in paths)
    assert "$.decoder.block.mixer.window" in paths


def test_describe_and_explain_name_the_phi3_keys() -> None:
    table = str(PHI3.lens.describe())
    for key in ("short_factor", "partial_rotary_factor", "original_max_position_embeddings"):
        assert key in table
    explained = str(PHI3.lens.explain(load("microsoft__Phi-3.5-mini-instruct.json")))
    assert "long_factor" in explained


# ---------------------------------------------------------------- a tiny real checkpoint


def tiny_phi3(directory: Path) -> Path:
    from transformers import Phi3Config, Phi3ForCausalLM

    config = Phi3Config(
        vocab_size=61,
        hidden_size=64,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32,
        original_max_position_embeddings=8,
        rope_scaling={
            "type": "longrope",
            "short_factor": [1.0, 1.2, 1.7, 2.5],
            "long_factor": [1.4, 3.0, 6.0, 9.0],
        },
        partial_rotary_factor=0.5,
        sliding_window=10,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    model.save_pretrained(directory)
    return directory


def _tensors(directory: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def test_tiny_checkpoint_round_trip_and_verify(tmp_path: Path) -> None:
    source = tiny_phi3(tmp_path / "hf")
    convert(source, tmp_path / "native", to="native", progress=False)
    convert(tmp_path / "native", tmp_path / "back", to="phi3", progress=False)
    before, after = _tensors(source), _tensors(tmp_path / "back")
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[name], after[name]) for name in before)
    # 20 tokens: longer than the original context of 8, so the long factors are in use
    report = verify(source, tmp_path / "native", seq_len=20, batch=2, seed=1)
    assert report.passed, report
    assert report.max_abs_diff < 1e-4
