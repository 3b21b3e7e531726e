"""Gemma 2 end to end against transformers on the CPU: a tiny ``Gemma2ForCausalLM`` (one
sliding and one global layer, a sequence longer than the window) converted to native computes
transformers' logits; HF -> native -> HF is bit-identical; and each Gemma feature, dropped from
the native config, moves the logits far outside the tolerance."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import Gemma2Config

from ckptlens.native.checkpoint import CONFIG_FILE
from ckptlens.verify import VerifyReport, verify
from ckptlens.weights.convert import convert
from tests.test_verify import save_tiny_model

SEQ_LEN = 24  # longer than the window: the sliding layer's mask matters


def gemma2_config() -> Gemma2Config:
    # Small soft-caps so that both bite on these logits; layer 0 slides, layer 1 is global.
    return Gemma2Config(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        query_pre_attn_scalar=13,
        sliding_window=5,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=4.0,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="module")
def gemma2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gemma2")
    save_tiny_model(gemma2_config(), root / "hf")
    convert(root / "hf", root / "native", to="native", progress=False)
    return root / "hf", root / "native"


def check(hf_dir: Path, native_dir: Path) -> VerifyReport:
    return verify(hf_dir, native_dir, seq_len=SEQ_LEN, batch=2, seed=3)


def test_gemma2_reference_matches_transformers(gemma2: tuple[Path, Path]) -> None:
    report = check(*gemma2)
    print(f"gemma2: {report.summary()}")  # the measured difference, shown with -s
    assert report.passed, report.summary()
    assert report.logit_scale > 1.0


def test_gemma2_round_trip_is_bit_identical(gemma2: tuple[Path, Path], tmp_path: Path) -> None:
    hf_dir, native_dir = gemma2
    convert(native_dir, tmp_path / "back", to="gemma2", progress=False)
    before = load_file(hf_dir / "model.safetensors")
    after = load_file(tmp_path / "back" / "model.safetensors")
    assert sorted(before) == sorted(after)
    for name, tensor in before.items():
        assert after[name].dtype == tensor.dtype, name
        assert torch.equal(after[name].view(torch.uint8), tensor.view(torch.uint8)), name


def _blocks(config: dict[str, Any]) -> list[dict[str, Any]]:
    decoder = _model(config)["decoder"]
    return list(decoder["blocks"].values()) if "blocks" in decoder else [decoder["block"]]


def _model(config: dict[str, Any]) -> dict[str, Any]:
    return config.get("model", config)  # type: ignore[no-any-return]


def plain_norms(config: dict[str, Any]) -> None:
    for block in _blocks(config):
        block["normalization"]["unit_offset"] = False
    _model(config)["head"]["final_norm"]["unit_offset"] = False


def no_attention_softcap(config: dict[str, Any]) -> None:
    for block in _blocks(config):
        block["mixer"]["logit_softcap"] = None


def no_final_softcap(config: dict[str, Any]) -> None:
    _model(config)["head"]["logit_softcap"] = None


def unscaled_embeddings(config: dict[str, Any]) -> None:
    _model(config)["scale_embeddings"] = False


def head_size_scale(config: dict[str, Any]) -> None:
    for block in _blocks(config):
        block["mixer"]["softmax_scale"] = None


def no_window(config: dict[str, Any]) -> None:
    for block in _blocks(config):
        block["mixer"]["window"] = None


SABOTAGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "plain-weight-norms": plain_norms,
    "no-attention-softcap": no_attention_softcap,
    "no-final-softcap": no_final_softcap,
    "unscaled-embeddings": unscaled_embeddings,
    "head-size-softmax-scale": head_size_scale,
    "no-sliding-window": no_window,
}


@pytest.mark.parametrize("sabotage", sorted(SABOTAGES))
def test_gemma2_sabotaged_configs_fail(
    sabotage: str, gemma2: tuple[Path, Path], tmp_path: Path
) -> None:
    hf_dir, native_dir = gemma2
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    config = json.loads((broken / CONFIG_FILE).read_text())
    SABOTAGES[sabotage](config)
    (broken / CONFIG_FILE).write_text(json.dumps(config))
    report = check(hf_dir, broken)
    print(f"{sabotage}: {report.summary()}")
    assert not report.passed
    assert report.max_abs_diff > 100 * report.allowed  # far outside the tolerance
