"""A small valid HF config for every format, built from the demo's tiny Llama by the few
changes each format needs (drawing an example with Hypothesis takes seconds per format)."""

from __future__ import annotations

import functools
from typing import Any

import attrs

from ckptlens import formats
from ckptlens.demo import tiny_llama
from ckptlens.native.config import Block, Model, MoE

# What each format pins that the tiny Llama does not have.
MIXER_CHANGES: dict[str, dict[str, Any]] = {
    "qwen2": {"query_bias": True, "key_value_bias": True},
    "diffusion_llama": {"causal": False},
    "dream": {"causal": False, "query_bias": True, "key_value_bias": True},
}
# Formats with a q/k RMSNorm (over each head, or the whole projection) and their norm placement.
QUERY_KEY_NORM_SCOPES = {"qwen3": "head", "olmo2": "projection"}
POST_NORMS_ONLY = ("olmo2",)
ROUTER_METADATA = {"router_aux_loss_coef": 0.02, "router_jitter_noise": 0.0}
# DeepSeek-V3's latent attention and shared-expert MoE are not a tiny Llama's: its own config.
TINY_DEEPSEEK = {
    "model_type": "deepseek_v3",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 40,
    "moe_intermediate_size": 8,
    "num_hidden_layers": 2,
    "first_k_dense_replace": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "q_lora_rank": 12,
    "kv_lora_rank": 8,
    "qk_nope_head_dim": 4,
    "qk_rope_head_dim": 4,
    "v_head_dim": 6,
    "n_routed_experts": 4,
    "n_group": 2,
    "topk_group": 1,
    "num_experts_per_tok": 2,
}


def with_norms_of(name: str, block: Block) -> Block:
    """``block`` with the q/k norm and norm placement of format ``name``."""
    if name in QUERY_KEY_NORM_SCOPES:
        scope = QUERY_KEY_NORM_SCOPES[name]
        norm = block.normalization
        mixer = attrs.evolve(block.mixer, query_key_norm=norm, query_key_norm_scope=scope)
        block = attrs.evolve(block, mixer=mixer)
    if name in POST_NORMS_ONLY:
        block = attrs.evolve(block, pre_norms=False, post_norms=True)
    return block


def tiny_view(name: str) -> Model:
    """The tiny Llama as a model the format ``name`` can hold."""
    model = tiny_llama()
    block = model.decoder.block
    block = attrs.evolve(block, mixer=attrs.evolve(block.mixer, **MIXER_CHANGES.get(name, {})))
    block = with_norms_of(name, block)
    metadata = model.metadata
    if name == "mixtral":
        block = attrs.evolve(block, mlp=MoE(4, 2, block.mlp))
        metadata = attrs.evolve(metadata, output_router_logits=False, **ROUTER_METADATA)
    if name == "dream":
        metadata = attrs.evolve(metadata, mask_token_id=47, use_cache=False)
    model = attrs.evolve(model, metadata=metadata)
    if name == "gemma2":
        return gemma_view(attrs.evolve(model, decoder=attrs.evolve(model.decoder, block=block)))
    return attrs.evolve(model, decoder=attrs.evolve(model.decoder, block=block))


def gemma_view(model: Model) -> Model:
    """Gemma 2's (1 + weight) norms on both sides of each sublayer, its softmax scale and
    scaled embeddings (one layer, global)."""
    norm = attrs.evolve(model.head.final_norm, unit_offset=True)
    block = model.decoder.block
    mixer = attrs.evolve(block.mixer, softmax_scale=block.mixer.head_size**-0.5)
    block = attrs.evolve(block, mixer=mixer, normalization=norm, post_norms=True)
    return attrs.evolve(
        model,
        decoder=attrs.evolve(model.decoder, block=block),
        head=attrs.evolve(model.head, final_norm=norm),
        scale_embeddings=True,
    )


@functools.cache
def _tiny_source(name: str) -> tuple[tuple[str, Any], ...]:
    fmt = formats.get(name)
    if name == "deepseek_v3":
        return tuple(fmt.lens.create(fmt.lens.get(TINY_DEEPSEEK)).items())
    return tuple(fmt.lens.create(tiny_view(name)).items())


def tiny_source(name: str) -> dict[str, Any]:
    """A fresh copy of a small valid HF config of format ``name`` (v5 spelling)."""
    import copy

    return copy.deepcopy(dict(_tiny_source(name)))
