"""The native architecture schema: what a decoder language model *is*, free of any HF spelling.

The node classes live one family per module in ``ckptlens.native.nodes`` (rotary, norms,
attention, mixers, mlp, decoders, model); this module is the stable public path that
re-exports them. Every class is a frozen attrs class whose fields are marked architecture or
metadata (``nodes.fields``). Unions are tagged by the class attribute ``tag``, which the
converter writes as ``"type"`` in the unstructured dict; each union is declared once with
``nodes.fields.union``, which also records it in ``UNION_MEMBERS``. Validators state the
invariants; a violating instance cannot be built.
"""

from __future__ import annotations

from ckptlens.native.nodes.attention import Attention
from ckptlens.native.nodes.decoders import Block, Decoder, FixedDecoder, PatternDecoder
from ckptlens.native.nodes.fields import ARCHITECTURE, METADATA, UNION_MEMBERS, arch, meta
from ckptlens.native.nodes.latent_attention import LatentAttention
from ckptlens.native.nodes.mixers import Mixer
from ckptlens.native.nodes.mlp import ACTIVATIONS, MLP, FeedForward, MoE, Router
from ckptlens.native.nodes.model import Head, Metadata, Model, TokenIds
from ckptlens.native.nodes.norms import LayerNorm, NoNorm, Normalization, RMSNorm
from ckptlens.native.nodes.rotary import (
    DefaultRotary,
    DynamicNTKRotary,
    LinearRotary,
    Llama3Rotary,
    LongRopeRotary,
    NoRotary,
    Rotary,
    YarnRotary,
)

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURE",
    "METADATA",
    "MLP",
    "UNION_MEMBERS",
    "Attention",
    "Block",
    "Decoder",
    "DefaultRotary",
    "DynamicNTKRotary",
    "FeedForward",
    "FixedDecoder",
    "Head",
    "LatentAttention",
    "LayerNorm",
    "LinearRotary",
    "Llama3Rotary",
    "LongRopeRotary",
    "Metadata",
    "Mixer",
    "MoE",
    "Model",
    "NoNorm",
    "NoRotary",
    "Normalization",
    "PatternDecoder",
    "RMSNorm",
    "Rotary",
    "Router",
    "TokenIds",
    "YarnRotary",
    "arch",
    "meta",
]
