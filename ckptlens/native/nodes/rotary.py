"""Rotary position embeddings: which frequencies rotate the query/key channel pairs.

Rotary nodes own no tensors; the reference computes their frequencies
(``ckptlens.native.reference.rotary``).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.nodes.fields import (
    arch,
    boolean,
    optional,
    positive_float,
    positive_int,
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


@frozen
class LinearRotary:
    """Position interpolation: positions are divided by ``factor``."""

    tag: ClassVar[str] = "linear"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)


@frozen
class DynamicNTKRotary:
    """Dynamic NTK scaling: the base grows once a sequence exceeds ``original_context_length``."""

    tag: ClassVar[str] = "dynamic"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    original_context_length: int = arch(validator=positive_int)


@frozen
class Llama3Rotary:
    """Llama 3.1 frequency-band scaling."""

    tag: ClassVar[str] = "llama3"
    theta: float = arch(validator=positive_float)
    factor: float = arch(validator=positive_float)
    low_frequency_factor: float = arch(validator=positive_float)
    high_frequency_factor: float = arch(validator=positive_float)
    original_context_length: int = arch(validator=positive_int)

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


Rotary = union(NoRotary, DefaultRotary, LinearRotary, DynamicNTKRotary, Llama3Rotary, YarnRotary)
