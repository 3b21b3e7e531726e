"""deepseek_v3 against transformers 5.24 on the CPU: configs (published and as transformers
writes them), a tiny model (one dense and one MoE layer, shared experts, grouped routing, yarn
with both mscales, latent query) converted to native and back bit for bit, in both expert
layouts, the reference logits against transformers', and sabotages that must fail widely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file
from transformers import AutoModelForCausalLM, DeepseekV3Config

from ckptlens import formats
from ckptlens.lenses import SourceError
from ckptlens.verify import verify
from ckptlens.weights.convert import convert
from conftest import load_real_config

FORMAT = formats.get("deepseek_v3")
HEADS, NOPE, ROPE, VALUE = 4, 8, 6, 10
TINY = {
    "vocab_size": 101,
    "hidden_size": 32,
    "intermediate_size": 48,
    "moe_intermediate_size": 12,
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "num_attention_heads": HEADS,
    "num_key_value_heads": HEADS,
    "q_lora_rank": 24,
    "kv_lora_rank": 16,
    "qk_nope_head_dim": NOPE,
    "qk_rope_head_dim": ROPE,
    "v_head_dim": VALUE,
    "n_routed_experts": 8,
    "n_group": 4,
    "topk_group": 2,
    "num_experts_per_tok": 3,
    "n_shared_experts": 2,
    "routed_scaling_factor": 2.5,
    "rms_norm_eps": 1e-5,  # not the latent norms' 1e-6: a mix-up shows
    "max_position_embeddings": 64,
    "rope_parameters": {
        "rope_type": "yarn",
        "rope_theta": 10000.0,
        "factor": 8.0,
        "original_max_position_embeddings": 16,
        "mscale": 0.9,
        "mscale_all_dim": 0.7,
    },
}
SEQ_LEN = 24
FIRST, SECOND = 2, 5  # in different groups; both chosen for some tokens


def load_tensors(directory: Path) -> dict[str, np.ndarray]:
    return {
        n: t
        for shard in sorted(directory.glob("*.safetensors"))
        for n, t in load_file(shard).items()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random tiny model saved by transformers (per-expert layout) and its native copy.
    Every parameter and the correction bias are drawn away from their initial values (the
    bias large enough to change which experts are chosen)."""
    root = tmp_path_factory.mktemp("deepseek_v3")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(DeepseekV3Config(**TINY))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.normal_(0.0, 0.5)
    model.save_pretrained(root / "hf")
    convert(root / "hf", root / "native", to="native", progress=False)
    return root / "hf", root / "native"


