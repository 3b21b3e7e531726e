"""Rotary position embeddings: which frequencies rotate the query/key channel pairs.

Rotary nodes own no tensors; the reference computes their frequencies
(``ckptlens.native.reference.rotary``). Every rotary type has a ``fraction``: the share of each
head's features that rotate (``int(head_size * fraction)`` leading features, as transformers
computes ``partial_rotary_factor``); the rest pass through unrotated. 1.0 rotates the whole head.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.nodes.fields import (
    arch,
    boolean,
    finite_floats,
    optional,
    positive_float,
    positive_int,
    share,
    union,
)


@frozen
class NoRotary:
    """No rotary embedding (NoPE layers, or models with learned absolute positions)."""

    tag: ClassVar[str] = "none"


@frozen
class DefaultRotary:
    """Plain RoPE with base ``theta``."""

    tag: ClassVar[str] = "default"
    theta: float = arch(validator=positive_float)
    fraction: float = arch(default=1.0, validator=share)


@frozen
class LinearRotary:
    """Position interpolation: positions are divided by ``factor``."""

    tag: ClassVar[str] = "linear"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    fraction: float = arch(default=1.0, validator=share)


@frozen
class DynamicNTKRotary:
    """Dynamic NTK scaling: the base grows once a sequence exceeds ``original_context_length``."""

    tag: ClassVar[str] = "dynamic"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    original_context_length: int = arch(validator=positive_int)
    fraction: float = arch(default=1.0, validator=share)


@frozen
class Llama3Rotary:
    """Llama 3.1 frequency-band scaling."""

    tag: ClassVar[str] = "llama3"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    low_frequency_factor: float = arch(validator=positive_float)
    high_frequency_factor: float = arch(validator=positive_float)
    original_context_length: int = arch(validator=positive_int)
    fraction: float = arch(default=1.0, validator=share)

    def __attrs_post_init__(self) -> None:
        if self.high_frequency_factor <= self.low_frequency_factor:
            raise ValueError(
                "high_frequency_factor must be greater than low_frequency_factor, got "
                f"{self.high_frequency_factor} <= {self.low_frequency_factor}"
            )


@frozen
class YarnRotary:
    """YaRN scaling. Optional fields are ``None`` where the model uses the method's own default."""

    tag: ClassVar[str] = "yarn"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    original_context_length: int = arch(validator=positive_int)
    attention_factor: float | None = arch(default=None, validator=optional(positive_float))
    beta_fast: float | None = arch(default=None, validator=optional(positive_float))
    beta_slow: float | None = arch(default=None, validator=optional(positive_float))
    mscale: float | None = arch(default=None, validator=optional(positive_float))
    mscale_all_dim: float | None = arch(default=None, validator=optional(positive_float))
    truncate: bool | None = arch(default=None, validator=optional(boolean))
    fraction: float = arch(default=1.0, validator=share)


@frozen
class LongRopeRotary:
    """LongRoPE (Phi-3; ``su`` in its first configs): each rotated pair i has its frequency
    divided by ``short_factor[i]`` while a sequence fits ``original_context_length`` and by
    ``long_factor[i]`` beyond it (transformers picks by the current sequence length). cos and
    sin are scaled by ``attention_factor``, or, when it is ``None``, by
    ``sqrt(1 + ln(factor) / ln(original_context_length))`` (1 when ``factor <= 1``)."""

    tag: ClassVar[str] = "longrope"
    theta: float = arch(validator=positive_float)
    short_factor: tuple[float, ...] = arch(validator=finite_floats)
    long_factor: tuple[float, ...] = arch(validator=finite_floats)
    original_context_length: int = arch(validator=positive_int)
    factor: float = arch(validator=positive_float)
    attention_factor: float | None = arch(default=None, validator=optional(positive_float))
    fraction: float = arch(default=1.0, validator=share)

    def __attrs_post_init__(self) -> None:
        if len(self.short_factor) != len(self.long_factor):
            raise ValueError(
                f"short_factor and long_factor need one entry per rotated pair, got "
                f"{len(self.short_factor)} and {len(self.long_factor)}"
            )


Rotary = union(
    NoRotary,
    DefaultRotary,
    LinearRotary,
    DynamicNTKRotary,
    Llama3Rotary,
    YarnRotary,
    LongRopeRotary,
)


def rotated_size(rotary: Rotary, head_size: int) -> int:
    """How many leading features of a head rotate (transformers' ``int(head_dim * factor)``)."""
    if isinstance(rotary, NoRotary):
        return 0
    return int(head_size * rotary.fraction)
