"""Tensor isomorphisms: the only ways ckptlens ever rearranges checkpoint data.

Every op is a frozen attrs value (data, printable in a plan) that maps ``arity_in`` tensors to
``arity_out`` tensors and knows its inverse by construction. Ops move data and never compute
with it, so they run on numpy arrays of the raw element width (a bf16 tensor is handled as
``uint16``): no torch import, no rounding, bit-exact in both directions by construction.

``output_shapes`` checks and propagates shapes without data, which is what the planner uses
to verify a whole checkpoint against its config before reading a byte.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]


class ShapeError(ValueError):
    """Input shapes an op cannot accept; the planner turns it into a violation with names."""


class TensorOp:
    """Base class: subclasses are frozen attrs classes implementing the four methods."""

    arity_in: int = 1
    arity_out: int = 1

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        raise NotImplementedError

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def inverse(self) -> TensorOp:
        raise NotImplementedError

    @property
    def is_identity(self) -> bool:
        return False

    def _arity(self, items: Sequence[Any], expected: int) -> None:
        if len(items) != expected:
            raise ShapeError(f"{self!r} takes {expected} tensors, got {len(items)}")


def _rank_at_least(shape: Shape, rank: int, op: TensorOp) -> None:
    if len(shape) < rank:
        raise ShapeError(f"{op!r} needs a tensor of rank >= {rank}, got shape {list(shape)}")


@frozen
class Identity(TensorOp):
    """One tensor unchanged: with different names on both sides this is a rename."""

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        return [tuple(shapes[0])]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        self._arity(arrays, 1)
        return [arrays[0]]

    def inverse(self) -> TensorOp:
        return self

    @property
    def is_identity(self) -> bool:
        return True


def _sizes(value: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@frozen
class Concat(TensorOp):
    """Join tensors along ``dim``; ``sizes`` records each part's extent so Split can undo it."""

    dim: int
    sizes: tuple[int, ...] = field(converter=_sizes)

    @property
    def arity_in(self) -> int:  # type: ignore[override]
        return len(self.sizes)

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, len(self.sizes))
        first = tuple(shapes[0])
        _rank_at_least(first, self.dim + 1, self)
        for shape, size in zip(shapes, self.sizes, strict=True):
            other = (*first[: self.dim], size, *first[self.dim + 1 :])
            if tuple(shape) != other:
                raise ShapeError(f"{self!r} expects part shape {list(other)}, got {list(shape)}")
        return [(*first[: self.dim], sum(self.sizes), *first[self.dim + 1 :])]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        return [np.concatenate(list(arrays), axis=self.dim)]

    def inverse(self) -> TensorOp:
        return Split(self.dim, self.sizes)


@frozen
class Split(TensorOp):
    """Cut one tensor along ``dim`` into parts of the recorded ``sizes``."""

    dim: int
    sizes: tuple[int, ...] = field(converter=_sizes)

    @property
    def arity_out(self) -> int:  # type: ignore[override]
        return len(self.sizes)

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        shape = tuple(shapes[0])
        _rank_at_least(shape, self.dim + 1, self)
        if shape[self.dim] != sum(self.sizes):
            raise ShapeError(
                f"{self!r} needs dim {self.dim} = {sum(self.sizes)}, got {list(shape)}"
            )
        return [(*shape[: self.dim], size, *shape[self.dim + 1 :]) for size in self.sizes]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        cuts = np.cumsum(self.sizes)[:-1]
        return list(np.split(arrays[0], cuts, axis=self.dim))

    def inverse(self) -> TensorOp:
        return Concat(self.dim, self.sizes)


@frozen
class Stack(TensorOp):
    """``count`` equal-shaped tensors stacked on a new leading dimension (MoE experts)."""

    count: int

    @property
    def arity_in(self) -> int:  # type: ignore[override]
        return self.count

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, self.count)
        first = tuple(shapes[0])
        for shape in shapes:
            if tuple(shape) != first:
                raise ShapeError(
                    f"{self!r} needs equal shapes, got {list(shape)} and {list(first)}"
                )
        return [(self.count, *first)]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        return [np.stack(list(arrays), axis=0)]

    def inverse(self) -> TensorOp:
        return Unstack(self.count)