def assert_same_tensors(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> None:
    assert sorted(before) == sorted(after)
    for name, tensor in before.items():
        assert after[name].dtype == tensor.dtype and after[name].shape == tensor.shape, name
        assert after[name].tobytes() == tensor.tobytes(), name


def test_round_trip_is_bit_identical_in_both_expert_layouts(tiny, tmp_path) -> None:
    hf_dir, native_dir = tiny
    original = load_tensors(hf_dir)
    assert "model.layers.1.mlp.experts.7.gate_proj.weight" in original  # per expert
    assert "model.layers.1.mlp.gate.e_score_correction_bias" in original
    convert(native_dir, tmp_path / "back", to="deepseek_v3", progress=False)
    assert_same_tensors(original, load_tensors(tmp_path / "back"))
    convert(native_dir, tmp_path / "fused", to="deepseek_v3", moe_layout="fused", progress=False)
    fused = load_tensors(tmp_path / "fused")
    assert fused["model.layers.1.mlp.experts.gate_up_proj"].shape == (8, 24, 32)
    convert(tmp_path / "fused", tmp_path / "native2", to="native", progress=False)
    assert_same_tensors(load_tensors(native_dir), load_tensors(tmp_path / "native2"))


def check(hf_dir: Path, native_dir: Path):
    return verify(hf_dir, native_dir, seq_len=SEQ_LEN, batch=2, seed=3)


def test_reference_matches_transformers_logits(tiny) -> None:
    report = check(*tiny)
    print(f"deepseek_v3: {report.summary()}")
    assert report.passed, report.summary()
    assert report.logit_scale > 1.0


def swap_two_experts(tensors: dict[str, np.ndarray]) -> None:
    for layer in ("layer_1", "layer_2"):
        name = f"decoder.1.mlp.experts.{layer}.weight"
        order = list(range(tensors[name].shape[0]))
        order[FIRST], order[SECOND] = SECOND, FIRST
        tensors[name] = tensors[name][order]


def drop_correction_bias(tensors: dict[str, np.ndarray]) -> None:
    name = "decoder.1.mlp.router.correction_bias"
    tensors[name] = np.zeros_like(tensors[name])


def swap_rotary_and_plain_query(tensors: dict[str, np.ndarray]) -> None:
    """Each head's query rows as [rope | nope] instead of [nope | rope] (sizes 6 and 8 moved
    as blocks: the first ROPE rows of a head become its rotary part)."""
    for name in [name for name in tensors if name.endswith("mixer.query_b.weight")]:
        rows = tensors[name].reshape(HEADS, NOPE + ROPE, -1)
        tensors[name] = np.concatenate([rows[:, NOPE:], rows[:, :NOPE]], axis=1).reshape(
            HEADS * (NOPE + ROPE), -1
        )


SABOTAGES = {
    "experts-swapped": swap_two_experts,
    "correction-bias-dropped": drop_correction_bias,
    "rotary-and-plain-query-swapped": swap_rotary_and_plain_query,
}


@pytest.mark.parametrize("sabotage", sorted(SABOTAGES))
def test_sabotages_fail_widely(sabotage: str, tiny, tmp_path) -> None:
    hf_dir, native_dir = tiny
    broken = tmp_path / "broken"
    shutil.copytree(native_dir, broken)
    tensors = load_tensors(broken)
    SABOTAGES[sabotage](tensors)
    for shard in broken.glob("*.safetensors"):
        shard.unlink()
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    report = check(hf_dir, broken)
    print(f"{sabotage}: {report.summary()}")
    assert not report.passed
    assert report.max_abs_diff > 100 * report.allowed


# ---------------------------------------------------------------- configs


def test_published_and_transformers_forms_read_with_exact_get_put() -> None:
    published = load_real_config("deepseek-ai__DeepSeek-V3.json")
    view = FORMAT.lens.get(published)
    assert FORMAT.lens.put(view, published) == published
    written = DeepseekV3Config(**published).to_dict()
    assert "auto_map" in written and written["head_dim"] == 64 and written["qk_head_dim"] == 192
    again = FORMAT.lens.get(written)
    assert FORMAT.lens.put(again, written) == written
    assert again == view  # the two forms mean the same model
    blocks = view.decoder.blocks
    assert view.decoder.pattern == ("dense",) * 3 + ("moe",) * 58
    moe = blocks["moe"].mlp
    assert (moe.experts, moe.router.groups, moe.router.groups_per_token) == (256, 8, 4)
    assert moe.shared_expert.intermediate_size == 2048
    assert blocks["moe"].mixer.rotary.mscale_all_dim == 1.0


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ({"num_key_value_heads": 8}, "num_key_value_heads"),
        ({"head_dim": 128}, "head_dim"),
        ({"n_group": 3}, "n_group"),
        ({"topk_group": 9}, "topk_group"),
        ({"moe_layer_freq": 2}, "moe_layer_freq"),
        ({"scoring_func": "softmax"}, "scoring_func"),
        ({"topk_method": "greedy"}, "topk_method"),
        ({"rope_interleave": False}, "rope_interleave"),
        ({"first_k_dense_replace": 61}, "first_k_dense_replace"),
        ({"n_shared_experts": 0}, "n_shared_experts"),
    ],
)
def test_what_it_does_not_represent_is_refused_by_name(edit: dict, key: str) -> None:
    published = load_real_config("deepseek-ai__DeepSeek-V3.json")
    with pytest.raises(SourceError) as error:
        FORMAT.lens.get({**published, **edit})
    assert key in str(error.value)


def test_fp8_block_checkpoints_are_refused_naming_their_scales(tiny, tmp_path) -> None:
    """FP8 block weights are not converted yet: a checkpoint with ``weight_scale_inv`` tensors
    is refused before anything is written, each scale named (never silently dequantised or
    dropped)."""
    from safetensors.torch import load_file as load_torch
    from safetensors.torch import save_file as save_torch

    hf_dir, _ = tiny
    fp8 = tmp_path / "fp8"
    fp8.mkdir()
    document = json.loads((hf_dir / "config.json").read_text())
    document["quantization_config"] = {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    }
    (fp8 / "config.json").write_text(json.dumps(document))
    tensors = {}
    for name, tensor in load_torch(hf_dir / "model.safetensors").items():
        if name.endswith("_proj.weight"):
            tensors[name] = tensor.to(torch.float8_e4m3fn)
            tensors[f"{name}_scale_inv"] = torch.ones(1, 1)
        else:
            tensors[name] = tensor
    save_torch(tensors, fp8 / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(SourceError) as error:
        convert(fp8, tmp_path / "native", to="native", progress=False)
    assert "model.layers.1.self_attn.q_b_proj.weight_scale_inv" in str(error.value)
    assert not (tmp_path / "native").exists()
