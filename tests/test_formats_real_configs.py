"""The Llama family against published ``config.json`` files and transformers' config classes."""

from __future__ import annotations

import warnings

import pytest

from ckptlens import formats
from ckptlens.lenses import LensError, same
from conftest import OWN_REAL_CONFIGS, load_real_config, real_config_files

EXPECTED = {
    "Qwen__Qwen1.5-110B.json": "qwen2",
    "Qwen__Qwen2-7B.json": "qwen2",
    "Qwen__Qwen2.5-0.5B.json": "qwen2",
    "Qwen__Qwen2.5-32B.json": "qwen2",
    "Qwen__Qwen2.5-7B-Instruct.json": "qwen2",
    "Qwen__Qwen3-0.6B.json": "qwen3",
    "mistralai__Mistral-7B-v0.1.json": "mistral",
    "mistralai__Mixtral-8x22B-Instruct-v0.1.json": "mixtral",
    "mistralai__Mixtral-8x7B-v0.1.json": "mixtral",
    "HuggingFaceTB__SmolLM2-135M.json": "llama",
    "codellama__CodeLlama-34b-Instruct-hf.json": "llama",
    "deepseek-ai__deepseek-llm-7b-base.json": "llama",
    "meta-llama__Llama-2-7b-hf.json": "llama",
    "meta-llama__Llama-3.2-1B-Instruct.json": "llama",
    "meta-llama__Meta-Llama-3-8B.json": "llama",
    "meta-llama__Meta-Llama-3.1-8B.json": "llama",
    "google__gemma-2-2b.json": "gemma2",
    "deepseek-ai__DeepSeek-V3.json": "deepseek_v3",
}
UNSUPPORTED = {
    "Qwen__Qwen3-30B-A3B.json": "qwen3_moe",
}
PEERS = [name for name, fmt in EXPECTED.items() if fmt != "llama"]


def load(name: str) -> dict:
    return load_real_config(name)


def canonical(fmt: formats.Format, source: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fmt.canonical(source)


def test_every_real_config_is_classified() -> None:
    assert set(real_config_files()) == set(EXPECTED) | set(UNSUPPORTED)


def test_the_repo_holds_every_real_config_it_tests() -> None:
    """A fresh clone (no ``shared/`` beside it) runs the whole suite: nothing is skipped."""
    own = {path.name for path in OWN_REAL_CONFIGS.glob("*.json")}
    assert own == set(EXPECTED) | set(UNSUPPORTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_detected_read_and_put_back_exactly(name: str) -> None:
    source = load(name)
    fmt = formats.detect(source)
    assert fmt.name == EXPECTED[name]
    assert fmt.lens.check_source(source) == []  # no unclaimed key, nothing out of domain
    view = fmt.lens.get(source)
    assert same(fmt.lens.put(view, source), source)
    assert same(source, load(name))  # inputs are never modified


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_family_is_rejected_naming_found_and_supported(name: str) -> None:
    source = load(name)
    with pytest.raises(LensError) as raised:
        formats.detect(source)
    text = str(raised.value)
    assert repr(UNSUPPORTED[name]) in text
    for fmt in formats.FORMATS.values():
        assert fmt.model_type in text


@pytest.mark.parametrize("name", sorted(PEERS))
def test_get_agrees_with_the_transformers_class(name: str) -> None:
    source = load(name)
    fmt = formats.detect(source)
    assert fmt.lens.get(canonical(fmt, source)) == fmt.lens.get(source)


@pytest.mark.parametrize("generation", ["v5", "v4"])
@pytest.mark.parametrize("name", sorted(PEERS))
def test_create_loads_in_the_transformers_class(name: str, generation: str) -> None:
    fmt = formats.detect(load(name))
    view = fmt.lens.get(load(name))
    created = fmt.lens.create(view, generation=generation)
    assert fmt.lens.get(created) == view
    assert fmt.lens.get(canonical(fmt, created)) == view
    spelled = "rope_parameters" if generation == "v5" else "rope_theta"
    assert spelled in created


def test_qwen_inert_window_keys_are_kept_but_not_shown() -> None:
    # use_sliding_window false: the sliding_window and max_window_layers values do nothing.
    source = load("Qwen__Qwen2.5-0.5B.json")
    fmt = formats.get("qwen2")
    view = fmt.lens.get(source)
    assert view.decoder.tag == "fixed"
    assert view.decoder.block.mixer.window is None
    assert canonical(fmt, source)["sliding_window"] is None  # what transformers makes of it
    put_back = fmt.lens.put(view, source)
    assert (put_back["sliding_window"], put_back["max_window_layers"]) == (32768, 24)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("mistral", "sliding_window"),
        ("qwen2", "layer_types"),
        ("mixtral", "num_local_experts"),
        ("mtp_llama", "prediction_heads"),
        ("diffusion_llama", "mask_token_id"),
        ("dream", "mask_token_id"),
    ],
)
def test_describe_prints_the_mapping_table(name: str, key: str) -> None:
    table = formats.get(name).lens.describe()
    assert key in table.column("source")
    assert "hidden_size" in table.column("view") and "metadata.context_length" in str(table)
