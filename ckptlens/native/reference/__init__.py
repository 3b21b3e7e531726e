"""A plain-torch reference forward pass for the native layout: what the native tensors *mean*.

A bit-exact round trip HF -> native -> HF proves a conversion invertible, not correct: a fused
key/value tensor with its heads in the wrong order round-trips perfectly. This package computes
the logits of a native checkpoint directly from the native tensor names each node declares, so
``ckptlens.verify`` can compare them with transformers' logits.

One module per node family (rotary, norms, attention, mlp, model), parallel to
``ckptlens.native.nodes``; each registers the forward of its node types with
``@forward.register(NodeClass)`` (``dispatch.py``), and the block asks the registry for its
mixer's and feed-forward's forward. Written for clarity, not speed: on the CPU, in the dtype the
caller chose (float32 by default), one small function per concept, no caching, no fused
kernels. The numerical definitions (rotary frequencies, masks, norms, routing) follow
transformers 5.24 exactly, because matching them is the point.

This package imports torch; ``ckptlens`` and ``ckptlens.native`` must never import it.
"""

from ckptlens.native.reference.attention import attention, attention_allowed
from ckptlens.native.reference.dispatch import LENS_NAME, Dispatch, Tensors, forward, linear
from ckptlens.native.reference.latent_attention import latent_attention
from ckptlens.native.reference.mlp import MLPWeights, mlp_forward, moe_forward, route
from ckptlens.native.reference.model import (
    ReferenceModel,
    block_forward,
    tensor_violations,
)
from ckptlens.native.reference.norms import normalize
from ckptlens.native.reference.rotary import (
    RotaryFrequencies,
    plain_inverse_frequencies,
    rotary_frequencies,
    rotate_interleaved,
    yarn_attention_factor,
)

__all__ = [
    "LENS_NAME",
    "Dispatch",
    "MLPWeights",
    "ReferenceModel",
    "RotaryFrequencies",
    "Tensors",
    "attention",
    "attention_allowed",
    "block_forward",
    "forward",
    "latent_attention",
    "linear",
    "mlp_forward",
    "moe_forward",
    "normalize",
    "plain_inverse_frequencies",
    "rotary_frequencies",
    "rotate_interleaved",
    "route",
    "tensor_violations",
    "yarn_attention_factor",
]
