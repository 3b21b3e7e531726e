"""Phi-3 (``Phi3ForCausalLM``; Phi-3/3.5-mini and -medium, Phi-4-mini): Llama's block with
fused HF projections, partial rotary, LongRoPE and one sliding window for every layer.

Only what differs from Llama is written here; the rotary keys are in ``longrope``.

- No ``head_dim`` key: transformers uses ``hidden_size // num_attention_heads``.
- No biases anywhere; the remote-code keys that say so (``attention_bias``, ``mlp_bias``,
  ``lm_head_bias``: Phi-4-mini) are accepted only at ``false``, its block-sparse and
  interpolation knobs (``full_attn_mod``, ``interpolate_factor``) only at their neutral 1.
- ``embd_pdrop``/``resid_pdrop`` are training-time dropout, the same function at inference:
  kept verbatim by put, not view fields (like Llama's ``pretraining_tp``).
- ``auto_map`` (the remote-code ``configuration_phi3``/``modeling_phi3`` most published
  configs name) is kept verbatim: transformers' own ``Phi3ForCausalLM`` computes the same model
  from these keys, and it is what this format reads; the map does not change the view.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block, no_attention_biases, no_mlp_biases, sliding_window
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.longrope import phi3_rope
from ckptlens.formats.tables import hf_model
from ckptlens.lenses import constant

PHI3_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 4096,
    "bos_token_id": 1,
    "eos_token_id": 32000,
    "pad_token_id": 32000,
}

BLOCK = llama_block(
    biases=no_attention_biases,
    head_dim_key=None,
    mlp_biases=no_mlp_biases(),
    window=sliding_window(default=None),
    rotary=phi3_rope,
    defaults={"intermediate_size": 8192, "num_attention_heads": 32},
)

PHI3_EXTRA = [
    generic_keys("embd_pdrop", "resid_pdrop", "auto_map"),
    constant("attention_bias", False, create=False),
    constant("mlp_bias", False, create=False),
    constant("lm_head_bias", False, create=False),
    constant("full_attn_mod", 1, create=False),
    constant("interpolate_factor", 1, create=False),
]

tree = hf_model(
    "phi3",
    ["Phi3ForCausalLM"],
    decoder=fixed_decoder(BLOCK),
    metadata=metadata(PHI3_METADATA),
    extra=PHI3_EXTRA,
    defaults={"vocab_size": 32064, "hidden_size": 3072, "rms_norm_eps": 1e-5},
)
PHI3_WEIGHTS = hf.decoder(
    "model.layers.{i}", mixer=hf.fused_attention("self_attn"), mlp=hf.fused_mlp("mlp")
)
FORMAT = declare(
    "phi3",
    tree,
    ("Phi3ForCausalLM",),
    weights=PHI3_WEIGHTS,
    peer="Phi3Config",
    peer_model="Phi3ForCausalLM",
)
lens = FORMAT.lens
