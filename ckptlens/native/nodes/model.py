"""The model: embeddings, decoder, head and metadata.

Native layout: ``embeddings.word.weight``; the decoder's blocks; ``head.final_norm``;
multi-token prediction head k under ``head.prediction.{k}`` (its own ``block`` and
``final_norm``); ``head.output.weight`` unless the embeddings are tied.
"""

from __future__ import annotations

from typing import Any

import attrs
from attrs import frozen

from ckptlens.native.bounds import count
from ckptlens.native.nodes.decoders import Decoder, block_prefix
from ckptlens.native.nodes.fields import (
    Tensors,
    arch,
    boolean,
    meta,
    one_of,
    optional,
    positive_int,
)
from ckptlens.native.nodes.norms import Normalization

EMBEDDINGS = "embeddings.word.weight"
OUTPUT = "head.output.weight"
FINAL_NORM = "head.final_norm"


def prediction_head_prefix(distance: int) -> str:
    """Prefix of multi-token prediction head ``distance`` (1-based: head 0 is the main head)."""
    return f"head.prediction.{distance}"


@frozen
class Head:
    """The language-model head.

    With ``prediction_heads`` P > 1 (multi-token prediction), the decoder's last block belongs
    to head 0: the trunk is blocks ``0 .. num_blocks - 2``, head 0 is the last block then
    ``final_norm``, and head k (1 <= k < P) is its own copy of the last block's configuration
    then its own final norm, reading the trunk output. All heads share the output projection.
    """

    final_norm: Normalization = arch()
    prediction_heads: int = arch(default=1, validator=count)


TokenIds = int | tuple[int, ...] | None


def _token_ids(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None or (type(value) is int and value >= 0):
        return
    if isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value):
        return
    raise ValueError(f"{attribute.name} must be a token id, a tuple of them, or None: {value!r}")


def _tuple_if_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _token_field() -> Any:
    return meta(default=None, converter=_tuple_if_list, validator=_token_ids)


@frozen
class Metadata:
    """What HF stores that is not architecture. ``None`` means "not stated by the source"."""

    context_length: int | None = meta(default=None, validator=optional(positive_int))
    bos_token_id: TokenIds = _token_field()
    eos_token_id: TokenIds = _token_field()
    pad_token_id: TokenIds = _token_field()
    mask_token_id: TokenIds = _token_field()
    dtype: str | None = meta(default=None)
    initializer_range: float | None = meta(default=None)
    attention_dropout: float | None = meta(default=None)
    use_cache: bool | None = meta(default=None)
    router_aux_loss_coef: float | None = meta(default=None)
    router_jitter_noise: float | None = meta(default=None)
    output_router_logits: bool | None = meta(default=None)
    quantization: dict[str, Any] | None = meta(default=None)
    """A quantized checkpoint's ``quantization_config`` as written (e.g. FP8 blocks)."""


@frozen
class Model:
    """A decoder-only language model."""

    hidden_size: int = arch(validator=positive_int)
    vocab_size: int = arch(validator=positive_int)
    decoder: Decoder = arch(validator=one_of(Decoder, "decoder"))
    head: Head = arch()
    tied_embeddings: bool = arch(default=False, validator=boolean)
    metadata: Metadata = meta(factory=Metadata)

    def tensors(self) -> Tensors:
        """Every native tensor name with its shape, in a stable order."""
        hidden = self.hidden_size
        yield EMBEDDINGS, (self.vocab_size, hidden)
        blocks = self.decoder.blocks_in_order
        for index, block in enumerate(blocks):
            yield from block.tensors(block_prefix(index), hidden)
        final_norm = self.head.final_norm
        yield from final_norm.tensors(FINAL_NORM, hidden)
        for distance in range(1, self.head.prediction_heads):
            prefix = prediction_head_prefix(distance)
            yield from blocks[-1].tensors(f"{prefix}.block", hidden)
            yield from final_norm.tensors(f"{prefix}.final_norm", hidden)
        if not self.tied_embeddings:
            yield OUTPUT, (self.vocab_size, hidden)
