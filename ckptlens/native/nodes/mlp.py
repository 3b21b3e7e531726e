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
from ckptlens.native.nodes.fields import (
    Shape,
    Tensors,
    arch,
    boolean,
    positive_float,
    positive_int,
    union,
)

LAYER_1 = "layer_1"
LAYER_2 = "layer_2"
ROUTER = "router"
EXPERTS = "experts"
SHARED = "shared"
CORRECTION_BIAS = "correction_bias"
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


SCORINGS = ("softmax", "sigmoid")


@frozen
class Router:
    """Top-k routing, general enough for Mixtral and Qwen3-MoE (softmax) and DeepSeek-V3
    (sigmoid, grouped, with a selection-only correction bias).

    ``scores = scoring(router(x))``. Experts are *selected* on ``scores + correction_bias``
    (when ``correction_bias``): cut into ``groups`` equal groups, each scored by the sum of its
    two best selection scores, only the best ``groups_per_token`` groups stay eligible, then the
    top ``experts_per_token`` eligible experts are chosen. Their *weights* are the uncorrected
    ``scores``, renormalised to sum 1 when ``normalize_top_k``, then multiplied by ``scale``.
    """

    normalize_top_k: bool = arch(default=True, validator=boolean)
    bias: bool = arch(default=False, validator=boolean)
    scoring: str = arch(default="softmax")
    correction_bias: bool = arch(default=False, validator=boolean)
    groups: int = arch(default=1, validator=positive_int)
    groups_per_token: int = arch(default=1, validator=positive_int)
    scale: float = arch(default=1.0, validator=positive_float)

    def __attrs_post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {list(SCORINGS)}, got {self.scoring!r}")
        if self.groups_per_token > self.groups:
            raise ValueError(
                f"groups_per_token ({self.groups_per_token}) must not exceed groups ({self.groups})"
            )

    def check_experts(self, experts: int, experts_per_token: int) -> None:
        """The invariants tying the router to its MoE (the MoE validator calls this)."""
        if experts % self.groups:
            raise ValueError(f"experts ({experts}) must divide into groups ({self.groups})")
        per_group = experts // self.groups
        if self.groups > 1 and per_group < 2:
            raise ValueError(
                "a group is scored by its two best experts: each group needs at least 2 "
                f"experts, got {per_group}"
            )
        if experts_per_token > self.groups_per_token * per_group:
            raise ValueError(
                f"experts_per_token ({experts_per_token}) exceeds the {per_group} experts of "
                f"each of groups_per_token ({self.groups_per_token}) groups"
            )


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
        self.router.check_experts(self.experts, self.experts_per_token)

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        yield f"{prefix}.{ROUTER}.weight", (self.experts, hidden)
        if self.router.bias:
            yield f"{prefix}.{ROUTER}.bias", (self.experts,)
        if self.router.correction_bias:
            yield f"{prefix}.{ROUTER}.{CORRECTION_BIAS}", (self.experts,)
        yield from self.expert.tensors(f"{prefix}.{EXPERTS}", hidden, (self.experts,))
        if self.shared_expert is not None:
            yield from self.shared_expert.tensors(f"{prefix}.{SHARED}", hidden)


FeedForward = union(MLP, MoE)
