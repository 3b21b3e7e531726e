"""Multi-head latent attention (DeepSeek-V2/V3): the node and its native tensors.

Native layout (prefix ``mixer``): a full-rank ``query.weight`` ``[heads * (nope + rope),
hidden]``, or the low-rank ``query_a.weight`` ``[query_rank, hidden]``, ``query_norm.weight``
``[query_rank]``, ``query_b.weight`` ``[heads * (nope + rope), query_rank]``; then
``key_value_a.weight`` ``[key_value_rank + rope, hidden]`` (the latent, then one rotary key
shared by all heads), ``key_value_norm.weight`` ``[key_value_rank]``, ``key_value_b.weight``
``[heads * (nope + value), key_value_rank]`` (per head: its non-rotary key rows, then its value
rows) and ``dense.weight`` ``[hidden, heads * value]``. Each head's query rows are its ``nope``
non-rotary rows then its ``rope`` rotary rows; rotary rows are interleaved (pairs ``2i, 2i+1``)
as everywhere in native.
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
from ckptlens.native.nodes.norms import Normalization
from ckptlens.native.nodes.rotary import NoRotary, Rotary

QUERY = "query"
QUERY_A = "query_a"
QUERY_NORM = "query_norm"
QUERY_B = "query_b"
KEY_VALUE_A = "key_value_a"
KEY_VALUE_NORM = "key_value_norm"
KEY_VALUE_B = "key_value_b"
DENSE = "dense"


@frozen
class LatentAttention:
    """Causal multi-head latent attention.

    Keys and values are decoded per head from one compressed latent (``key_value_rank``
    channels, normalised by ``latent_norm``); each head's score is the sum of a non-rotary part
    (``nope_head_size``) and a rotary part (``rope_head_size``) against one rotary key shared
    by all heads. ``query_rank`` None is a full-rank query projection; otherwise the query goes
    through its own normalised latent (the same ``latent_norm`` type and epsilon).
    ``query_bias`` is the bias of ``query`` or ``query_a`` (``query_b`` never has one).
    ``softmax_scale`` None is DeepSeek's rule: ``(nope + rope) ** -0.5``, times ``m ** 2`` with
    ``m = 0.1 * mscale_all_dim * ln(factor) + 1`` for a yarn rotary with ``mscale_all_dim``.
    """

    tag: ClassVar[str] = "latent_attention"
    heads: int = arch(validator=positive_int)
    nope_head_size: int = arch(validator=positive_int)
    rope_head_size: int = arch(validator=positive_int)
    value_head_size: int = arch(validator=positive_int)
    key_value_rank: int = arch(validator=positive_int)
    rotary: Rotary = arch(validator=one_of(Rotary, "rotary"))
    latent_norm: Normalization = arch(validator=one_of(Normalization, "normalization"))
    query_rank: int | None = arch(default=None, validator=optional(positive_int))
    query_bias: bool = arch(default=False, validator=boolean)
    key_value_bias: bool = arch(default=False, validator=boolean)
    dense_bias: bool = arch(default=False, validator=boolean)
    softmax_scale: float | None = arch(default=None, validator=optional(positive_float))

    def __attrs_post_init__(self) -> None:
        if isinstance(self.rotary, NoRotary):
            raise ValueError("latent attention needs a rotary with frequencies, got none")
        if self.rope_head_size % 2:
            raise ValueError(
                f"rotary embeddings rotate pairs of channels: rope_head_size "
                f"({self.rope_head_size}) must be even"
            )

    @property
    def query_key_head_size(self) -> int:
        return self.nope_head_size + self.rope_head_size

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        query_rows = self.heads * self.query_key_head_size
        if self.query_rank is None:
            yield f"{prefix}.{QUERY}.weight", (query_rows, hidden)
            if self.query_bias:
                yield f"{prefix}.{QUERY}.bias", (query_rows,)
        else:
            yield f"{prefix}.{QUERY_A}.weight", (self.query_rank, hidden)
            if self.query_bias:
                yield f"{prefix}.{QUERY_A}.bias", (self.query_rank,)
            yield from self.latent_norm.tensors(f"{prefix}.{QUERY_NORM}", self.query_rank)
            yield f"{prefix}.{QUERY_B}.weight", (query_rows, self.query_rank)
        compressed = self.key_value_rank + self.rope_head_size
        yield f"{prefix}.{KEY_VALUE_A}.weight", (compressed, hidden)
        if self.key_value_bias:
            yield f"{prefix}.{KEY_VALUE_A}.bias", (compressed,)
        yield from self.latent_norm.tensors(f"{prefix}.{KEY_VALUE_NORM}", self.key_value_rank)
        decoded = self.heads * (self.nope_head_size + self.value_head_size)
        yield f"{prefix}.{KEY_VALUE_B}.weight", (decoded, self.key_value_rank)
        yield f"{prefix}.{DENSE}.weight", (hidden, self.heads * self.value_head_size)
        if self.dense_bias:
            yield f"{prefix}.{DENSE}.bias", (hidden,)
