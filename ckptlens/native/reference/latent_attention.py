"""The multi-head latent attention forward (DeepSeek-V2/V3) over native tensors."""

from __future__ import annotations

import torch

from ckptlens.native.nodes import latent_attention as names
from ckptlens.native.nodes.latent_attention import LatentAttention
from ckptlens.native.nodes.rotary import YarnRotary
from ckptlens.native.reference.attention import attention_allowed, split_heads
from ckptlens.native.reference.dispatch import Tensors, forward, linear
from ckptlens.native.reference.norms import normalize
from ckptlens.native.reference.rotary import rotary_frequencies, rotate_interleaved, yarn_mscale


def latent_softmax_scale(mixer: LatentAttention) -> float:
    """``(nope + rope) ** -0.5``, times the squared yarn ``mscale_all_dim`` factor (the
    attention temperature DeepSeek moves from cos/sin into the softmax)."""
    if mixer.softmax_scale is not None:
        return mixer.softmax_scale
    scale: float = mixer.query_key_head_size**-0.5
    rotary = mixer.rotary
    if isinstance(rotary, YarnRotary) and rotary.mscale_all_dim:
        scale *= yarn_mscale(rotary.factor, rotary.mscale_all_dim) ** 2
    return scale


def latent_queries(
    x: torch.Tensor, mixer: LatentAttention, tensors: Tensors, prefix: str
) -> torch.Tensor:
    """Per-head queries ``[batch, heads, seq, nope + rope]``, full-rank or through the latent."""
    if mixer.query_rank is None:
        flat = linear(x, tensors, f"{prefix}.{names.QUERY}", mixer.query_bias)
    else:
        latent = linear(x, tensors, f"{prefix}.{names.QUERY_A}", mixer.query_bias)
        latent = normalize(latent, mixer.latent_norm, tensors, f"{prefix}.{names.QUERY_NORM}")
        flat = linear(latent, tensors, f"{prefix}.{names.QUERY_B}", False)
    return split_heads(flat, mixer.heads, mixer.query_key_head_size)


@forward.register(LatentAttention)
def latent_attention(
    mixer: LatentAttention, x: torch.Tensor, tensors: Tensors, prefix: str
) -> torch.Tensor:
    """Scores are a non-rotary part (per-head keys decoded from the latent) plus a rotary part
    (per-head rotary queries against one rotary key shared by all heads)."""
    nope, rope, value_size = mixer.nope_head_size, mixer.rope_head_size, mixer.value_head_size
    query_nope, query_rope = latent_queries(x, mixer, tensors, prefix).split([nope, rope], -1)
    compressed = linear(x, tensors, f"{prefix}.{names.KEY_VALUE_A}", mixer.key_value_bias)
    latent, key_rope = compressed.split([mixer.key_value_rank, rope], dim=-1)
    latent = normalize(latent, mixer.latent_norm, tensors, f"{prefix}.{names.KEY_VALUE_NORM}")
    decoded = linear(latent, tensors, f"{prefix}.{names.KEY_VALUE_B}", False)
    key_nope, value = split_heads(decoded, mixer.heads, nope + value_size).split(
        [nope, value_size], dim=-1
    )
    frequencies = rotary_frequencies(mixer.rotary, rope, x.shape[1], x.dtype)
    query_rope = rotate_interleaved(query_rope, frequencies)
    key_rope = rotate_interleaved(key_rope[:, None], frequencies)  # [batch, 1, seq, rope]
    scores = query_nope @ key_nope.transpose(-1, -2) + query_rope @ key_rope.transpose(-1, -2)
    scores = scores * latent_softmax_scale(mixer)
    allowed = attention_allowed(x.shape[1], causal=True, window=None)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    mixed = (weights @ value).transpose(1, 2).flatten(-2)
    return linear(mixed, tensors, f"{prefix}.{names.DENSE}", mixer.dense_bias)
