"""Every registered format: a synthetic checkpoint goes HF -> native -> HF bit for bit, and the
demo (``ckptlens demo``) runs."""

from __future__ import annotations

import attrs
import pytest

from ckptlens import formats
from ckptlens.demo import main as demo_main
from ckptlens.demo import same_tensors, tiny_llama, write_hf_checkpoint
from ckptlens.native.config import MLP, Head, Metadata, MoE
from ckptlens.weights import convert
from hardening_support import TINY_DEEPSEEK, gemma_view, with_norms_of


def model_for(format_name: str):
    """A tiny model inside each format's domain."""
    if format_name == "deepseek_v3":  # latent attention: read from a tiny config of its own
        return formats.get(format_name).lens.get(TINY_DEEPSEEK)
    model = tiny_llama()
    block = model.decoder.block
    if format_name in ("qwen2", "dream"):
        mixer = attrs.evolve(block.mixer, query_bias=True, key_value_bias=True)
        block = attrs.evolve(block, mixer=mixer)
    if format_name in ("diffusion_llama", "dream"):
        block = attrs.evolve(block, mixer=attrs.evolve(block.mixer, causal=False))
    block = with_norms_of(format_name, block)
    if format_name == "mixtral":
        block = attrs.evolve(block, mlp=MoE(3, 2, MLP(16)))
        router = Metadata(
            router_aux_loss_coef=0.001, router_jitter_noise=0.0, output_router_logits=False
        )
        metadata = attrs.evolve(
            model.metadata,
            **{
                f: getattr(router, f)
                for f in ("router_aux_loss_coef", "router_jitter_noise", "output_router_logits")
            },
        )
        model = attrs.evolve(model, metadata=metadata)
    if format_name in ("diffusion_llama", "dream"):
        model = attrs.evolve(model, metadata=attrs.evolve(model.metadata, mask_token_id=3))
    head = Head(model.head.final_norm, 3) if format_name == "mtp_llama" else model.head
    model = attrs.evolve(model, decoder=attrs.evolve(model.decoder, block=block), head=head)
    return gemma_view(model) if format_name == "gemma2" else model


@pytest.mark.parametrize("format_name", formats.names())
def test_synthetic_round_trip(tmp_path, format_name):
    write_hf_checkpoint(str(tmp_path / "hf"), model_for(format_name), 40_000, format_name)
    convert(tmp_path / "hf", tmp_path / "native", to="native", progress=False)
    convert(tmp_path / "native", tmp_path / "back", to=format_name, progress=False)
    assert same_tensors(str(tmp_path / "hf"), str(tmp_path / "back"))
    plan = convert(tmp_path / "hf", tmp_path / "unused", to="native", plan_only=True)
    assert plan.read_bytes == plan.write_bytes
    assert not (tmp_path / "unused").exists()


def test_demo_runs(tmp_path, capsys):
    assert demo_main(["--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "--to native\n  17 groups, 1 shard" in out
    assert "bit-identical: yes" in out


def test_widening_then_narrowing_dtype_is_exact(tmp_path):
    """bf16 -> f32 -> bf16 loses nothing; the configs record the dtype each time."""
    import json

    from ckptlens.weights.safetensors_header import read_checkpoint

    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama(), 40_000)
    convert(tmp_path / "hf", tmp_path / "wide", to="native", dtype="float32", progress=False)
    document = json.loads((tmp_path / "wide" / "config.json").read_text())
    assert document["model"]["metadata"]["dtype"] == "float32"
    assert {t.dtype for t in read_checkpoint(str(tmp_path / "wide")).tensors.values()} == {"F32"}
    convert(tmp_path / "wide", tmp_path / "back", to="llama", dtype="bf16", progress=False)
    assert json.loads((tmp_path / "back" / "config.json").read_text())["dtype"] == "bfloat16"
    assert same_tensors(str(tmp_path / "hf"), str(tmp_path / "back"))
