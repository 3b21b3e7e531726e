"""Mistral (``MistralForCausalLM``): Llama's tables with a sliding window and no linear biases.

Only what differs from Llama is written here.
"""

from __future__ import annotations

from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block, no_attention_biases, no_mlp_biases, sliding_window
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import LLAMA_WEIGHTS, METADATA_DEFAULTS
from ckptlens.formats.tables import hf_model

MISTRAL_METADATA = {**METADATA_DEFAULTS, "context_length": 131072}

# transformers' Mistral and Mixtral build every projection with ``bias=False`` and have no key
# to say otherwise: a view with biases names each field it cannot write.
block = llama_block(
    biases=no_attention_biases,
    mlp_biases=no_mlp_biases(),
    window=sliding_window(default=4096),
    defaults={"intermediate_size": 14336, "num_key_value_heads": 8},
)
tree = hf_model(
    "mistral",
    ["MistralForCausalLM"],
    decoder=fixed_decoder(block),
    metadata=metadata(MISTRAL_METADATA),
    extra=generic_keys(),
)
FORMAT = declare(
    "mistral",
    tree,
    ("MistralForCausalLM",),
    weights=LLAMA_WEIGHTS,
    peer="MistralConfig",
    peer_model="MistralForCausalLM",
)
lens = FORMAT.lens
