"""Blocks and decoders: how mixers, feed-forwards and norms are stacked.

Native layout of block i: ``decoder.{i}.norm_1``, ``.mixer``, ``.post_norm_1``, ``.norm_2``,
``.mlp``, ``.post_norm_2`` (the pre norms when ``pre_norms``, the post norms when ``post_norms``).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from ckptlens.native.bounds import MAX_COUNT, count
from ckptlens.native.nodes.fields import Tensors, arch, boolean, union
from ckptlens.native.nodes.mixers import Mixer
from ckptlens.native.nodes.mlp import FeedForward
from ckptlens.native.nodes.norms import Normalization

NORM_1 = "norm_1"
MIXER = "mixer"
POST_NORM_1 = "post_norm_1"
NORM_2 = "norm_2"
FEED_FORWARD = "mlp"
POST_NORM_2 = "post_norm_2"


def block_prefix(index: int) -> str:
    return f"decoder.{index}"


@frozen
class Block:
    """A residual block: ``x + post_1(mixer(norm_1(x)))`` then ``x + post_2(mlp(norm_2(x)))``.

    ``pre_norms`` switches the norms on the sublayer inputs (Llama), ``post_norms`` those on the
    sublayer outputs (OLMo 2 has only these, Gemma 2 both). Every norm of the block has the type
    and epsilon given by ``normalization``; at least one placement is on.
    """

    mixer: Mixer = arch()
    mlp: FeedForward = arch()
    normalization: Normalization = arch()
    pre_norms: bool = arch(default=True, validator=boolean)
    post_norms: bool = arch(default=False, validator=boolean)

    def __attrs_post_init__(self) -> None:
        if not (self.pre_norms or self.post_norms):
            raise ValueError("a block needs pre_norms, post_norms or both")

    def norms(self, sublayer: int) -> tuple[str, ...]:
        """The native names of the norms around sublayer 1 (mixer) or 2 (feed-forward)."""
        pre, post = (NORM_1, POST_NORM_1) if sublayer == 1 else (NORM_2, POST_NORM_2)
        return (pre,) * self.pre_norms + (post,) * self.post_norms

    def tensors(self, prefix: str, hidden: int) -> Tensors:
        yield from self._norm_tensors(prefix, hidden, NORM_1)
        yield from self.mixer.tensors(f"{prefix}.{MIXER}", hidden)
        yield from self._norm_tensors(prefix, hidden, POST_NORM_1)
        yield from self._norm_tensors(prefix, hidden, NORM_2)
        yield from self.mlp.tensors(f"{prefix}.{FEED_FORWARD}", hidden)
        yield from self._norm_tensors(prefix, hidden, POST_NORM_2)

    def _norm_tensors(self, prefix: str, hidden: int, name: str) -> Tensors:
        if name in self.norms(1) + self.norms(2):
            yield from self.normalization.tensors(f"{prefix}.{name}", hidden)


@frozen
class FixedDecoder:
    """``num_blocks`` copies of one block configuration."""

    tag: ClassVar[str] = "fixed"
    block: Block = arch()
    num_blocks: int = arch(validator=count)

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
        if not 1 <= len(self.pattern) <= MAX_COUNT:
            raise ValueError(f"pattern must name from 1 to {MAX_COUNT} blocks")
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
