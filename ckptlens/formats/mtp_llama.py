"""MTP-Llama (``MTPLlamaForCausalLM``, remote code): Llama plus multi-token prediction heads.

``num_hidden_layers`` counts the block of prediction head 0, as the native decoder does (see
``Head``): the trunk is the first L - 1 blocks, and each further head is a copy of the last
block's configuration. So ``num_hidden_layers`` is the native ``num_blocks`` unchanged.
"""

from __future__ import annotations

from functools import partial

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import COUNT, auto_map, generic_keys, metadata
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.rope import rope
from ckptlens.formats.tables import hf_model, rms_head
from ckptlens.lenses import field

AUTO_MAP = {
    "AutoConfig": "configuration_mtp_llama.MTPLlamaConfig",
    "AutoModel": "modeling_mtp_llama.MTPLlamaModel",
    "AutoModelForCausalLM": "modeling_mtp_llama.MTPLlamaForCausalLM",
}

# Under transformers v4 the modeling file is a self-contained Llama copy, under v5 it
# subclasses transformers' Llama: both run every transformers rope type.
block = llama_block(rotary=partial(rope, flat_theta=True))
tree = hf_model(
    "mtp_llama",
    ["MTPLlamaForCausalLM"],
    decoder=fixed_decoder(block),
    head=rms_head(
        prediction_heads=field("head.prediction_heads", "prediction_heads", COUNT, default=1)
    ),
    metadata=metadata(METADATA_DEFAULTS),
    extra=[generic_keys("pretraining_tp"), auto_map(AUTO_MAP)],
)
# Head 0's norm is mtp_norms.0; head k >= 1 is mtp_heads.{k-1} then mtp_norms.{k}.
WEIGHTS = hf.decoder(
    "model.layers.{i}",
    mixer=hf.attention("self_attn"),
    mlp=hf.mlp("mlp"),
    head=hf.head(
        "model.mtp_norms.0",
        prediction_block="model.mtp_heads.{j}",
        prediction_norm="model.mtp_norms.{k}",
    ),
)
FORMAT = declare(
    "mtp_llama",
    tree,
    ("MTPLlamaForCausalLM",),
    weights=WEIGHTS,
    remote_code=True,
    notes=("num_hidden_layers includes the block of prediction head 0",),
)
lens = FORMAT.lens
