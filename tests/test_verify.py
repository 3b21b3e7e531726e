"""``verify``: tiny transformers models converted to native compute the same logits, and a
deliberately broken native checkpoint is caught."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    MistralConfig,
    MixtralConfig,
    PreTrainedConfig,
    Qwen2Config,
)

from ckptlens import formats
from ckptlens.lenses.errors import SourceError
from ckptlens.verify import VerifyReport, add_verify_parser, verify
from ckptlens.weights.convert import convert
from ckptlens.weights.ops import RotaryPermute

SEQ_LEN = 32  # longer than every window and than the dynamic-NTK context: they all matter
HEADS, KV_HEADS, HEAD_SIZE = 4, 2, 8
SIZES = {
    "vocab_size": 101,
    "hidden_size": HEADS * HEAD_SIZE,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "max_position_embeddings": 64,
}


def llama(**overrides: object) -> Callable[[], PreTrainedConfig]:
    return lambda: LlamaConfig(**{**SIZES, "head_dim": HEAD_SIZE, **overrides})


def rope(rope_type: str, **parameters: object) -> dict[str, object]:
    return {"rope_parameters": {"rope_type": rope_type, "rope_theta": 10_000.0, **parameters}}


VARIANTS: dict[str, Callable[[], PreTrainedConfig]] = {
    "llama-gqa": llama(),
    "llama-tied-mha": llama(tie_word_embeddings=True, num_key_value_heads=HEADS),
    # Wavelengths 6.3, 63, 628, 6283 against the band [64/4, 64/1]: one pair kept, one
    # blended, two interpolated.
    "llama-llama3": llama(
        **rope(
            "llama3",
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=64,
        ),
        max_position_embeddings=256,
    ),
    "llama-yarn": llama(**rope("yarn", factor=4.0, original_max_position_embeddings=16)),
    "llama-linear": llama(**rope("linear", factor=2.0)),
    # Dynamic NTK rescales only past max_position_embeddings: keep it below SEQ_LEN.
    "llama-dynamic": llama(**rope("dynamic", factor=2.0), max_position_embeddings=16),
    "mistral-window": lambda: MistralConfig(**SIZES, head_dim=HEAD_SIZE, sliding_window=5),
    "qwen2-biases": lambda: Qwen2Config(**SIZES),
    # Layers from max_window_layers on use the window: layer 0 full, layer 1 windowed.
    "qwen2-window-layers": lambda: Qwen2Config(
        **SIZES, use_sliding_window=True, sliding_window=6, max_window_layers=1
    ),
    "mixtral": lambda: MixtralConfig(
        **SIZES, head_dim=HEAD_SIZE, num_local_experts=4, num_experts_per_tok=2, sliding_window=7
    ),
}


def save_tiny_model(
    config: PreTrainedConfig, directory: Path, dtype: torch.dtype = torch.float32
) -> None:
    """A random model with every parameter (biases and norm weights included) drawn away from
    its usual initial value, so that a tensor mapped to the wrong place changes the logits."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    model.to(dtype).save_pretrained(directory)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, Path]]:
    """``variant -> (hf_dir, native_dir)``: a tiny HF model saved by transformers, converted
    to native by the library on first use and shared afterwards."""
    cache: dict[str, tuple[Path, Path]] = {}

    def get(variant: str) -> tuple[Path, Path]:
        if variant not in cache:
            config = VARIANTS[variant]()
            if config.model_type not in formats.names():
                pytest.skip(f"format {config.model_type!r} is not registered in ckptlens.formats")
            root = tmp_path_factory.mktemp(variant)
            save_tiny_model(config, root / "hf")
            convert(root / "hf", root / "native", to="native", progress=False)
            cache[variant] = root / "hf", root / "native"
        return cache[variant]

    return get


def check(hf_dir: Path, native_dir: Path) -> VerifyReport:
    return verify(hf_dir, native_dir, seq_len=SEQ_LEN, batch=2, seed=3)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_converted_models_compute_the_same_logits(
    variant: str, converted: Callable[[str], tuple[Path, Path]]
) -> None:
    hf_dir, native_dir = converted(variant)
    report = check(hf_dir, native_dir)
    print(f"{variant}: {report.summary()}")  # the measured differences, shown with -s
    assert report.passed, report.summary()
    assert report.head_diffs == (report.max_abs_diff,)
    assert report.logit_scale > 1.0  # the logits are large enough for errors to show


