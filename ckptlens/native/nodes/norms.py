"""Normalization nodes. A norm owns ``weight`` (and ``bias``) of the width it normalizes:
the hidden size in a block or head, the head size for a per-head query/key norm."""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.nodes.fields import Tensors, arch, boolean, positive_float, union


@frozen
class RMSNorm:
    """``x / rms(x) * weight``; with ``unit_offset`` the scale is ``1 + weight`` (Gemma stores
    the difference from one, so a zero tensor is the identity scale). The stored tensor is the
    same either way: the offset is how the function reads it, not a rewrite of the weights."""

    tag: ClassVar[str] = "rms_norm"
    epsilon: float = arch(validator=positive_float)
    unit_offset: bool = arch(default=False, validator=boolean)

    def tensors(self, prefix: str, width: int) -> Tensors:
        yield f"{prefix}.weight", (width,)


@frozen
class LayerNorm:
    tag: ClassVar[str] = "layer_norm"
    epsilon: float = arch(validator=positive_float)
    bias: bool = arch(default=True, validator=boolean)

    def tensors(self, prefix: str, width: int) -> Tensors:
        yield f"{prefix}.weight", (width,)
        if self.bias:
            yield f"{prefix}.bias", (width,)


@frozen
class NoNorm:
    tag: ClassVar[str] = "none"

    def tensors(self, prefix: str, width: int) -> Tensors:
        return iter(())


Normalization = union(RMSNorm, LayerNorm, NoNorm)
