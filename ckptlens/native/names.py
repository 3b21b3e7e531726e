"""Native tensor names and shapes, derived from a native ``Model`` alone.

The native layout fuses what a training framework fuses:

- ``mixer.query.weight`` ``[heads * head_size, hidden]`` and ``mixer.key_value.weight``
  ``[2 * kv_heads * head_size, hidden]`` (keys then values); query and key rows are stored in
  the *interleaved* rotary order (pairs ``(2i, 2i+1)`` rotate together), while HF stores the
  half-split order (``i`` with ``i + head_size/2``);
- ``mlp.layer_1.weight`` is gate then up stacked on the output dimension when gated;
- MoE experts are stacked on a leading expert dimension.

Shapes are ``(out, in)`` like ``torch.nn.Linear``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    LayerNorm,
    Model,
    MoE,
    Normalization,
    RMSNorm,
)

Shape = tuple[int, ...]

EMBEDDINGS = "embeddings.word.weight"
OUTPUT = "head.output.weight"
FINAL_NORM = "head.final_norm"


def block_prefix(index: int) -> str:
    return f"decoder.{index}"


def prediction_head_prefix(distance: int) -> str:
    """Prefix of multi-token prediction head ``distance`` (1-based: head 0 is the main head)."""
    return f"head.prediction.{distance}"


def norm_tensors(prefix: str, norm: Normalization, hidden: int) -> Iterator[tuple[str, Shape]]:
    if isinstance(norm, RMSNorm | LayerNorm):
        yield f"{prefix}.weight", (hidden,)
    if isinstance(norm, LayerNorm) and norm.bias:
        yield f"{prefix}.bias", (hidden,)


def attention_tensors(prefix: str, mixer: Attention, hidden: int) -> Iterator[tuple[str, Shape]]:
    q = mixer.heads * mixer.head_size
    kv = 2 * mixer.kv_heads * mixer.head_size
    yield f"{prefix}.query.weight", (q, hidden)
    if mixer.query_bias:
        yield f"{prefix}.query.bias", (q,)
    yield f"{prefix}.key_value.weight", (kv, hidden)
    if mixer.key_value_bias:
        yield f"{prefix}.key_value.bias", (kv,)
    yield f"{prefix}.dense.weight", (hidden, q)
    if mixer.dense_bias:
        yield f"{prefix}.dense.bias", (hidden,)


def mlp_tensors(
    prefix: str, mlp: MLP, hidden: int, experts: tuple[int, ...] = ()
) -> Iterator[tuple[str, Shape]]:
    width = (2 if mlp.gated else 1) * mlp.intermediate_size
    yield f"{prefix}.layer_1.weight", (*experts, width, hidden)
    if mlp.layer_1_bias:
        yield f"{prefix}.layer_1.bias", (*experts, width)
    yield f"{prefix}.layer_2.weight", (*experts, hidden, mlp.intermediate_size)
    if mlp.layer_2_bias:
        yield f"{prefix}.layer_2.bias", (*experts, hidden)


def feed_forward_tensors(prefix: str, mlp: MLP | MoE, hidden: int) -> Iterator[tuple[str, Shape]]:
    if isinstance(mlp, MLP):
        yield from mlp_tensors(prefix, mlp, hidden)
        return
    yield f"{prefix}.router.weight", (mlp.experts, hidden)
    if mlp.router.bias:
        yield f"{prefix}.router.bias", (mlp.experts,)
    yield from mlp_tensors(f"{prefix}.experts", mlp.expert, hidden, (mlp.experts,))
    if mlp.shared_expert is not None:
        yield from mlp_tensors(f"{prefix}.shared", mlp.shared_expert, hidden)


def block_tensors(prefix: str, block: Block, hidden: int) -> Iterator[tuple[str, Shape]]:
    yield from norm_tensors(f"{prefix}.norm_1", block.normalization, hidden)
    yield from attention_tensors(f"{prefix}.mixer", block.mixer, hidden)
    yield from norm_tensors(f"{prefix}.norm_2", block.normalization, hidden)
    yield from feed_forward_tensors(f"{prefix}.mlp", block.mlp, hidden)


def model_tensors(model: Model) -> dict[str, Shape]:
    """Every native tensor name of ``model`` with its shape, in a stable order."""
    hidden = model.hidden_size
    tensors: dict[str, Shape] = {EMBEDDINGS: (model.vocab_size, hidden)}
    blocks = model.decoder.blocks_in_order
    for index, block in enumerate(blocks):
        tensors.update(block_tensors(block_prefix(index), block, hidden))
    tensors.update(norm_tensors(FINAL_NORM, model.head.final_norm, hidden))
    for distance in range(1, model.head.prediction_heads):
        prefix = prediction_head_prefix(distance)
        tensors.update(block_tensors(f"{prefix}.block", blocks[-1], hidden))
        tensors.update(norm_tensors(f"{prefix}.final_norm", model.head.final_norm, hidden))
    if not model.tied_embeddings:
        tensors[OUTPUT] = (model.vocab_size, hidden)
    return tensors
