"""HF tensor naming, one piece per native node type, assembled by each format module.

A format module declares its weights next to its config table, for example::

    WEIGHTS = hf.decoder("model.layers.{i}", mixer=hf.attention("self_attn"), mlp=hf.moe())
    FORMAT = declare("mixtral", tree, ("MixtralForCausalLM",), weights=WEIGHTS)

Pieces: ``norm`` (norms.py), ``attention`` (attention.py), ``latent_attention``
(latent_attention.py), ``mlp`` (mlp.py), ``fused_attention`` and ``fused_mlp`` (fused.py:
Phi-3's ``qkv_proj``/``gate_up_proj``), ``moe`` in both
expert layouts (moe.py), ``head`` and ``decoder`` (decoder.py). A new node type is one new
piece module; a new format only picks pieces. Importing this package imports neither torch,
numpy nor ``ckptlens.weights`` (loaded when a lens is first built).
"""

from ckptlens.formats.hf_weights.attention import AttentionWeights, attention
from ckptlens.formats.hf_weights.decoder import (
    BlockWeights,
    DecoderWeights,
    HeadWeights,
    decoder,
    head,
)
from ckptlens.formats.hf_weights.fused import (
    FusedAttentionWeights,
    FusedMLPWeights,
    fused_attention,
    fused_mlp,
)
from ckptlens.formats.hf_weights.latent_attention import LatentAttentionWeights, latent_attention
from ckptlens.formats.hf_weights.mlp import GatedMLPWeights, mlp
from ckptlens.formats.hf_weights.moe import QWEN2_MOE, MoEWeights, moe
from ckptlens.formats.hf_weights.norms import NormWeights, norm
from ckptlens.formats.hf_weights.pieces import FUSED, MOE_LAYOUTS, PER_EXPERT, Options, Piece

__all__ = [
    "FUSED",
    "MOE_LAYOUTS",
    "PER_EXPERT",
    "QWEN2_MOE",
    "AttentionWeights",
    "BlockWeights",
    "DecoderWeights",
    "FusedAttentionWeights",
    "FusedMLPWeights",
    "GatedMLPWeights",
    "HeadWeights",
    "LatentAttentionWeights",
    "MoEWeights",
    "NormWeights",
    "Options",
    "Piece",
    "attention",
    "decoder",
    "fused_attention",
    "fused_mlp",
    "head",
    "latent_attention",
    "mlp",
    "moe",
    "norm",
]
