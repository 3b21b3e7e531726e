"""Normalization forwards. They normalize the last dimension, whatever its width, so the same
RMSNorm serves a block (hidden size) and a per-head query/key norm (head size)."""

from __future__ import annotations

import torch
from torch.nn import functional

from ckptlens.native.nodes.norms import LayerNorm, NoNorm, Normalization, RMSNorm
from ckptlens.native.reference.dispatch import Tensors, forward


@forward.register(NoNorm)
def _no_norm(norm: NoNorm, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    return x


@forward.register(RMSNorm)
def _rms_norm(norm: RMSNorm, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    weight = tensors[f"{prefix}.weight"]
    scale = 1.0 + weight if norm.unit_offset else weight
    return scale * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm.epsilon))


@forward.register(LayerNorm)
def _layer_norm(norm: LayerNorm, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    weight = tensors[f"{prefix}.weight"]
    bias = tensors.get(f"{prefix}.bias") if norm.bias else None
    return functional.layer_norm(x, (x.shape[-1],), weight, bias, norm.epsilon)


def normalize(x: torch.Tensor, norm: Normalization, tensors: Tensors, prefix: str) -> torch.Tensor:
    """``norm`` applied to ``x`` with its tensors under ``prefix``."""
    result: torch.Tensor = forward(norm, x, tensors, prefix)
    return result


def softcap(x: torch.Tensor, cap: float | None) -> torch.Tensor:
    """``cap * tanh(x / cap)``: values bounded to ``(-cap, cap)`` (``None``: unchanged)."""
    return x if cap is None else torch.tanh(x / cap) * cap
