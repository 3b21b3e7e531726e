"""Tiny real transformers models: HF -> native -> HF is bit-identical and loads to equal logits."""

from __future__ import annotations

import json
import os

import pytest
import torch

from ckptlens.formats.hf_weights import FUSED
from ckptlens.weights import convert
from ckptlens.weights.convert import convert_between
from test_weights_support import (
    build_model,
    hf_side,
    load_tensors,
    logits,
    native_model,
    native_side,
    read_config,
    save,
)

CASES = {
    "llama": ("llama", {}),
    "llama_tied": ("llama", {"tie_word_embeddings": True}),
    "llama_biases": ("llama", {"attention_bias": True, "mlp_bias": True}),
    "mistral": ("mistral", {}),
    "qwen2": ("qwen2", {}),
    "mixtral": ("mixtral", {"num_local_experts": 3, "num_experts_per_tok": 2}),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each case built once and saved with save_pretrained (the llama one sharded)."""
    root = tmp_path_factory.mktemp("models")
    built = {}
    for name, (model_type, overrides) in CASES.items():
        model = build_model(model_type, **overrides)
        shard = {"max_shard_size": "20KB"} if name == "llama" else {}
        built[name] = (model, save(model, str(root / name), **shard))
    return built


def assert_same_checkpoint_tensors(original: str, converted: str) -> None:
    before, after = load_tensors(original), load_tensors(converted)
    assert sorted(before) == sorted(after)
    for name, tensor in before.items():
        assert after[name].dtype == tensor.dtype, name
        assert torch.equal(after[name].view(torch.uint8), tensor.view(torch.uint8)), name


def assert_loads_with_same_logits(model, directory: str, model_class=None) -> None:
    reloaded = (model_class or type(model)).from_pretrained(directory).eval()
    assert torch.equal(logits(model), logits(reloaded))


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_through_native_is_bit_identical(saved, tmp_path, case):
    """With the test oracle's config mapping: independent of ckptlens.formats."""
    model, source = saved[case]
    native = native_model(model.config)
    config = read_config(source)
    convert_between(
        source, tmp_path / "native", hf_side(native, config), native_side(native), progress=False
    )
    back = tmp_path / "back"
    convert_between(
        tmp_path / "native", back, native_side(native), hf_side(native, config), progress=False
    )
    assert_same_checkpoint_tensors(source, str(back))
    assert_loads_with_same_logits(model, str(back))


def registered(format_name: str) -> bool:
    from ckptlens import formats

    return format_name in formats.names()


def needs_format(name: str) -> None:
    if not registered(name):
        pytest.skip(f"format {name!r} is not registered in ckptlens.formats yet")


@pytest.mark.parametrize("case", list(CASES))
def test_convert_round_trip_through_formats(saved, tmp_path, case):
    """The public path: format detected from config.json, config through the config lens."""
    model, source = saved[case]
    needs_format(model.config.model_type)
    convert(source, tmp_path / "native", to="native", progress=False)
    native_config = json.loads((tmp_path / "native" / "config.json").read_text())
    assert native_config["format"] == "ckptlens-native"
    assert os.path.exists(tmp_path / "native" / "generation_config.json")
    convert(tmp_path / "native", tmp_path / "back", to=model.config.model_type, progress=False)
    assert_same_checkpoint_tensors(source, str(tmp_path / "back"))
    assert_loads_with_same_logits(model, str(tmp_path / "back"))


def test_mixtral_fused_layout_both_ways(saved, tmp_path):
    model, source = saved["mixtral"]
    native = native_model(model.config)
    config = read_config(source)
    fused = tmp_path / "fused"
    convert_between(
        source, tmp_path / "native", hf_side(native, config), native_side(native), progress=False
    )
    convert_between(
        tmp_path / "native",
        fused,
        native_side(native),
        hf_side(native, config, FUSED),
        progress=False,
    )
    assert any(name.endswith("experts.gate_up_proj") for name in load_tensors(str(fused)))
    assert_loads_with_same_logits(model, str(fused))
    back = tmp_path / "per_expert"
    convert_between(
        fused, back, hf_side(native, config, FUSED), hf_side(native, config), progress=False
    )
    assert_same_checkpoint_tensors(source, str(back))


def test_cross_format_llama_to_mistral_logits(saved, tmp_path):
    import transformers

    needs_format("llama")
    needs_format("mistral")
    model, source = saved["llama"]
    convert(source, tmp_path / "mistral", to="mistral", progress=False)
    assert read_config(str(tmp_path / "mistral"))["model_type"] == "mistral"
    assert_loads_with_same_logits(model, str(tmp_path / "mistral"), transformers.MistralForCausalLM)


def test_cast_to_bfloat16_rounds_like_torch(saved, tmp_path):
    model, source = saved["llama_biases"]
    native = native_model(model.config)
    config = read_config(source)
    convert_between(
        source,
        tmp_path / "native",
        hf_side(native, config),
        native_side(native),
        dtype="BF16",
        progress=False,
    )
    convert_between(
        tmp_path / "native",
        tmp_path / "back",
        native_side(native),
        hf_side(native, config),
        progress=False,
    )
    before, after = load_tensors(source), load_tensors(str(tmp_path / "back"))
    for name, tensor in before.items():
        assert after[name].dtype == torch.bfloat16
        assert torch.equal(
            after[name].view(torch.int16), tensor.to(torch.bfloat16).view(torch.int16)
        ), name


def test_same_format_keeps_the_config_document(saved, tmp_path):
    _model, source = saved["qwen2"]
    needs_format("qwen2")
    convert(source, tmp_path / "copy", to="qwen2", progress=False)
    assert read_config(str(tmp_path / "copy")) == read_config(source)
    assert_same_checkpoint_tensors(source, str(tmp_path / "copy"))


def test_convert_chooses_the_moe_layout(saved, tmp_path):
    model, source = saved["mixtral"]
    needs_format("mixtral")
    fused = tmp_path / "fused"
    convert(source, fused, to="mixtral", moe_layout="fused", progress=False)
    assert any(name.endswith("mlp.experts.down_proj") for name in load_tensors(str(fused)))
    assert_loads_with_same_logits(model, str(fused))
    convert(fused, tmp_path / "back", to="mixtral", moe_layout="per_expert", progress=False)
    assert_same_checkpoint_tensors(source, str(tmp_path / "back"))


@pytest.mark.parametrize("case", list(CASES))
def test_native_tensors_mean_what_the_layout_says(saved, tmp_path, case):
    """A round trip cannot catch a consistently wrong layout (keys and values swapped, rotary
    order reversed): the native reference forward pass, reading native names only, must give
    transformers' logits."""
    from ckptlens.native.reference import ReferenceModel

    model, source = saved[case]
    native = native_model(model.config)
    convert_between(
        source,
        tmp_path / "native",
        hf_side(native, read_config(source)),
        native_side(native),
        progress=False,
    )
    reference = ReferenceModel.build(native, load_tensors(str(tmp_path / "native")))
    generator = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, model.config.vocab_size, (2, 7), generator=generator)
    assert torch.allclose(reference.forward(tokens)[0], logits(model), atol=1e-4, rtol=1e-4)
