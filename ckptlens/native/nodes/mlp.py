"""Position-wise feed-forward nodes: the MLP, the router and the mixture of experts.

Native layout: ``layer_1.weight`` is the input projection (gate rows then up rows when
gated), ``layer_2.weight`` the output projection; an MoE has ``router.weight`` ``[experts,
hidden]``, its experts stacked on a leading expert dimension under ``experts.``, and an
optional always-on expert under ``shared.``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
from attrs import frozen

from ckptlens.native.bounds import count
from ckptlens.native.nodes.fields import Shape, Tensors, arch, boolean, positive_int, union

LAYER_1 = "layer_1"
LAYER_2 = "layer_2"
ROUTER = "router"
EXPERTS = "experts"
SHARED = "shared"
ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "relu")


def _activation(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in ACTIVATIONS:
        raise ValueError(f"{attribute.name} must be one of {list(ACTIVATIONS)}, got {value!r}")


@frozen
class MLP:
    """A two-layer MLP. ``layer_1`` is the input projection (gate and up fused when gated),
    ``layer_2`` the output projection; each has its own bias switch."""

    tag: ClassVar[str] = "mlp"
    intermediate_size: int = arch(validator=positive_int)
    gated: bool = arch(default=True, validator=boolean)
    activation: str = arch(default="silu", validator=_activation)
    layer_1_bias: bool = arch(default=False, validator=boolean)
    layer_2_bias: bool = arch(default=False, validator=boolean)

    def tensors(self, prefix: str, hidden: int, experts: Shape = ()) -> Tensors:
        """``experts`` is the leading stacking dimension of an MoE's experts (empty for one)."""
        width = (2 if self.gated else 1) * self.intermediate_size
        yield f"{prefix}.{LAYER_1}.weight", (*experts, width, hidden)
        if self.layer_1_bias:
            yield f"{prefix}.{LAYER_1}.bias", (*experts, width)
        yield f"{prefix}.{LAYER_2}.weight", (*experts, hidden, self.intermediate_size)
        if self.layer_2_bias:
            yield f"{prefix}.{LAYER_2}.bias", (*experts, hidden)


@frozen
class Router:
    """Top-k softmax routing. ``normalize_top_k`` renormalises the selected weights to sum to 1."""

    normalize_top_k: bool = arch(default=True, validator=boolean)
    bias: bool = arch(default=False, validator=boolean)


@frozen
class MoE:
    """A mixture of identical expert MLPs, with optional always-on shared expert."""

    tag: ClassVar[str] = "moe"
    experts: int = arch(validator=count)
    experts_per_token: int = arch(validator=positive_int)
    expert: MLP = arch()
    router: Router = arch(factory=Router)
    shared_expert: MLP | None = arch(default=None)

    def __attrs_post_init__(self) -> None:
        if self.experts_per_token > self.experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) must not exceed "
                f"experts ({self.experts})"
            )

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        yield f"{prefix}.{ROUTER}.weight", (self.experts, hidden)
        if self.router.bias:
            yield f"{prefix}.{ROUTER}.bias", (self.experts,)
        yield from self.expert.tensors(f"{prefix}.{EXPERTS}", hidden, (self.experts,))
        if self.shared_expert is not None:
            yield from self.shared_expert.tensors(f"{prefix}.{SHARED}", hidden)


FeedForward = union(MLP, MoE)
