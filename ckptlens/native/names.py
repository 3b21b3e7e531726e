"""Native tensor names and shapes, derived from a native ``Model`` alone.

Each node knows its own tensors (``node.tensors(prefix, width)``, beside its class in
``ckptlens.native.nodes``); this module only walks the model and re-exports the top-level
names. The native layout fuses what a training framework fuses: the fused key/value
projection, gate and up stacked in ``layer_1``, experts stacked on a leading dimension, query
and key rows in the interleaved rotary order. Shapes are ``(out, in)`` like ``torch.nn.Linear``.
"""

from __future__ import annotations

from ckptlens.native.nodes.decoders import block_prefix
from ckptlens.native.nodes.fields import Shape
from ckptlens.native.nodes.model import (
    EMBEDDINGS,
    FINAL_NORM,
    OUTPUT,
    Model,
    prediction_head_prefix,
)

__all__ = [
    "EMBEDDINGS",
    "FINAL_NORM",
    "OUTPUT",
    "Shape",
    "block_prefix",
    "model_tensors",
    "prediction_head_prefix",
]


def model_tensors(model: Model) -> dict[str, Shape]:
    """Every native tensor name of ``model`` with its shape, in a stable order."""
    return dict(model.tensors())
