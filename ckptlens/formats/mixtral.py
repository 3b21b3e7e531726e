"""Mixtral (``MixtralForCausalLM``): Mistral's block with a mixture-of-experts feed-forward.

The expert MLP takes the Llama MLP keys (``intermediate_size``, ``hidden_act``); the router is
top-k softmax renormalised over the chosen experts, with no bias. The router's training knobs
are metadata: they change the loss, not the function.
"""

from __future__ import annotations

from functools import partial

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import (
    dense_mlp,
    llama_block,
    mixture_of_experts,
    no_attention_biases,
    no_mlp_biases,
    sliding_window,
)
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.mistral import MISTRAL_METADATA
from ckptlens.formats.rope import rope
from ckptlens.formats.tables import hf_model

MIXTRAL_METADATA = {
    **MISTRAL_METADATA,
    "router_aux_loss_coef": 0.001,
    "router_jitter_noise": 0.0,
    "output_router_logits": False,
}

MIXTURE = mixture_of_experts(
    expert=dense_mlp(
        at="expert",
        biases=no_mlp_biases("no expert biases in this format"),
        gated="w1/w3 gate and up in every expert",
    ),
    # softmax over all experts, top-k, then the k weights renormalised to sum to 1.
    router={"normalize_top_k": True, "bias": False},
    reason="Mixtral's router",
)

block = llama_block(
    biases=no_attention_biases,
    mlp=MIXTURE,
    window=sliding_window(default=None),
    rotary=partial(rope, theta=1_000_000.0),
    defaults={"num_key_value_heads": 8, "intermediate_size": 14336},
)
tree = hf_model(
    "mixtral",
    ["MixtralForCausalLM"],
    decoder=fixed_decoder(block),
    metadata=metadata(MIXTRAL_METADATA),
    extra=generic_keys(),
    defaults={"rms_norm_eps": 1e-5},
)
# Experts under block_sparse_moe (one w1/w2/w3 per expert) or fused under mlp.experts.
WEIGHTS = hf.decoder(
    "model.layers.{i}",
    mixer=hf.attention("self_attn"),
    mlp=hf.moe(per_expert="block_sparse_moe", fused="mlp"),
)
FORMAT = declare(
    "mixtral",
    tree,
    ("MixtralForCausalLM",),
    weights=WEIGHTS,
    peer="MixtralConfig",
    peer_model="MixtralForCausalLM",
)
lens = FORMAT.lens
