"""What every HF weight-naming piece shares: the options of one lens, the piece protocol, and
how a slot picks the piece for the node it holds.

A piece is a small frozen attrs object holding HF name parts (its sub-prefix and tensor
names). Given the HF prefix of its parent and the native prefix of a node, it yields the
``TensorMapping``s between the two namings, and the ``Violation``s for whatever in the node the
HF names have no place for. Pieces dispatch on the node type they declare (``node_types``), so a
slot that can hold several node types (an MLP or an MoE; later attention or mamba) asks the node.
A piece whose node has several on-disk layouts may also offer ``detect_layout(tensor_names)``;
the decoder asks its feed-forward pieces for it when reading a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from attrs import frozen

from ckptlens.lenses.errors import Violation

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping
    from ckptlens.weights.ops import TensorOp

SITE = "hf weights"
PER_EXPERT = "per_expert"
FUSED = "fused"
MOE_LAYOUTS = (PER_EXPERT, FUSED)


@frozen
class Options:
    """Choices of one weight lens that the native model does not fix.

    ``moe_layout``: how experts are stored on disk (``per_expert`` or ``fused``).
    ``tied_output_on_disk``: a tied model whose checkpoint still stores the output projection
    (some exporters write both); the two copies are checked equal and read as one."""

    moe_layout: str = PER_EXPERT
    tied_output_on_disk: bool = False


class Piece(Protocol):
    """The HF names of one native node type."""

    node_types: ClassVar[tuple[type, ...]]

    def mappings(
        self, hf: str, native: str, node: Any, options: Options
    ) -> Iterator[TensorMapping]:
        """Mappings of ``node`` (native prefix ``native``) under the parent HF prefix ``hf``."""
        ...

    def problems(self, path: str, node: Any, options: Options) -> Iterator[Violation]:
        """What of ``node`` (at view path ``path``) these names cannot represent."""
        ...


def mapping(
    external: Sequence[str], native: Sequence[str], op: TensorOp | None = None
) -> TensorMapping:
    """A ``TensorMapping`` (identity by default). ``ckptlens.weights`` is imported on the first
    call, not with the format: importing a format must stay cheap."""
    from ckptlens.weights.lens import TensorMapping
    from ckptlens.weights.ops import Identity

    return TensorMapping(tuple(external), tuple(native), Identity() if op is None else op)


def rename(external: str, native: str) -> TensorMapping:
    return mapping((external,), (native,))


def suffixes(bias: bool) -> tuple[str, ...]:
    """The tensors of a linear layer: its weight, and its bias when it has one."""
    return ("weight", "bias") if bias else ("weight",)


def join(*parts: str) -> str:
    """An HF tensor name from its non-empty parts."""
    return ".".join(part for part in parts if part)


def pieces(value: Piece | Sequence[Piece]) -> tuple[Piece, ...]:
    """One piece or several, as a tuple (a slot may accept several node types)."""
    return tuple(value) if isinstance(value, Sequence) else (value,)


def piece_for(slot: tuple[Piece, ...], node: Any) -> Piece | None:
    """The piece of ``slot`` that names ``node``'s type, if any."""
    return next((piece for piece in slot if isinstance(node, piece.node_types)), None)


def slot_problems(
    slot: tuple[Piece, ...], path: str, node: Any, options: Options
) -> Iterator[Violation]:
    """The chosen piece's problems, or the missing piece itself as one."""
    piece = piece_for(slot, node)
    if piece is None:
        known = sorted(t.__name__ for p in slot for t in p.node_types)
        yield Violation(path, f"one of {known} (what this format names)", type(node).__name__, SITE)
        return
    yield from piece.problems(path, node, options)


def slot_mappings(
    slot: tuple[Piece, ...], hf: str, native: str, node: Any, options: Options
) -> Iterator[TensorMapping]:
    piece = piece_for(slot, node)
    assert piece is not None, "slot_problems reports a node without a piece first"
    yield from piece.mappings(hf, native, node, options)
