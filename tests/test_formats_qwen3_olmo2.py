"""Qwen3 and OLMo 2 end to end: their configs (real, FP8, sliding layers), the views other
formats cannot hold, and tiny transformers models converted to native whose reference logits
match transformers', with one sabotage per new feature."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from transformers import Olmo2Config, Qwen3Config

from ckptlens import formats
from ckptlens.lenses import LensError, same
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    Model,
    NoRotary,
    RMSNorm,
)
from ckptlens.weights.convert import convert
from ckptlens.weights.ops import RotaryPermute
from conftest import load_real_config
from test_verify import HEAD_SIZE, HEADS, KV_HEADS, SIZES, check, edit_native, save_tiny_model
from test_weights_models import assert_same_checkpoint_tensors

QWEN3 = "Qwen__Qwen3-0.6B.json"
# As Qwen publishes its FP8 releases (Qwen3-0.6B-FP8 and larger).
FP8 = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
       "weight_block_size": [128, 128]}  # fmt: skip


def qwen3_fp8() -> dict:
    return {**load_real_config(QWEN3), "quantization_config": FP8}


def violations(view, target: str) -> set[str]:
    return {v.path for v in formats.get(target).lens.check_view(view)}


# ---------------------------------------------------------------- the native q/k norm scope


def test_whole_projection_norm_tensors_and_hf_names() -> None:
    norm = RMSNorm(1e-6)
    mixer = Attention(HEADS, KV_HEADS, HEAD_SIZE, DefaultRotary(1e4), query_key_norm=norm,
                      query_key_norm_scope="projection")  # fmt: skip
    tensors = dict(mixer.tensors("m", 32))
    assert tensors["m.query_norm.weight"] == (HEADS * HEAD_SIZE,)
    assert tensors["m.key_norm.weight"] == (KV_HEADS * HEAD_SIZE,)
    model = Model(32, 7, FixedDecoder(Block(mixer, MLP(8), norm, False, True), 1), Head(norm))
    by_native = formats.get("olmo2").weights(model).by_native()
    key_norm = by_native["decoder.0.mixer.key_norm.weight"]
    assert key_norm.external == ("model.layers.0.self_attn.k_norm.weight",)
    assert key_norm.op == RotaryPermute(KV_HEADS, HEAD_SIZE)  # every head's rows reordered


def test_a_scope_without_a_norm_is_refused() -> None:
    with pytest.raises(ValueError, match="query_key_norm_scope"):
        Attention(HEADS, KV_HEADS, HEAD_SIZE, NoRotary(), query_key_norm_scope="projection")
    with pytest.raises(ValueError, match="query_key_norm_scope"):
        Attention(HEADS, KV_HEADS, HEAD_SIZE, NoRotary(), query_key_norm_scope="heads")


# ---------------------------------------------------------------- configs


def test_fp8_quantization_config_is_read_and_written_exactly() -> None:
    fmt, source = formats.get("qwen3"), qwen3_fp8()
    assert fmt.lens.check_source(source) == []
    view = fmt.lens.get(source)
    assert view.metadata.quantization == FP8
    assert same(fmt.lens.put(view, source), source)
    assert fmt.lens.create(view)["quantization_config"] == FP8
    assert fmt.canonical(source)["quantization_config"] == FP8  # transformers keeps it too
    assert "$.metadata.quantization" in violations(view, "llama")  # never silently dropped
    assert "quantization_config" not in fmt.lens.create(fmt.lens.get(load_real_config(QWEN3)))


def test_fp8_checkpoints_are_refused_by_conversion_naming_why(tmp_path: Path) -> None:
    hf_dir = tmp_path / "hf"
    save_tiny_model(Qwen3Config(**SIZES, head_dim=HEAD_SIZE), hf_dir)
    config = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**config, "quantization_config": FP8}))
    with pytest.raises(LensError) as raised:
        convert(hf_dir, tmp_path / "native", to="native", plan_only=True, progress=False)
    assert "quantization_config" in str(raised.value) and "FP8" in str(raised.value)


def test_qwen2_window_keys_are_kept_exactly_as_written() -> None:
    source = {**load_real_config(QWEN3), "num_hidden_layers": 3, "use_sliding_window": True,
              "sliding_window": 64, "max_window_layers": 1}  # fmt: skip
    fmt = formats.get("qwen3")
    view = fmt.lens.get(source)
    assert view.decoder.pattern == ("full", "sliding", "sliding")
    assert view.decoder.blocks["sliding"].mixer.window == 64
    assert view.decoder.blocks["sliding"].mixer.query_key_norm == view.head.final_norm
    assert same(fmt.lens.put(view, source), source)
    assert fmt.lens.get(fmt.canonical(source)) == view


# The keys and spellings of the published OLMo 2 7B config (written by transformers 4.47,
# v4 rope spelling); not a verbatim copy, no OLMo 2 file is among the real configs.
OLMO2_V4 = {
    "architectures": ["Olmo2ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": None, "eos_token_id": 100257, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 11008, "max_position_embeddings": 4096,
    "model_type": "olmo2", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 32, "pad_token_id": 100277, "rms_norm_eps": 1e-06,
    "rope_scaling": None, "rope_theta": 500000, "tie_word_embeddings": False,
    "torch_dtype": "float32", "transformers_version": "4.47.0.dev0", "use_cache": True,
    "vocab_size": 100352,
}  # fmt: skip


def test_olmo2_v4_config_reads_exactly_and_as_transformers_does() -> None:
    fmt = formats.detect(OLMO2_V4)
    assert fmt.name == "olmo2" and fmt.lens.check_source(OLMO2_V4) == []
    view = fmt.lens.get(OLMO2_V4)
    assert view.decoder.block.mixer.head_size == 128  # hidden_size // heads: no head_dim key
    assert view.decoder.block.mixer.query_key_norm.epsilon == 1e-6
    assert same(fmt.lens.put(view, OLMO2_V4), OLMO2_V4)
    assert fmt.lens.get(fmt.canonical(OLMO2_V4)) == view


def test_unknown_keys_are_refused_by_name() -> None:
    for name, source in [("qwen3", load_real_config(QWEN3)), ("olmo2", {"model_type": "olmo2"})]:
        problems = formats.get(name).lens.check_source({**source, "qk_layernorm": True})
        assert [v.path for v in problems] == ["$.qk_layernorm"]


def test_detect_reads_both() -> None:
    assert formats.detect(load_real_config(QWEN3)).name == "qwen3"
    assert formats.detect(
        Olmo2Config().to_dict() | {"architectures": ["Olmo2ForCausalLM"]}
    ).name == ("olmo2")


def test_views_other_formats_cannot_hold_are_refused_naming_the_norms() -> None:
    qwen3 = formats.get("qwen3").lens.get(load_real_config(QWEN3))
    assert "$.decoder.block.mixer.query_key_norm" in violations(qwen3, "llama")
    llama = formats.get("llama").lens.get(load_real_config("meta-llama__Llama-2-7b-hf.json"))
    assert "$.decoder.block.mixer.query_key_norm" in violations(llama, "qwen3")
    olmo2 = formats.get("olmo2").lens.get({"model_type": "olmo2"})
    into_qwen3 = violations(olmo2, "qwen3")
    assert {"$.decoder.block.mixer.query_key_norm_scope", "$.decoder.block.pre_norms",
            "$.decoder.block.post_norms"} <= into_qwen3  # fmt: skip
    assert "$.decoder.block.mixer.query_key_norm_scope" in violations(qwen3, "olmo2")


def test_describe_and_explain_show_the_new_keys() -> None:
    qwen3 = formats.get("qwen3").lens
    assert {"head_dim", "attention_bias", "quantization_config"} <= set(
        qwen3.describe().column("source")
    )
    assert "quantization" in str(qwen3.explain(qwen3_fp8()))
    olmo2 = formats.get("olmo2").lens.describe()
    assert "query_key_norm_scope" in str(olmo2) and "post_norms" in str(olmo2)


# ---------------------------------------------------------------- tiny models

VARIANTS: dict[str, Callable[[], object]] = {
    # layer 0 full, layer 1 sliding; biases on all four projections
    "qwen3": lambda: Qwen3Config(
        **SIZES,
        head_dim=HEAD_SIZE,
        attention_bias=True,
        use_sliding_window=True,
        sliding_window=6,
        max_window_layers=1,
    ),
    "olmo2": lambda: Olmo2Config(**SIZES),
}


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    cache: dict[str, tuple[Path, Path]] = {}

    def get(variant: str) -> tuple[Path, Path]:
        if variant not in cache:
            root = tmp_path_factory.mktemp(variant)
            save_tiny_model(VARIANTS[variant](), root / "hf")
            convert(root / "hf", root / "native", to="native", progress=False)
            cache[variant] = root / "hf", root / "native"
        return cache[variant]

    return get


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_reference_matches_transformers_and_round_trip_is_bit_identical(
    variant: str, converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    hf_dir, native_dir = converted(variant)
    report = check(hf_dir, native_dir)
    print(f"{variant}: {report.summary()}")  # the measured difference, shown with -s
    assert report.passed and report.logit_scale > 1.0, report.summary()
    convert(native_dir, tmp_path / "back", to=variant, progress=False)
    assert_same_checkpoint_tensors(str(hf_dir), str(tmp_path / "back"))


def hf_norms_unpermuted(hf_dir: Path) -> Callable[[dict[str, np.ndarray]], None]:
    """Qwen3's q/k norm weights left in HF's half-split order."""
    hf = load_file(hf_dir / "model.safetensors")

    def edit(tensors: dict[str, np.ndarray]) -> None:
        for layer in (0, 1):
            for native, name in (("query_norm", "q_norm"), ("key_norm", "k_norm")):
                hf_name = f"model.layers.{layer}.self_attn.{name}.weight"
                tensors[f"decoder.{layer}.mixer.{native}.weight"] = hf[hf_name]

    return edit


def per_head(config: dict, tensors: dict[str, np.ndarray]) -> None:
    """OLMo 2's whole-projection norm read as per-head (first head's weights)."""
    config["model"]["decoder"]["block"]["mixer"]["query_key_norm_scope"] = "head"
    for name in [
        name for name in tensors if name.endswith(("query_norm.weight", "key_norm.weight"))
    ]:
        tensors[name] = tensors[name][:HEAD_SIZE].copy()


def pre_norms(config: dict, tensors: dict[str, np.ndarray]) -> None:
    """OLMo 2's post norms read as pre norms."""
    (
        config["model"]["decoder"]["block"]["pre_norms"],
        config["model"]["decoder"]["block"]["post_norms"],
    ) = True, False
    for name in [name for name in tensors if ".post_norm_" in name]:
        tensors[name.replace(".post_norm_", ".norm_")] = tensors.pop(name)


