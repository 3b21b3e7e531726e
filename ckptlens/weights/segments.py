"""Which groups are pure byte moves, found by running the ops on byte ranges instead of data.

In row-major storage, renaming, concatenating or splitting along dimension 0, stacking,
unstacking and reshaping never reorder bytes inside a row: each output is a concatenation of
byte ranges of the source files. Such groups are copied file-to-file by the kernel
(``os.copy_file_range``, as ``cp`` does) without entering this process's memory. Any other op
(a rotary permutation, a transpose, a concatenation along another dimension, a dtype cast)
makes the group a compute group. The evaluation is symbolic, so the plan knows which is which
before reading any data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from attrs import frozen

from ckptlens.dtypes import DTYPE_SIZES
from ckptlens.weights.lens import TensorMapping
from ckptlens.weights.ops import (
    Chain,
    Concat,
    Identity,
    Parallel,
    Reshape,
    Shape,
    Split,
    Stack,
    TensorOp,
    Unstack,
)
from ckptlens.weights.safetensors_header import TensorInfo


@frozen
class Segment:
    """``length`` bytes at absolute offset ``start`` of ``file``."""

    file: str
    start: int
    length: int


@frozen
class Ranges:
    """A tensor as the byte ranges that hold it, in order."""

    shape: Shape
    item: int
    segments: tuple[Segment, ...]

    @property
    def row_bytes(self) -> int:
        return math.prod(self.shape[1:]) * self.item

    def rows(self, begin: int, end: int, shape: Shape) -> Ranges:
        """Rows ``[begin, end)`` of dimension 0."""
        return Ranges(
            shape,
            self.item,
            _slice(self.segments, begin * self.row_bytes, (end - begin) * self.row_bytes),
        )


class NotAMove(Exception):
    """The op reorders bytes inside rows; the group must be computed."""


def group_moves(
    reads: Sequence[TensorInfo], source: Sequence[TensorMapping], target: Sequence[TensorMapping]
) -> dict[str, tuple[Segment, ...]] | None:
    """Each output's byte ranges in the source files, or ``None`` for a compute group."""
    by_name = {info.name: info for info in reads}
    native: dict[str, Ranges] = {}
    try:
        for mapping in source:
            inputs = [_whole(by_name[name]) for name in mapping.external]
            native.update(zip(mapping.native, evaluate(mapping.op, inputs), strict=True))
        outputs: dict[str, tuple[Segment, ...]] = {}
        for mapping in target:
            results = evaluate(mapping.op.inverse(), [native[n] for n in mapping.native])
            outputs.update(
                (name, _merged(r.segments))
                for name, r in zip(mapping.external, results, strict=True)
            )
    except NotAMove:
        return None
    return outputs


def _whole(info: TensorInfo) -> Ranges:
    return Ranges(
        tuple(info.shape), DTYPE_SIZES[info.dtype], (Segment(info.file, info.start, info.nbytes),)
    )


def evaluate(op: TensorOp, inputs: list[Ranges]) -> list[Ranges]:
    """``op`` applied to byte ranges; raises ``NotAMove`` for ops that reorder within rows."""
    shapes = op.output_shapes([r.shape for r in inputs])
    if isinstance(op, Identity | Reshape):
        return [Ranges(shapes[0], inputs[0].item, inputs[0].segments)]
    if isinstance(op, Stack) or (isinstance(op, Concat) and op.dim == 0):
        return [Ranges(shapes[0], inputs[0].item, tuple(s for r in inputs for s in r.segments))]
    if isinstance(op, Unstack):
        return [inputs[0].rows(i, i + 1, shape) for i, shape in enumerate(shapes)]
    if isinstance(op, Split) and op.dim == 0:
        bounds = [sum(op.sizes[:i]) for i in range(len(op.sizes) + 1)]
        return [inputs[0].rows(bounds[i], bounds[i + 1], shapes[i]) for i in range(len(op.sizes))]
    if isinstance(op, Chain):
        for step in op.steps:
            inputs = evaluate(step, inputs)
        return inputs
    if isinstance(op, Parallel):
        results, start = [], 0
        for part in op.parts:
            results += evaluate(part, inputs[start : start + part.arity_in])
            start += part.arity_in
        return results
    raise NotAMove(repr(op))


def _slice(segments: Sequence[Segment], offset: int, length: int) -> tuple[Segment, ...]:
    """Bytes ``[offset, offset + length)`` of the concatenation of ``segments``."""
    kept = []
    for segment in segments:
        if length <= 0:
            break
        if offset >= segment.length:
            offset -= segment.length
            continue
        take = min(segment.length - offset, length)
        kept.append(Segment(segment.file, segment.start + offset, take))
        length -= take
        offset = 0
    return tuple(kept)


def _merged(segments: Sequence[Segment]) -> tuple[Segment, ...]:
    """Adjacent ranges of one file joined, so a tensor is as few kernel copies as possible."""
    merged: list[Segment] = []
    for segment in segments:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.file == segment.file
            and last.start + last.length == segment.start
        ):
            merged[-1] = Segment(last.file, last.start, last.length + segment.length)
        elif segment.length:
            merged.append(segment)
    return tuple(merged)