@frozen
class Unstack(TensorOp):
    """One tensor with leading dimension ``count`` cut into ``count`` tensors."""

    count: int

    @property
    def arity_out(self) -> int:  # type: ignore[override]
        return self.count

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        shape = tuple(shapes[0])
        if not shape or shape[0] != self.count:
            raise ShapeError(f"{self!r} needs leading dim {self.count}, got {list(shape)}")
        return [shape[1:]] * self.count

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [arrays[0][index] for index in range(self.count)]

    def inverse(self) -> TensorOp:
        return Stack(self.count)


@frozen
class Transpose(TensorOp):
    """Swap two named dimensions. Explicit dims, never guessed from shapes (a square matrix
    would fool any guess)."""

    dim_a: int
    dim_b: int

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        shape = list(shapes[0])
        _rank_at_least(tuple(shape), max(self.dim_a, self.dim_b) + 1, self)
        shape[self.dim_a], shape[self.dim_b] = shape[self.dim_b], shape[self.dim_a]
        return [tuple(shape)]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [arrays[0].swapaxes(self.dim_a, self.dim_b)]

    def inverse(self) -> TensorOp:
        return self


def _shape(value: Sequence[int]) -> Shape:
    return tuple(int(v) for v in value)


@frozen
class Reshape(TensorOp):
    """Reshape between two recorded shapes (row-major, so the bytes are unchanged)."""

    source: Shape = field(converter=_shape)
    target: Shape = field(converter=_shape)

    def __attrs_post_init__(self) -> None:
        if math.prod(self.source) != math.prod(self.target):
            raise ValueError(f"cannot reshape {list(self.source)} to {list(self.target)}")

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        if tuple(shapes[0]) != self.source:
            raise ShapeError(f"{self!r} needs shape {list(self.source)}, got {list(shapes[0])}")
        return [self.target]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [arrays[0].reshape(self.target)]

    def inverse(self) -> TensorOp:
        return Reshape(self.target, self.source)


@frozen
class RotaryPermute(TensorOp):
    """Reorder rows within each of ``heads`` heads between the half-split rotary order (HF:
    row ``i`` pairs with ``i + head_size/2``) and the interleaved one (pairs ``2i, 2i+1``).
    Head count and size are explicit: the op never infers them from the tensor. ``rotated``
    (partial rotary): only the first ``rotated`` rows of each head are reordered (pairs ``i``
    and ``i + rotated/2``), the rest stay in place; ``None`` for the whole head."""

    heads: int
    head_size: int
    to_interleaved: bool = True
    rotated: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.size % 2 or not 0 < self.size <= self.head_size:
            raise ValueError(
                f"rotary needs an even rotated size in (0, {self.head_size}], got {self.size}"
            )

    @property
    def size(self) -> int:
        return self.head_size if self.rotated is None else self.rotated

    def __repr__(self) -> str:
        partial = "" if self.rotated is None else f", rotated={self.rotated}"
        return (
            f"RotaryPermute(heads={self.heads}, head_size={self.head_size}, "
            f"to_interleaved={self.to_interleaved}{partial})"
        )

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        shape = tuple(shapes[0])
        if not shape or shape[0] != self.heads * self.head_size:
            raise ShapeError(
                f"{self!r} needs dim 0 = {self.heads * self.head_size}, got {list(shape)}"
            )
        return [shape]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        array = arrays[0]
        rest = array.shape[1:]
        heads = array.reshape((self.heads, self.head_size, *rest))
        rotated, kept = heads[:, : self.size], heads[:, self.size :]
        half = self.size // 2
        # split order is (head, half, pair); interleaved order is (head, pair, half)
        grouped = (self.heads, 2, half) if self.to_interleaved else (self.heads, half, 2)
        moved = rotated.reshape(grouped + rest).swapaxes(1, 2).reshape(rotated.shape)
        return [np.concatenate((moved, kept), axis=1).reshape(array.shape)]

    def inverse(self) -> TensorOp:
        return RotaryPermute(self.heads, self.head_size, not self.to_interleaved, self.rotated)