def rewrite_native(native_dir: Path, edit: Callable[[dict, dict[str, np.ndarray]], None]) -> None:
    """Apply ``edit`` to a native checkpoint's config and tensors (renames allowed), written
    back as one shard."""
    config = json.loads((native_dir / "config.json").read_text())
    shards = sorted(native_dir.glob("*.safetensors*"))
    tensors = {
        n: t
        for shard in shards
        if shard.suffix == ".safetensors"
        for n, t in load_file(shard).items()
    }
    edit(config, tensors)
    for shard in shards:
        shard.unlink()
    save_file(tensors, native_dir / "model.safetensors", metadata={"format": "pt"})
    (native_dir / "config.json").write_text(json.dumps(config))


def test_sabotaged_checkpoints_fail_by_a_wide_margin(
    converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    assert (HEADS, KV_HEADS) == (4, 2)  # the q and k norm spans below differ
    qwen_hf, qwen_native = converted("qwen3")
    olmo_hf, olmo_native = converted("olmo2")
    cases = {
        "qwen3 q/k norms unpermuted": (qwen_hf, qwen_native, None, hf_norms_unpermuted(qwen_hf)),
        "olmo2 q/k norm per head": (olmo_hf, olmo_native, per_head, None),
        "olmo2 post norms as pre": (olmo_hf, olmo_native, pre_norms, None),
    }
    for label, (hf_dir, native_dir, config_edit, tensor_edit) in cases.items():
        broken = tmp_path / label.replace(" ", "-").replace("/", "")
        shutil.copytree(native_dir, broken)
        if config_edit is None:
            edit_native(broken, tensor_edit)
        else:
            rewrite_native(broken, config_edit)
        report = check(hf_dir, broken)
        print(f"{label}: {report.summary()}")
        assert not report.passed, label
        assert report.max_abs_diff > 100 * report.allowed, label
