"""Multi-head attention with grouped key/value heads: the node and its native tensors.

Native layout: ``query.weight`` ``[heads * head_size, hidden]``; ``key_value.weight``
``[2 * kv_heads * head_size, hidden]`` (all keys, then all values); ``dense.weight``
``[hidden, heads * head_size]``. Query and key rows are stored in the *interleaved* rotary
order (pairs ``(2i, 2i+1)`` rotate together); HF stores the half-split order (``i`` with
``i + head_size/2``). The optional per-head query/key norms (Qwen3) normalize each head's
``head_size`` features before rotary; their weights are in the same interleaved order.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.nodes.fields import (
    Tensors,
    arch,
    boolean,
    one_of,
    optional,
    positive_float,
    positive_int,
)
from ckptlens.native.nodes.norms import RMSNorm
from ckptlens.native.nodes.rotary import NoRotary, Rotary

QUERY = "query"
KEY_VALUE = "key_value"
DENSE = "dense"
QUERY_NORM = "query_norm"
KEY_NORM = "key_norm"


@frozen
class Attention:
    """Multi-head attention with grouped key/value heads.

    Biases follow the native tensor layout: the query projection, the fused key/value
    projection and the output (dense) projection each have their own bias switch.
    ``softmax_scale`` is ``None`` for the usual ``head_size ** -0.5``. ``query_key_norm`` is
    an RMSNorm applied per head to queries and keys before rotary (Qwen3), with its own
    weights for queries and for keys; ``None`` for none. ``logit_softcap`` C bounds the
    scaled scores to ``C * tanh(s / C)`` before masking and softmax (Gemma 2); ``None``: none.
    """

    tag: ClassVar[str] = "attention"
    heads: int = arch(validator=positive_int)
    kv_heads: int = arch(validator=positive_int)
    head_size: int = arch(validator=positive_int)
    rotary: Rotary = arch(validator=one_of(Rotary, "rotary"))
    query_bias: bool = arch(default=False, validator=boolean)
    key_value_bias: bool = arch(default=False, validator=boolean)
    dense_bias: bool = arch(default=False, validator=boolean)
    causal: bool = arch(default=True, validator=boolean)
    window: int | None = arch(default=None, validator=optional(positive_int))
    softmax_scale: float | None = arch(default=None, validator=optional(positive_float))
    query_key_norm: RMSNorm | None = arch(
        default=None, validator=optional(one_of(RMSNorm, "RMSNorm"))
    )
    logit_softcap: float | None = arch(default=None, validator=optional(positive_float))

    def __attrs_post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(
                f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})"
            )
        if not isinstance(self.rotary, NoRotary) and self.head_size % 2:
            raise ValueError(
                f"rotary embeddings rotate pairs of channels: head_size ({self.head_size}) "
                "must be even"
            )

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        q = self.heads * self.head_size
        kv = 2 * self.kv_heads * self.head_size
        yield f"{prefix}.{QUERY}.weight", (q, hidden)
        if self.query_bias:
            yield f"{prefix}.{QUERY}.bias", (q,)
        yield f"{prefix}.{KEY_VALUE}.weight", (kv, hidden)
        if self.key_value_bias:
            yield f"{prefix}.{KEY_VALUE}.bias", (kv,)
        yield f"{prefix}.{DENSE}.weight", (hidden, q)
        if self.dense_bias:
            yield f"{prefix}.{DENSE}.bias", (hidden,)
        if self.query_key_norm is not None:
            yield from self.query_key_norm.tensors(f"{prefix}.{QUERY_NORM}", self.head_size)
            yield from self.query_key_norm.tensors(f"{prefix}.{KEY_NORM}", self.head_size)
