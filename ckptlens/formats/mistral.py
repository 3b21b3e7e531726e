"""Mistral (``MistralForCausalLM``): Llama's table with a sliding window and no linear biases.

Only the lines that differ from Llama are written here; the rest is ``llama_tree``.
"""

from __future__ import annotations

from ckptlens.formats.base import declare
from ckptlens.formats.hf import POSITIVE, generic_keys, metadata
from ckptlens.formats.llama import (
    BLOCK,
    LLAMA_WEIGHTS,
    METADATA_DEFAULTS,
    MIXER,
    Line,
    llama_tree,
    no_mlp_biases,
)
from ckptlens.lenses import Nullable, field, pinned

MISTRAL_METADATA = {**METADATA_DEFAULTS, "context_length": 131072}


def sliding_window(default: int | None) -> Line:
    """``sliding_window`` is every layer's attention window; ``null`` means full attention."""
    return field(f"{MIXER}.window", "sliding_window", Nullable(POSITIVE), default=default)


# transformers' Mistral and Mixtral build every projection with ``bias=False`` and have no key
# to say otherwise: a view with biases names each field it cannot write.
NO_BIASES: dict[str, Line] = {
    "attention_bias": [
        pinned(f"{MIXER}.{name}", False, "no attention biases in this format")
        for name in ("query_bias", "key_value_bias", "dense_bias")
    ],
    "mlp_bias": no_mlp_biases(BLOCK),
}

tree = llama_tree(
    "mistral",
    ["MistralForCausalLM"],
    defaults={"intermediate_size": 14336, "kv_heads": 8},
    **NO_BIASES,
    window=sliding_window(default=4096),
    metadata=metadata(MISTRAL_METADATA),
    extra=generic_keys(),
    rope_interleaved=[],
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
