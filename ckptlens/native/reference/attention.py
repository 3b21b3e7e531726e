"""The attention forward: grouped-query attention over native (interleaved) rows."""

from __future__ import annotations

import torch

from ckptlens.native.nodes.attention import (
    DENSE,
    KEY_NORM,
    KEY_VALUE,
    PER_HEAD,
    QUERY,
    QUERY_NORM,
    WHOLE_PROJECTION,
    Attention,
)
from ckptlens.native.nodes.rotary import NoRotary, rotated_size
from ckptlens.native.reference.dispatch import Tensors, forward, linear
from ckptlens.native.reference.norms import normalize, softcap
from ckptlens.native.reference.rotary import rotary_frequencies, rotate_interleaved


def attention_allowed(seq_len: int, causal: bool, window: int | None) -> torch.Tensor:
    """Boolean ``[query, key]`` matrix of the key positions each query position may attend to.

    As in transformers, a causal ``window`` of W lets a token see itself and the W - 1 tokens
    before it (``key > query - W``). Without causality the window is symmetric (``|q - k| < W``).
    """
    query = torch.arange(seq_len)[:, None]
    key = torch.arange(seq_len)[None, :]
    allowed = key <= query if causal else torch.ones(seq_len, seq_len, dtype=torch.bool)
    if window is not None:
        allowed = allowed & ((query - key).abs() < window)
    return allowed


def split_heads(x: torch.Tensor, heads: int, head_size: int) -> torch.Tensor:
    """``[batch, seq, heads * head_size]`` -> ``[batch, heads, seq, head_size]``."""
    batch, seq, _ = x.shape
    return x.view(batch, seq, heads, head_size).transpose(1, 2)


@forward.register(Attention)
def attention(mixer: Attention, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    """Grouped-query attention: query head h reads key/value head ``h // (heads / kv_heads)``.

    A query/key norm normalizes before rotary, each head's features (Qwen3) or the whole
    projection (OLMo 2); RMS is blind to the order of features, and its weights are stored
    in the same interleaved order as the rows, so it applies unchanged to interleaved rows."""
    size = mixer.head_size
    queries = linear(x, tensors, f"{prefix}.{QUERY}", mixer.query_bias)
    key_value = linear(x, tensors, f"{prefix}.{KEY_VALUE}", mixer.key_value_bias)
    keys, values = key_value.split(mixer.kv_heads * size, dim=-1)  # all keys, then all values
    if mixer.query_key_norm is not None and mixer.query_key_norm_scope == WHOLE_PROJECTION:
        queries = normalize(queries, mixer.query_key_norm, tensors, f"{prefix}.{QUERY_NORM}")
        keys = normalize(keys, mixer.query_key_norm, tensors, f"{prefix}.{KEY_NORM}")
    query = split_heads(queries, mixer.heads, size)
    key = split_heads(keys, mixer.kv_heads, size)
    value = split_heads(values, mixer.kv_heads, size)
    if mixer.query_key_norm is not None and mixer.query_key_norm_scope == PER_HEAD:
        query = normalize(query, mixer.query_key_norm, tensors, f"{prefix}.{QUERY_NORM}")
        key = normalize(key, mixer.query_key_norm, tensors, f"{prefix}.{KEY_NORM}")
    if not isinstance(mixer.rotary, NoRotary):
        rotated = rotated_size(mixer.rotary, size)  # partial rotary: the leading features only
        frequencies = rotary_frequencies(mixer.rotary, rotated, x.shape[1], x.dtype)
        query = rotate_interleaved(query, frequencies)
        key = rotate_interleaved(key, frequencies)
    group = mixer.heads // mixer.kv_heads
    key = key.repeat_interleave(group, dim=1)
    value = value.repeat_interleave(group, dim=1)
    scale = size**-0.5 if mixer.softmax_scale is None else mixer.softmax_scale
    scores = softcap(query @ key.transpose(-1, -2) * scale, mixer.logit_softcap)
    allowed = attention_allowed(x.shape[1], mixer.causal, mixer.window)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    mixed = (weights @ value).transpose(1, 2).flatten(-2)
    return linear(mixed, tensors, f"{prefix}.{DENSE}", mixer.dense_bias)
