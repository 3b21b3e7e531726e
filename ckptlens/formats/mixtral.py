"""Mixtral (``MixtralForCausalLM``): Mistral's table with a mixture-of-experts MLP.

The expert MLP takes the Llama MLP keys (``intermediate_size``, ``hidden_act``); the router is
top-k softmax renormalised over the chosen experts, with no bias. The router's training knobs
are metadata: they change the loss, not the function.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.hf import ACTIVATION, POSITIVE, generic_keys, metadata
from ckptlens.formats.llama import BLOCK, MIXER, Line, llama_tree
from ckptlens.formats.mistral import MISTRAL_METADATA, NO_BIASES, sliding_window
from ckptlens.formats.rope import rope
from ckptlens.lenses import field, pinned, tag

MOE = f"{BLOCK}.mlp.<moe>"
EXPERT = f"{MOE}.expert.<mlp>"

MIXTRAL_METADATA = {
    **MISTRAL_METADATA,
    "router_aux_loss_coef": 0.001,
    "router_jitter_noise": 0.0,
    "output_router_logits": False,
}

MIXTURE: dict[str, Line] = {
    "mlp": [
        tag(f"{BLOCK}.mlp", "moe"),
        field(f"{MOE}.experts", "num_local_experts", POSITIVE, default=8),
        field(f"{MOE}.experts_per_token", "num_experts_per_tok", POSITIVE, default=2),
        # softmax over all experts, top-k, then the k weights renormalised to sum to 1.
        pinned(f"{MOE}.router", {"normalize_top_k": True, "bias": False}, "Mixtral's router"),
        pinned(f"{MOE}.shared_expert", None, "no shared expert"),
        tag(f"{MOE}.expert", "mlp"),
    ],
    "intermediate_size": field(
        f"{EXPERT}.intermediate_size", "intermediate_size", POSITIVE, default=14336
    ),
    "gated": pinned(f"{EXPERT}.gated", True, "w1/w3 gate and up in every expert"),
    "activation": field(f"{EXPERT}.activation", "hidden_act", ACTIVATION, default="silu"),
    "mlp_bias": [
        pinned(f"{EXPERT}.{name}", False, "no expert biases in this format")
        for name in ("layer_1_bias", "layer_2_bias")
    ],
}

tree = llama_tree(
    "mixtral",
    ["MixtralForCausalLM"],
    defaults={"kv_heads": 8, "epsilon": 1e-5},
    attention_bias=NO_BIASES["attention_bias"],
    **MIXTURE,
    window=sliding_window(default=None),
    rope=rope(f"{MIXER}.rotary", theta=1_000_000.0),
    metadata=metadata(MIXTRAL_METADATA),
    extra=generic_keys(),
    rope_interleaved=[],
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
