"""Shared helpers for the weight tests: tiny transformers models and their native configs.

``native_model`` reads a transformers config object (not our config lens) so the weight tests
have an oracle independent of ``ckptlens.formats``.
"""

from __future__ import annotations

import os
from typing import Any

from ckptlens.formats import hf_weights as hf
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    Model,
    MoE,
    RMSNorm,
)
from ckptlens.weights.convert import Side
from ckptlens.weights.lens import native_weights

TINY = dict(
    vocab_size=64,
    hidden_size=48,
    intermediate_size=20,
    num_hidden_layers=2,
    num_attention_heads=6,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


def native_model(config: Any) -> Model:
    """The native model of a transformers Llama-family config object."""
    head_size = (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    qkv_bias = config.model_type == "qwen2" or getattr(config, "attention_bias", False)
    attention = Attention(
        heads=config.num_attention_heads,
        kv_heads=config.num_key_value_heads,
        head_size=head_size,
        rotary=DefaultRotary(theta=float(config.rope_parameters["rope_theta"])),
        query_bias=qkv_bias,
        key_value_bias=qkv_bias,
        dense_bias=getattr(config, "attention_bias", False),
    )
    mlp_bias = getattr(config, "mlp_bias", False)
    mlp: MLP | MoE = MLP(config.intermediate_size, layer_1_bias=mlp_bias, layer_2_bias=mlp_bias)
    if config.model_type == "mixtral":
        mlp = MoE(
            config.num_local_experts, config.num_experts_per_tok, MLP(config.intermediate_size)
        )
    block = Block(attention, mlp, RMSNorm(config.rms_norm_eps))
    return Model(
        hidden_size=config.hidden_size,
        vocab_size=config.vocab_size,
        decoder=FixedDecoder(block, config.num_hidden_layers),
        head=Head(RMSNorm(config.rms_norm_eps)),
        tied_embeddings=bool(config.tie_word_embeddings),
    )


def build_model(model_type: str, seed: int = 0, **overrides: Any) -> Any:
    """A tiny randomly initialised transformers causal LM (weights perturbed so that norms and
    biases are not all ones/zeros and any misplacement shows in the logits)."""
    import torch
    import transformers

    classes = {
        "llama": ("LlamaConfig", "LlamaForCausalLM"),
        "mistral": ("MistralConfig", "MistralForCausalLM"),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
        "mixtral": ("MixtralConfig", "MixtralForCausalLM"),
    }
    config_class, model_class = (getattr(transformers, n) for n in classes[model_type])
    config = config_class(**{**TINY, **overrides})
    torch.manual_seed(seed)
    model = model_class(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)
    return model


def save(model: Any, directory: str, **kwargs: Any) -> str:
    model.save_pretrained(directory, **kwargs)
    return directory


# The Llama tensor names with both feed-forward node types, for models drawn with either.
LLAMA_FAMILY = hf.decoder(
    "model.layers.{i}", mixer=hf.attention("self_attn"), mlp=(hf.mlp("mlp"), hf.moe())
)


def hf_side(model: Model, config: dict[str, Any], moe_layout: str = hf.PER_EXPERT) -> Side:
    return Side("hf", LLAMA_FAMILY.lens(model, moe_layout=moe_layout), config)


def native_side(model: Model) -> Side:
    return Side("native", native_weights(model), {"format": "native-for-tests"})


def read_config(directory: str) -> dict[str, Any]:
    import json

    with open(os.path.join(directory, "config.json")) as handle:
        return json.load(handle)


def load_tensors(directory: str) -> dict[str, Any]:
    """Every tensor of a checkpoint directory, by name (for bit-exact comparisons)."""
    from safetensors.torch import load_file

    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(directory, name)))
    return tensors


def logits(model: Any, seed: int = 1) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (2, 7), generator=generator)
    with torch.no_grad():
        return model(tokens).logits
