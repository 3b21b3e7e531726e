"""Multi-head attention with grouped key/value heads: the node and its native tensors.

Native layout: ``query.weight`` ``[heads * head_size, hidden]``; ``key_value.weight``
``[2 * kv_heads * head_size, hidden]`` (all keys, then all values); ``dense.weight``
``[hidden, heads * head_size]``. Query and key rows are stored in the *interleaved* rotary
order (pairs ``(2i, 2i+1)`` rotate together); HF stores the half-split order (``i`` with
``i + head_size/2``); with partial rotary only the leading rotated features of each head are
reordered, the rest keep their place. The optional query/key norms normalize before rotary,
either each head's ``head_size`` features (Qwen3: ``query_norm.weight`` and ``key_norm.weight``
are ``[head_size]``) or the whole projection (OLMo 2: ``[heads * head_size]`` and
``[kv_heads * head_size]``); their weights are in the same interleaved order as the rows.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
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
from ckptlens.native.nodes.rotary import LongRopeRotary, NoRotary, Rotary, rotated_size

QUERY = "query"
KEY_VALUE = "key_value"
DENSE = "dense"
QUERY_NORM = "query_norm"
KEY_NORM = "key_norm"
PER_HEAD = "head"
WHOLE_PROJECTION = "projection"
QUERY_KEY_NORM_SCOPES = (PER_HEAD, WHOLE_PROJECTION)


def _scope(instance: Attention, attribute: attrs.Attribute, value: object) -> None:
    if value not in QUERY_KEY_NORM_SCOPES:
        raise ValueError(f"{attribute.name} must be one of {QUERY_KEY_NORM_SCOPES}: {value!r}")


@frozen
class Attention:
    """Multi-head attention with grouped key/value heads.

    Biases follow the native tensor layout: the query projection, the fused key/value
    projection and the output (dense) projection each have their own bias switch.
    ``softmax_scale`` is ``None`` for the usual ``head_size ** -0.5``. ``query_key_norm`` is
    an RMSNorm applied to queries and keys before rotary, with its own weights for queries
    and for keys; ``None`` for none. ``query_key_norm_scope`` says what one RMS is taken over:
    ``"head"``, each head's features (Qwen3), or ``"projection"``, all heads at once (OLMo 2).
    Without a norm the scope is ``"head"``, so that one model has one view.
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
    query_key_norm_scope: str = arch(default=PER_HEAD, validator=_scope)

    def __attrs_post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise ValueError(
                f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})"
            )
        rotated = rotated_size(self.rotary, self.head_size)
        if not isinstance(self.rotary, NoRotary) and (rotated % 2 or not rotated):
            raise ValueError(
                "rotary embeddings rotate pairs of channels: the rotated features "
                f"(head_size {self.head_size} * fraction {self.rotary.fraction} = {rotated}) "
                "must be even and at least 2"
            )
        if isinstance(self.rotary, LongRopeRotary) and len(self.rotary.short_factor) * 2 != rotated:
            raise ValueError(
                f"longrope factors need one entry per rotated pair ({rotated // 2}), "
                f"got {len(self.rotary.short_factor)}"
            )
        if self.query_key_norm is None and self.query_key_norm_scope != PER_HEAD:
            raise ValueError(
                f"query_key_norm_scope is {PER_HEAD!r} when there is no query_key_norm "
                f"(found {self.query_key_norm_scope!r})"
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
            query_width, key_width = self.query_key_norm_widths
            yield from self.query_key_norm.tensors(f"{prefix}.{QUERY_NORM}", query_width)
            yield from self.query_key_norm.tensors(f"{prefix}.{KEY_NORM}", key_width)

    @property
    def query_key_norm_heads(self) -> tuple[int, int]:
        """How many heads one query norm and one key norm span (1 each when per head)."""
        if self.query_key_norm_scope == PER_HEAD:
            return 1, 1
        return self.heads, self.kv_heads

    @property
    def query_key_norm_widths(self) -> tuple[int, int]:
        """The widths the query norm and the key norm normalize."""
        query_heads, key_heads = self.query_key_norm_heads
        return query_heads * self.head_size, key_heads * self.head_size
