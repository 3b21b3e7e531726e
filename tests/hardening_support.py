"""A small valid HF config for every format, built from the demo's tiny Llama by the few
changes each format needs (drawing an example with Hypothesis takes seconds per format)."""

from __future__ import annotations

import functools
from typing import Any

import attrs

from ckptlens import formats
from ckptlens.demo import tiny_llama
from ckptlens.native.config import Model, MoE

# What each format pins that the tiny Llama does not have.
MIXER_CHANGES: dict[str, dict[str, Any]] = {
    "qwen2": {"query_bias": True, "key_value_bias": True},
    "diffusion_llama": {"causal": False},
    "dream": {"causal": False, "query_bias": True, "key_value_bias": True},
}
ROUTER_METADATA = {"router_aux_loss_coef": 0.02, "router_jitter_noise": 0.0}


def tiny_view(name: str) -> Model:
    """The tiny Llama as a model the format ``name`` can hold."""
    model = tiny_llama()
    block = model.decoder.block
    block = attrs.evolve(block, mixer=attrs.evolve(block.mixer, **MIXER_CHANGES.get(name, {})))
    metadata = model.metadata
    if name == "mixtral":
        block = attrs.evolve(block, mlp=MoE(4, 2, block.mlp))
        metadata = attrs.evolve(metadata, output_router_logits=False, **ROUTER_METADATA)
    if name == "dream":
        metadata = attrs.evolve(metadata, mask_token_id=47, use_cache=False)
    return attrs.evolve(model, decoder=attrs.evolve(model.decoder, block=block), metadata=metadata)


@functools.cache
def _tiny_source(name: str) -> tuple[tuple[str, Any], ...]:
    return tuple(formats.get(name).lens.create(tiny_view(name)).items())


def tiny_source(name: str) -> dict[str, Any]:
    """A fresh copy of a small valid HF config of format ``name`` (v5 spelling)."""
    import copy

    return copy.deepcopy(dict(_tiny_source(name)))
