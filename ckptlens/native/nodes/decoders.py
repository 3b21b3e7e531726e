"""Blocks and decoders: how mixers, feed-forwards and norms are stacked.

Native layout of block i: ``decoder.{i}.norm_1``, ``.mixer``, ``.norm_2``, ``.mlp``.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.nodes.fields import Tensors, arch, positive_int, union
from ckptlens.native.nodes.mixers import Mixer
from ckptlens.native.nodes.mlp import FeedForward
from ckptlens.native.nodes.norms import Normalization

NORM_1 = "norm_1"
MIXER = "mixer"
NORM_2 = "norm_2"
FEED_FORWARD = "mlp"


def block_prefix(index: int) -> str:
    return f"decoder.{index}"


@frozen
class Block:
    """A pre-norm residual block: ``x + mixer(norm_1(x))`` then ``x + mlp(norm_2(x))``.
    Both norms have the type and epsilon given by ``normalization``."""

    mixer: Mixer = arch()
    mlp: FeedForward = arch()
    normalization: Normalization = arch()

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        yield from self.normalization.tensors(f"{prefix}.{NORM_1}", hidden)
        yield from self.mixer.tensors(f"{prefix}.{MIXER}", hidden)
        yield from self.normalization.tensors(f"{prefix}.{NORM_2}", hidden)
        yield from self.mlp.tensors(f"{prefix}.{FEED_FORWARD}", hidden)


@frozen
class FixedDecoder:
    """``num_blocks`` copies of one block configuration."""

    tag: ClassVar[str] = "fixed"
    block: Block = arch()
    num_blocks: int = arch(validator=positive_int)

    def block_at(self, index: int) -> Block:
        return self.block

    @property
    def blocks_in_order(self) -> tuple[Block, ...]:
        return (self.block,) * self.num_blocks


@frozen
class PatternDecoder:
    """Named block configurations and the fully expanded per-layer ``pattern`` of names."""

    tag: ClassVar[str] = "pattern"
    blocks: dict[str, Block] = arch()
    pattern: tuple[str, ...] = arch(converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not self.pattern:
            raise ValueError("pattern must name at least one block")
        unknown = sorted({name for name in self.pattern if name not in self.blocks})
        if unknown:
            raise ValueError(
                f"pattern names unknown blocks {unknown}; known: {sorted(self.blocks)}"
            )
        unused = sorted(set(self.blocks) - set(self.pattern))
        if unused:
            raise ValueError(f"blocks {unused} are declared but never used in pattern")

    @property
    def num_blocks(self) -> int:
        return len(self.pattern)

    def block_at(self, index: int) -> Block:
        return self.blocks[self.pattern[index]]

    @property
    def blocks_in_order(self) -> tuple[Block, ...]:
        return tuple(self.blocks[name] for name in self.pattern)


Decoder = union(FixedDecoder, PatternDecoder)
