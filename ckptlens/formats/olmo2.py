"""OLMo 2 (``Olmo2ForCausalLM``): Llama's keys without ``head_dim``, ``mlp_bias`` or
``pretraining_tp``; each block normalizes its sublayers' *outputs* only
(``post_attention_layernorm``, ``post_feedforward_layernorm``); queries and keys are
RMS-normalized over the whole projection (``q_norm`` is ``heads * head_dim`` wide, not per
head), with the model's one ``rms_norm_eps``.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import (
    llama_block,
    no_mlp_biases,
    post_norms_only,
    query_key_rms_norm,
)
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.tables import hf_model
from ckptlens.native.nodes.attention import WHOLE_PROJECTION

OLMO2_METADATA = {
    **METADATA_DEFAULTS,
    "bos_token_id": None,
    "eos_token_id": 50279,
    "pad_token_id": 1,
}


OLMO2_BLOCK = llama_block(
    # The modeling code computes ``hidden_size // num_attention_heads``.
    head_dim_key=None,
    query_key_norm=query_key_rms_norm(WHOLE_PROJECTION, "q_norm and k_norm span all heads"),
    mlp_biases=no_mlp_biases(),
    norm_placement=post_norms_only,
)

tree = hf_model(
    "olmo2",
    ["Olmo2ForCausalLM"],
    decoder=fixed_decoder(OLMO2_BLOCK),
    metadata=metadata(OLMO2_METADATA),
    extra=[generic_keys()],
    defaults={"vocab_size": 50304, "rms_norm_eps": 1e-5},
)
OLMO2_WEIGHTS = hf.decoder(
    "model.layers.{i}",
    mixer=hf.attention("self_attn"),
    mlp=hf.mlp("mlp"),
    norm_1=None,
    norm_2=None,
    post_norm_1=hf.norm("post_attention_layernorm"),
    post_norm_2=hf.norm("post_feedforward_layernorm"),
)
FORMAT = declare(
    "olmo2",
    tree,
    ("Olmo2ForCausalLM",),
    weights=OLMO2_WEIGHTS,
    peer="Olmo2Config",
    peer_model="Olmo2ForCausalLM",
)
lens = FORMAT.lens
