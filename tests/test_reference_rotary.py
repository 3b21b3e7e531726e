"""The reference model's rotary embeddings agree with transformers' own definitions."""

from __future__ import annotations

import attrs
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

from ckptlens.native.config import (
    DefaultRotary,
    DynamicNTKRotary,
    LinearRotary,
    Llama3Rotary,
    Rotary,
    YarnRotary,
)
from ckptlens.native.reference import RotaryFrequencies, rotary_frequencies, rotate_interleaved

thetas = st.sampled_from([10_000.0, 500_000.0, 1_000_000.0, 1234.5])
factors = st.floats(1.0, 64.0)
contexts = st.sampled_from([16, 128, 4096, 8192])
head_sizes = st.sampled_from([8, 16, 64, 128])
optional_positive = st.none() | st.floats(0.1, 4.0)


@st.composite
def llama3_rotaries(draw: st.DrawFn) -> Llama3Rotary:
    low = draw(st.floats(0.5, 4.0))
    return Llama3Rotary(
        draw(thetas), draw(factors), low, low + draw(st.floats(0.5, 8.0)), draw(contexts)
    )


yarn_rotaries = st.builds(
    YarnRotary,
    theta=thetas,
    factor=factors,
    original_context_length=contexts,
    attention_factor=optional_positive,
    beta_fast=st.none() | st.floats(8.0, 64.0),
    beta_slow=st.none() | st.floats(0.5, 2.0),
    mscale=optional_positive,
    mscale_all_dim=optional_positive,
    truncate=st.none() | st.booleans(),
)
scaled_rotaries = st.one_of(
    st.builds(LinearRotary, thetas, factors),
    st.builds(DynamicNTKRotary, thetas, factors, contexts),
    llama3_rotaries(),
    yarn_rotaries,
)

RENAMED_KEYS = {
    "theta": "rope_theta",
    "original_context_length": "original_max_position_embeddings",
    "low_frequency_factor": "low_freq_factor",
    "high_frequency_factor": "high_freq_factor",
}


def hf_config(rotary: Rotary, head_size: int) -> LlamaConfig:
    """A Llama config whose ``rope_parameters`` state ``rotary`` in transformers' terms."""
    fields = {RENAMED_KEYS.get(k, k): v for k, v in attrs.asdict(rotary).items() if v is not None}
    max_positions = 64
    if isinstance(rotary, DynamicNTKRotary):
        # transformers' dynamic NTK scales from `max_position_embeddings`, not from a rope key
        max_positions = fields.pop("original_max_position_embeddings")
    elif "original_max_position_embeddings" in fields:
        max_positions = 4 * fields["original_max_position_embeddings"]
    return LlamaConfig(
        hidden_size=2 * head_size,
        num_attention_heads=2,
        head_dim=head_size,
        max_position_embeddings=max_positions,
        rope_parameters={"rope_type": rotary.tag, **fields},
    )


def hf_frequencies(rotary: Rotary, head_size: int, seq_len: int) -> tuple[torch.Tensor, float]:
    config = hf_config(rotary, head_size)
    if isinstance(rotary, DefaultRotary):
        return LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    return ROPE_INIT_FUNCTIONS[rotary.tag](config, None, seq_len=seq_len)


def assert_same_frequencies(ours: RotaryFrequencies, theirs: tuple[torch.Tensor, float]) -> None:
    inverse, scaling = theirs
    torch.testing.assert_close(ours.inverse, inverse, rtol=1e-6, atol=0.0)
    assert ours.attention_scaling == pytest.approx(scaling, rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(rotary=scaled_rotaries, head_size=head_sizes, seq_len=st.integers(1, 20_000))
def test_scaled_frequencies_match_transformers(
    rotary: Rotary, head_size: int, seq_len: int
) -> None:
    ours = rotary_frequencies(rotary, head_size, seq_len)
    assert_same_frequencies(ours, hf_frequencies(rotary, head_size, seq_len))


@pytest.mark.parametrize("theta", [10_000.0, 500_000.0])
def test_default_frequencies_match_transformers(theta: float) -> None:
    rotary = DefaultRotary(theta)
    ours = rotary_frequencies(rotary, 64, seq_len=10)
    assert_same_frequencies(ours, hf_frequencies(rotary, 64, seq_len=10))


def test_dynamic_ntk_changes_only_past_the_original_context() -> None:
    rotary = DynamicNTKRotary(10_000.0, 4.0, original_context_length=16)
    plain = rotary_frequencies(DefaultRotary(10_000.0), 16, 16).inverse
    assert torch.equal(rotary_frequencies(rotary, 16, 16).inverse, plain)
    longer = rotary_frequencies(rotary, 16, 17).inverse
    assert (longer[1:] < plain[1:]).all()  # a larger base: every pair but the first slows down


def test_yarn_attention_factor_is_applied_to_cos_and_sin() -> None:
    rotary = YarnRotary(10_000.0, 8.0, 64, attention_factor=1.5)
    frequencies = rotary_frequencies(rotary, 16, 4)
    assert frequencies.attention_scaling == 1.5
    x = torch.ones(1, 1, 1, 16)  # position 0: no rotation, only the scale
    torch.testing.assert_close(rotate_interleaved(x, frequencies), 1.5 * x)


def half_split_to_interleaved(x: torch.Tensor) -> torch.Tensor:
    """Reorder the last dimension from HF's (i, i + d/2) pairing to native (2i, 2i + 1)."""
    half = x.shape[-1] // 2
    return torch.stack((x[..., :half], x[..., half:]), dim=-1).flatten(-2)


@pytest.mark.parametrize(
    "rotary",
    [
        DefaultRotary(10_000.0),
        YarnRotary(10_000.0, 4.0, 8),
        Llama3Rotary(500_000.0, 8.0, 1.0, 4.0, 8),
    ],
)
def test_interleaved_rotation_is_transformers_rotation_reordered(rotary: Rotary) -> None:
    head_size, seq_len = 16, 12
    query, key = torch.randn(
        2, 2, 3, seq_len, head_size, generator=torch.Generator().manual_seed(1)
    )
    frequencies = rotary_frequencies(rotary, head_size, seq_len)
    embedding = LlamaRotaryEmbedding(hf_config(rotary, head_size))
    cos, sin = embedding(query, torch.arange(seq_len)[None])
    hf_query, hf_key = apply_rotary_pos_emb(query, key, cos, sin)
    for before, after in ((query, hf_query), (key, hf_key)):
        ours = rotate_interleaved(half_split_to_interleaved(before), frequencies)
        torch.testing.assert_close(ours, half_split_to_interleaved(after), rtol=1e-5, atol=1e-6)
