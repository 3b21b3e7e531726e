"""Llama (``LlamaForCausalLM``): the HF config as a table of lenses onto the native model.

Two levels: the model table (``hf_model``) and the block table (``llama_block``), placed by a
fixed decoder. Read top to bottom, each line says where one view field comes from. View paths
name union members in angle brackets: ``decoder.<fixed>.block`` is the block of a fixed
decoder. Formats of the family are written as their difference from these tables.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.tables import Line, hf_model
from ckptlens.lenses import constant

METADATA_DEFAULTS = {
    "context_length": 2048,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": None,
    "initializer_range": 0.02,
    "attention_dropout": 0.0,
    "use_cache": True,
}

LLAMA_EXTRA: Line = [
    # ``pretraining_tp`` only splits matmuls for bit-compatibility with Meta's original
    # tensor-parallel run; the function is the same, so it is kept but not a view field.
    # ``is_llama_config`` is a nanotron export marker.
    generic_keys("pretraining_tp", "is_llama_config"),
    # transformers always rotates half-split pairs; a config claiming interleaved rotary
    # would describe weights that transformers computes differently, so it is refused.
    constant("rope_interleaved", False, create=False),
]

tree = hf_model(
    "llama",
    ["LlamaForCausalLM"],
    decoder=fixed_decoder(llama_block()),
    metadata=metadata(METADATA_DEFAULTS),
    extra=LLAMA_EXTRA,
)
# The tensor names every Llama-derived format shares (formats reuse it like the config lines).
LLAMA_WEIGHTS = hf.decoder("model.layers.{i}", mixer=hf.attention("self_attn"), mlp=hf.mlp("mlp"))
FORMAT = declare(
    "llama",
    tree,
    ("LlamaForCausalLM",),
    weights=LLAMA_WEIGHTS,
    peer="LlamaConfig",
    peer_model="LlamaForCausalLM",
)
lens = FORMAT.lens