# ---------------------------------------------------------------- sabotage


def edit_native(native_dir: Path, edit: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Apply ``edit`` to all tensors of a native checkpoint in place (a test-only corruption);
    each tensor stays in its shard."""
    shards = {shard: load_file(shard) for shard in sorted(native_dir.glob("*.safetensors"))}
    tensors = {name: tensor for shard in shards.values() for name, tensor in shard.items()}
    edit(tensors)
    for shard, before in shards.items():
        after = {name: tensors[name] for name in before if name in tensors}
        save_file(after, shard, metadata={"format": "pt"})


def reversed_heads(rows: np.ndarray, heads: int) -> np.ndarray:
    return np.concatenate(np.split(rows, heads)[::-1])


def permute_kv_heads(tensors: dict[str, np.ndarray]) -> None:
    """The key/value heads in reverse order (keys and values alike): a grouping bug."""
    name = "decoder.0.mixer.key_value.weight"
    keys, values = np.split(tensors[name], 2)
    tensors[name] = np.concatenate(
        [reversed_heads(keys, KV_HEADS), reversed_heads(values, KV_HEADS)]
    )


def swap_gate_and_up(tensors: dict[str, np.ndarray]) -> None:
    name = "decoder.1.mlp.layer_1.weight"
    gate, up = np.split(tensors[name], 2)
    tensors[name] = np.concatenate([up, gate])


def swap_two_experts(tensors: dict[str, np.ndarray]) -> None:
    for layer in ("layer_1", "layer_2"):
        name = f"decoder.0.mlp.experts.{layer}.weight"
        tensors[name] = tensors[name][[1, 0, *range(2, tensors[name].shape[0])]]


def rotary_permutation_twice(tensors: dict[str, np.ndarray]) -> None:
    """The HF -> native row reordering applied once more to query and key rows."""
    for name in [name for name in tensors if name.endswith("mixer.query.weight")]:
        tensors[name] = RotaryPermute(HEADS, HEAD_SIZE).apply([tensors[name]])[0]
    for name in [name for name in tensors if name.endswith("mixer.key_value.weight")]:
        keys, values = np.split(tensors[name], 2)
        keys = RotaryPermute(KV_HEADS, HEAD_SIZE).apply([keys])[0]
        tensors[name] = np.concatenate([keys, values])


SABOTAGES = {
    "kv-heads-permuted": ("llama-gqa", permute_kv_heads),
    "gate-up-swapped": ("llama-gqa", swap_gate_and_up),
    "experts-swapped": ("mixtral", swap_two_experts),
    "rotary-permuted-twice": ("llama-yarn", rotary_permutation_twice),
}


@pytest.mark.parametrize("sabotage", sorted(SABOTAGES))
def test_sabotaged_native_checkpoints_fail(
    sabotage: str, converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    variant, edit = SABOTAGES[sabotage]
    hf_dir, native_dir = converted(variant)
    assert check(hf_dir, native_dir).passed  # intact, it passes: the edit alone breaks it
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    edit_native(broken, edit)
    report = check(hf_dir, broken)
    assert not report.passed
    assert report.max_abs_diff > 100 * report.allowed  # far outside the tolerance, not marginal


def test_extra_prediction_heads_are_reported_as_not_compared(
    converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    """A Llama given a second prediction head (a copy of its last block) keeps head 0's
    logits: verify compares head 0 and says the other head was not compared."""
    hf_dir, native_dir = converted("llama-gqa")
    mtp = tmp_path / "mtp"
    shutil.copytree(native_dir, mtp)
    document = json.loads((mtp / "config.json").read_text())
    document["model"]["head"]["prediction_heads"] = 2
    (mtp / "config.json").write_text(json.dumps(document))
    tensors = {
        name: t for shard in mtp.glob("*.safetensors") for name, t in load_file(shard).items()
    }
    last = f"decoder.{SIZES['num_hidden_layers'] - 1}."
    head = {
        name.replace(last, "head.prediction.1.block."): tensor
        for name, tensor in tensors.items()
        if name.startswith(last)
    }
    head["head.prediction.1.final_norm.weight"] = tensors["head.final_norm.weight"]
    save_file(head, mtp / "prediction-head.safetensors", metadata={"format": "pt"})
    report = check(hf_dir, mtp)
    assert report.passed and report.unverified_heads == 1
    assert "1 more prediction head(s) not compared" in report.summary()


# ---------------------------------------------------------------- the command line and errors


def run_cli(*arguments: str) -> int:
    parser = argparse.ArgumentParser(prog="ckptlens")
    add_verify_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["verify", *arguments])
    return args.handler(args)


def test_command_exit_status_follows_the_verdict(
    converted: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hf_dir, native_dir = converted("llama-gqa")
    assert run_cli(str(hf_dir), str(native_dir), "--seq-len", "8") == 0
    assert "PASS" in capsys.readouterr().out
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    edit_native(broken, swap_gate_and_up)
    assert run_cli(str(hf_dir), str(broken), "--seq-len", "8") == 1
    assert "FAIL" in capsys.readouterr().out


def test_unusable_checkpoints_are_reported_not_raised(
    converted: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hf_dir, _ = converted("llama-gqa")
    assert run_cli(str(hf_dir), str(tmp_path)) == 2
    assert "config.json" in capsys.readouterr().err


def test_sharded_native_checkpoint_is_read_through_its_index(
    converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    hf_dir, _ = converted("llama-gqa")
    sharded = tmp_path / "sharded"
    convert(hf_dir, sharded, to="native", max_shard_size=20_000, progress=False)
    assert len(list(sharded.glob("*.safetensors"))) > 1
    assert (sharded / "model.safetensors.index.json").exists()
    assert check(hf_dir, sharded).passed


def test_bfloat16_checkpoints_are_compared_in_float32(tmp_path: Path) -> None:
    save_tiny_model(VARIANTS["qwen2-biases"](), tmp_path / "hf", dtype=torch.bfloat16)
    convert(tmp_path / "hf", tmp_path / "native", to="native", progress=False)
    assert check(tmp_path / "hf", tmp_path / "native").passed


def test_missing_native_tensor_is_named(
    converted: Callable[[str], tuple[Path, Path]], tmp_path: Path
) -> None:
    hf_dir, native_dir = converted("llama-gqa")
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    edit_native(broken, lambda tensors: tensors.pop("decoder.1.norm_2.weight"))
    with pytest.raises(SourceError, match=r"decoder\.1\.norm_2\.weight"):
        check(hf_dir, broken)


@pytest.mark.parametrize(
    ("model_type", "message"),
    [("mtp_llama", "cannot be verified offline"), ("no_such_model", "transformers can load")],
)
def test_model_types_transformers_cannot_run_are_errors(
    model_type: str,
    message: str,
    converted: Callable[[str], tuple[Path, Path]],
    tmp_path: Path,
) -> None:
    hf_dir, native_dir = converted("llama-gqa")
    other = tmp_path / model_type
    shutil.copytree(hf_dir, other)
    config = (other / "config.json").read_text().replace('"llama"', f'"{model_type}"')
    (other / "config.json").write_text(config)
    with pytest.raises(SourceError, match=message):
        check(other, native_dir)


def test_building_the_command_imports_neither_torch_nor_transformers() -> None:
    code = (
        "import sys, argparse, ckptlens.verify as v;"
        "v.add_verify_parser(argparse.ArgumentParser().add_subparsers());"
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    repository = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repository
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_gelu_new_read_as_exact_gelu_fails_verify_in_float64(
    tmp_path: Path,
) -> None:
    """The smallest semantic slip we know: ``gelu_new`` (tanh approximation) computed as exact
    ``gelu``. Measured here: 3.6e-4 against an allowed 2.0e-6 in float64 (the noise is about
    2e-7 of the logit scale). With small real-model weights the same slip moves logits by a few
    1e-6, under float32's 1e-4 tolerance: hence float64 and its 1e-6 by default."""
    hf_dir, native_dir = tmp_path / "hf", tmp_path / "native"
    save_tiny_model(llama(hidden_act="gelu_new")(), hf_dir)
    convert(hf_dir, native_dir, to="native", progress=False)
    assert check(hf_dir, native_dir).passed
    document = json.loads((native_dir / "config.json").read_text())
    text = json.dumps(document)
    assert text.count('"gelu_tanh"') == 1
    (native_dir / "config.json").write_text(text.replace('"gelu_tanh"', '"gelu"'))
    report = check(hf_dir, native_dir)
    print(report.summary())
    assert not report.passed
    assert report.max_abs_diff > 3 * report.allowed