@frozen
class Tie(TensorOp):
    """``count`` copies of one tensor (tied embeddings saved twice) collapsed to one; apply
    refuses copies that differ, so nothing is dropped silently."""

    count: int = 2

    @property
    def arity_in(self) -> int:  # type: ignore[override]
        return self.count

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, self.count)
        if len({tuple(shape) for shape in shapes}) != 1:
            raise ShapeError(f"{self!r} needs equal shapes, got {[list(s) for s in shapes]}")
        return [tuple(shapes[0])]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        import numpy as np

        for other in arrays[1:]:
            if not np.array_equal(arrays[0], other):
                raise ShapeError(f"{self!r}: the tied copies differ")
        return [arrays[0]]

    def inverse(self) -> TensorOp:
        return Untie(self.count)


@frozen
class Untie(TensorOp):
    """One tensor written as ``count`` identical copies."""

    count: int = 2

    @property
    def arity_out(self) -> int:  # type: ignore[override]
        return self.count

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        self._arity(shapes, 1)
        return [tuple(shapes[0])] * self.count

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [arrays[0]] * self.count

    def inverse(self) -> TensorOp:
        return Tie(self.count)


def _ops(value: Sequence[TensorOp]) -> tuple[TensorOp, ...]:
    return tuple(value)


@frozen
class Parallel(TensorOp):
    """Ops side by side: the inputs are cut into consecutive runs of each op's arity."""

    parts: tuple[TensorOp, ...] = field(converter=_ops)

    @property
    def arity_in(self) -> int:  # type: ignore[override]
        return sum(part.arity_in for part in self.parts)

    @property
    def arity_out(self) -> int:  # type: ignore[override]
        return sum(part.arity_out for part in self.parts)

    def _runs(self, items: Sequence[Any]) -> list[Sequence[Any]]:
        self._arity(items, self.arity_in)
        runs, start = [], 0
        for part in self.parts:
            runs.append(items[start : start + part.arity_in])
            start += part.arity_in
        return runs

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        runs = self._runs(shapes)
        return [
            s for part, run in zip(self.parts, runs, strict=True) for s in part.output_shapes(run)
        ]

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        runs = self._runs(arrays)
        return [a for part, run in zip(self.parts, runs, strict=True) for a in part.apply(run)]

    def inverse(self) -> TensorOp:
        return Parallel(tuple(part.inverse() for part in self.parts))

    def __repr__(self) -> str:
        return f"({' | '.join(repr(part) for part in self.parts)})"

    @property
    def is_identity(self) -> bool:
        return all(part.is_identity for part in self.parts)


@frozen
class Chain(TensorOp):
    """Ops in sequence; the inverse runs the inverses in reverse order."""

    steps: tuple[TensorOp, ...] = field(converter=_ops)

    @property
    def arity_in(self) -> int:  # type: ignore[override]
        return self.steps[0].arity_in

    @property
    def arity_out(self) -> int:  # type: ignore[override]
        return self.steps[-1].arity_out

    def output_shapes(self, shapes: Sequence[Shape]) -> list[Shape]:
        for step in self.steps:
            shapes = step.output_shapes(shapes)
        return list(shapes)

    def intermediate_shapes(self, shapes: Sequence[Shape]) -> list[list[Shape]]:
        """The shapes after each step (the planner's memory bound counts all of them)."""
        stages = []
        for step in self.steps:
            shapes = step.output_shapes(shapes)
            stages.append(list(shapes))
        return stages

    def apply(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        for step in self.steps:
            arrays = step.apply(arrays)
        return list(arrays)

    def inverse(self) -> TensorOp:
        return Chain(tuple(step.inverse() for step in reversed(self.steps)))

    def __repr__(self) -> str:
        return " then ".join(repr(step) for step in self.steps)

    @property
    def is_identity(self) -> bool:
        return all(step.is_identity for step in self.steps)


def chain(*steps: TensorOp) -> TensorOp:
    """A chain without identity steps (a single remaining step stands alone)."""
    kept = tuple(step for step in steps if not step.is_identity)
    if not kept:
        return Identity()
    return kept[0] if len(kept) == 1 else Chain(kept)


def parallel(*parts: TensorOp) -> TensorOp:
    """Parts side by side, or the single part itself."""
    return parts[0] if len(parts) == 1 else Parallel(parts)
