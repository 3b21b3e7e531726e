"""The reference forwards of latent attention and of DeepSeek's routed mixture against
transformers 5.24's own modules, in float64, with every weight random (norms, biases and the
correction bias included). Nodes come from the ``deepseek_v3`` config lens and tensors through
its weight pieces, so the config reading and the tensor mapping are checked with the maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DeepseekV3Config
from transformers.models.deepseek_v3.modeling_deepseek_v3 import (
    DeepseekV3Attention,
    DeepseekV3MoE,
    DeepseekV3RMSNorm,
    DeepseekV3RotaryEmbedding,
)

from ckptlens import formats
from ckptlens.formats import hf_weights as hf
from ckptlens.formats.hf_weights import FUSED, Options
from ckptlens.native.reference import forward

DTYPE = torch.float64
# transformers' norms are kept in float64 here, but its rotary inverse frequencies are a
# float32 buffer (the reference computes them in float64): agreement stops near 1e-7.
ROTARY_FLOAT32 = 1e-6
FLOAT32_INSIDE = 1e-5  # transformers' router computes in float32 whatever the model dtype
YARN = {
    "rope_type": "yarn",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "original_max_position_embeddings": 64,
    "mscale": 0.9,  # distinct mscales: the cos/sin factor is not 1
    "mscale_all_dim": 0.7,
}
DEFAULT_ROPE = {"rope_type": "default", "rope_theta": 10000.0}


def tiny(**overrides: object) -> DeepseekV3Config:
    values = {
        "vocab_size": 48,
        "hidden_size": 32,
        "intermediate_size": 40,
        "moe_intermediate_size": 12,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 16,
        "n_group": 4,
        "topk_group": 2,
        "num_experts_per_tok": 3,
        "n_shared_experts": 2,
        "first_k_dense_replace": 1,
        "q_lora_rank": 24,
        "kv_lora_rank": 16,
        "qk_rope_head_dim": 6,
        "qk_nope_head_dim": 8,
        "v_head_dim": 10,
        "rms_norm_eps": 1e-5,  # not the latent norms' fixed 1e-6: a mix-up shows
        "max_position_embeddings": 512,
        "rope_parameters": dict(YARN),
        **overrides,
    }
    config = DeepseekV3Config(**values)
    config._attn_implementation = "sdpa"  # no float32 softmax
    config._experts_implementation = "eager"  # grouped_mm refuses float64
    return config


def native_block(config: DeepseekV3Config, index: int):
    model = formats.get("deepseek_v3").lens.get(config.to_dict())
    return model.decoder.block_at(index)


def randomize(module: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            if "inv_freq" in name:
                continue
            noise = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            base, scale = (1.0, 0.1) if "norm" in name else (0.0, 0.3)
            tensor.copy_(base + (0.5 if "correction" in name else scale) * noise)


def to_native(piece, node, state: dict[str, torch.Tensor], options: Options) -> dict:
    """The module's tensors under their native names, through the format's weight piece."""
    native = {}
    for mapping in piece.mappings("", "node", node, options):
        arrays = [state[name].detach().numpy() for name in mapping.external]
        for name, array in zip(mapping.native, mapping.op.apply(arrays), strict=True):
            native[name] = torch.from_numpy(np.ascontiguousarray(array))
    return native


def float64_rms_norm(self, x: torch.Tensor) -> torch.Tensor:
    return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon))


@pytest.mark.parametrize("query_rank", [24, None])
@pytest.mark.parametrize("rope", ["yarn", "default"])
@pytest.mark.parametrize("bias", [False, True])
def test_latent_attention_matches_transformers(query_rank, rope, bias, monkeypatch) -> None:
    monkeypatch.setattr(DeepseekV3RMSNorm, "forward", float64_rms_norm)
    config = tiny(
        q_lora_rank=query_rank,
        attention_bias=bias,
        rope_parameters=dict(YARN if rope == "yarn" else DEFAULT_ROPE),
    )
    module = DeepseekV3Attention(config, layer_idx=0).to(DTYPE)
    randomize(module, seed=1)
    x = torch.randn((2, 9, 32), generator=torch.Generator().manual_seed(2), dtype=DTYPE)
    cos_sin = DeepseekV3RotaryEmbedding(config)(x, torch.arange(x.shape[1])[None])
    with torch.no_grad():
        expected, _ = module(x, cos_sin, None)
    mixer = native_block(config, 0).mixer
    state = {f"attn.{name}": tensor for name, tensor in module.state_dict().items()}
    tensors = to_native(hf.latent_attention("attn"), mixer, state, Options())
    actual = forward(mixer, x, tensors, "node")
    assert (actual - expected).abs().max().item() < ROTARY_FLOAT32


@pytest.mark.parametrize("normalize", [True, False])
def test_grouped_sigmoid_routing_matches_transformers(normalize: bool) -> None:
    config = tiny(norm_topk_prob=normalize)
    module = DeepseekV3MoE(config).to(DTYPE)
    randomize(module, seed=5)
    x = torch.randn((2, 9, 32), generator=torch.Generator().manual_seed(6), dtype=DTYPE)
    with torch.no_grad():
        expected = module(x)
    moe = native_block(config, 1).mlp
    state = {f"mlp.{name}": tensor for name, tensor in module.state_dict().items()}
    tensors = to_native(hf.QWEN2_MOE, moe, state, Options(moe_layout=FUSED))
    actual = forward(moe, x, tensors, "node")
    assert (actual - expected).abs().max().item() < FLOAT32_INSIDE
    # the correction bias and the grouping both change the choice here: without them, far off
    for field in ("correction_bias", "groups"):
        import attrs

        changed = {"correction_bias": False} if field == "correction_bias" else {"groups": 1}
        router = attrs.evolve(
            moe.router, **changed, **({"groups_per_token": 1} if field == "groups" else {})
        )
        wrong = forward(attrs.evolve(moe, router=router), x, tensors, "node")
        assert (wrong - expected).abs().max().item() > 1e-3
