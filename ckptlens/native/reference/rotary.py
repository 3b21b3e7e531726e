"""Rotary frequencies, one function per rotary node type, and the interleaved rotation.

The frequency definitions follow transformers 5.24 exactly (computed in float32 there; here
in the caller's dtype, float32 by default, so a float64 reference is float64 throughout).
"""

from __future__ import annotations

import math

import torch
from attrs import frozen

from ckptlens.native.nodes.rotary import (
    DefaultRotary,
    DynamicNTKRotary,
    LinearRotary,
    Llama3Rotary,
    LongRopeRotary,
    Rotary,
    YarnRotary,
)
from ckptlens.native.reference.dispatch import Dispatch


@frozen(eq=False)  # tensors have no boolean equality
class RotaryFrequencies:
    """Per-pair inverse frequencies and the factor applied to both cos and sin (yarn only)."""

    inverse: torch.Tensor
    attention_scaling: float = 1.0


frequencies = Dispatch("rotary frequency")
"""``frequencies(rotary, head_size, seq_len, dtype) -> RotaryFrequencies``."""


def plain_inverse_frequencies(
    theta: float, head_size: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``theta ** (-2i / head_size)`` for each rotated pair i (float32 like transformers)."""
    exponents = torch.arange(0, head_size, 2, dtype=torch.int64).to(dtype) / head_size
    return 1.0 / (theta**exponents)


def rotary_frequencies(
    rotary: Rotary, head_size: int, seq_len: int, dtype: torch.dtype = torch.float32
) -> RotaryFrequencies:
    """The frequencies ``rotary`` uses for a sequence of ``seq_len`` tokens.

    Only dynamic NTK depends on ``seq_len``: transformers recomputes its base from the longest
    position of the current forward pass (the state of a fresh model, no earlier longer call).
    """
    result: RotaryFrequencies = frequencies(rotary, head_size, seq_len, dtype)
    return result


@frequencies.register(DefaultRotary)
def _default(
    rotary: DefaultRotary, head_size: int, _: int, dtype: torch.dtype
) -> RotaryFrequencies:
    return RotaryFrequencies(plain_inverse_frequencies(rotary.theta, head_size, dtype))


@frequencies.register(LinearRotary)
def _linear(rotary: LinearRotary, head_size: int, _: int, dtype: torch.dtype) -> RotaryFrequencies:
    inverse = plain_inverse_frequencies(rotary.theta, head_size, dtype)
    return RotaryFrequencies(inverse / rotary.factor)


@frequencies.register(DynamicNTKRotary)
def _dynamic_ntk(
    rotary: DynamicNTKRotary, head_size: int, seq_len: int, dtype: torch.dtype
) -> RotaryFrequencies:
    # Up to the original context the base is unchanged (the scale below is exactly 1).
    length = max(seq_len, rotary.original_context_length)
    scale = rotary.factor * length / rotary.original_context_length - (rotary.factor - 1)
    base = rotary.theta * scale ** (head_size / (head_size - 2))
    return RotaryFrequencies(plain_inverse_frequencies(base, head_size, dtype))


@frequencies.register(Llama3Rotary)
def _llama3(rotary: Llama3Rotary, head_size: int, _: int, dtype: torch.dtype) -> RotaryFrequencies:
    inverse = plain_inverse_frequencies(rotary.theta, head_size, dtype)
    context = rotary.original_context_length
    low_frequency_wavelength = context / rotary.low_frequency_factor
    high_frequency_wavelength = context / rotary.high_frequency_factor
    wavelength = 2 * math.pi / inverse
    # Long wavelengths are interpolated by the full factor, short ones kept, the band between
    # blended linearly in 1/wavelength.
    scaled = torch.where(wavelength > low_frequency_wavelength, inverse / rotary.factor, inverse)
    smooth = (context / wavelength - rotary.low_frequency_factor) / (
        rotary.high_frequency_factor - rotary.low_frequency_factor
    )
    blended = (1 - smooth) * scaled / rotary.factor + smooth * scaled
    in_band = (wavelength >= high_frequency_wavelength) & (wavelength <= low_frequency_wavelength)
    return RotaryFrequencies(torch.where(in_band, blended, scaled))


def yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def yarn_attention_factor(rotary: YarnRotary) -> float:
    """The cos/sin scale; transformers uses the mscale ratio only when both mscales are set."""
    if rotary.attention_factor is not None:
        return rotary.attention_factor
    if rotary.mscale and rotary.mscale_all_dim:
        return yarn_mscale(rotary.factor, rotary.mscale) / yarn_mscale(
            rotary.factor, rotary.mscale_all_dim
        )
    return yarn_mscale(rotary.factor)


def _yarn_correction_dimension(
    rotations: float, head_size: int, theta: float, context: int
) -> float:
    """The (fractional) pair index whose wavelength fits ``rotations`` times in ``context``."""
    return head_size * math.log(context / (rotations * 2 * math.pi)) / (2 * math.log(theta))


@frequencies.register(YarnRotary)
def _yarn(rotary: YarnRotary, head_size: int, _: int, dtype: torch.dtype) -> RotaryFrequencies:
    beta_fast = 32.0 if rotary.beta_fast is None else rotary.beta_fast
    beta_slow = 1.0 if rotary.beta_slow is None else rotary.beta_slow
    truncate = True if rotary.truncate is None else rotary.truncate
    context = rotary.original_context_length
    low = _yarn_correction_dimension(beta_fast, head_size, rotary.theta, context)
    high = _yarn_correction_dimension(beta_slow, head_size, rotary.theta, context)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_size - 1)
    if low == high:
        high += 0.001  # transformers' guard against a zero-width ramp
    ramp = ((torch.arange(head_size // 2, dtype=dtype) - low) / (high - low)).clamp(0, 1)
    extrapolated = plain_inverse_frequencies(rotary.theta, head_size, dtype)
    interpolated = extrapolated / rotary.factor
    # Pairs below `low` rotate fast enough to keep their frequency; above `high`, interpolate.
    inverse = interpolated * ramp + extrapolated * (1 - ramp)
    return RotaryFrequencies(inverse, yarn_attention_factor(rotary))


@frequencies.register(LongRopeRotary)
def _longrope(
    rotary: LongRopeRotary, head_size: int, seq_len: int, dtype: torch.dtype
) -> RotaryFrequencies:
    # transformers switches to the long factors once the current sequence is longer than the
    # original context (its forward pass's largest position + 1), whatever the configured
    # maximum length; the attention factor is the same for both.
    long = seq_len > rotary.original_context_length
    factors = torch.tensor(rotary.long_factor if long else rotary.short_factor, dtype=dtype)
    exponents = torch.arange(0, head_size, 2, dtype=torch.int64).to(dtype) / head_size
    inverse = 1.0 / (factors * rotary.theta**exponents)
    return RotaryFrequencies(inverse, longrope_attention_factor(rotary))


def longrope_attention_factor(rotary: LongRopeRotary) -> float:
    if rotary.attention_factor is not None:
        return rotary.attention_factor
    if rotary.factor <= 1.0:
        return 1.0
    return math.sqrt(1 + math.log(rotary.factor) / math.log(rotary.original_context_length))


def rotate_interleaved(x: torch.Tensor, frequencies: RotaryFrequencies) -> torch.Tensor:
    """Rotate ``x`` ``[..., seq, head_size]`` at positions ``0..seq-1``.

    Native rows are interleaved: features ``(2i, 2i+1)`` form the pair rotated by frequency i.
    With fewer frequencies than pairs (partial rotary), the features past ``2 * len(inverse)``
    pass through unrotated.
    """
    rotated = 2 * frequencies.inverse.shape[0]
    if rotated < x.shape[-1]:
        head, rest = x[..., :rotated], x[..., rotated:]
        return torch.cat((rotate_interleaved(head, frequencies), rest), dim=-1)
    positions = torch.arange(x.shape[-2], dtype=frequencies.inverse.dtype)
    angles = positions[:, None] * frequencies.inverse[None, :]
    cos = angles.cos() * frequencies.attention_scaling
    sin = angles.sin() * frequencies.attention_scaling
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1)
    return rotated.flatten(-2)
