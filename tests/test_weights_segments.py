"""Byte-move evaluation agrees with running the ops on data, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckptlens.weights.ops import (
    Chain,
    Concat,
    Identity,
    Parallel,
    Reshape,
    RotaryPermute,
    Split,
    Stack,
    Transpose,
    Unstack,
)
from ckptlens.weights.segments import NotAMove, Ranges, Segment, evaluate

FILE = "buffer"


def gather(ranges: Ranges, buffer: bytes) -> bytes:
    return b"".join(buffer[s.start : s.start + s.length] for s in ranges.segments)


def as_ranges(arrays: list[np.ndarray]) -> tuple[list[Ranges], bytes]:
    """Lay the arrays out back to back in one buffer, as tensors sit in a file."""
    buffer, ranges, offset = b"", [], 0
    for array in arrays:
        data = array.tobytes()
        ranges.append(Ranges(array.shape, array.itemsize, (Segment(FILE, offset, len(data)),)))
        buffer += data
        offset += len(data)
    return ranges, buffer


@st.composite
def movable_cases(draw):
    """A random chain of byte-movable ops with matching random inputs."""
    count = draw(st.integers(1, 3))
    rows = [draw(st.integers(1, 4)) for _ in range(count)]
    tail = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    arrays = [
        np.random.default_rng(draw(st.integers(0, 999))).integers(
            0, 2**16, (r, *tail), dtype=np.uint16
        )
        for r in rows
    ]
    fuse = Stack(count) if len(set(rows)) == 1 and draw(st.booleans()) else Concat(0, rows)
    steps = [fuse]
    if isinstance(fuse, Stack):
        steps.append(
            Unstack(count)
            if draw(st.booleans())
            else Reshape((count, rows[0], *tail), (count * rows[0], *tail))
        )
    else:
        cut = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
        total = sum(rows)
        if sum(cut) < total:
            steps.append(Split(0, (*cut, total - sum(cut))))
    return arrays, Chain(steps)


@settings(max_examples=80, deadline=None)
@given(case=movable_cases())
def test_byte_moves_equal_the_ops(case):
    arrays, op = case
    ranges, buffer = as_ranges(arrays)
    moved = evaluate(op, ranges)
    computed = op.apply(arrays)
    assert [gather(r, buffer) for r in moved] == [
        np.ascontiguousarray(a).tobytes() for a in computed
    ]
    assert [r.shape for r in moved] == [a.shape for a in computed]


def test_parallel_and_identity_moves():
    a, b = np.arange(6, dtype=np.uint16).reshape(3, 2), np.arange(8, dtype=np.uint16).reshape(4, 2)
    op = Chain((Parallel((Identity(), Identity())), Concat(0, (3, 4))))
    ranges, buffer = as_ranges([a, b])
    (moved,) = evaluate(op, ranges)
    assert gather(moved, buffer) == op.apply([a, b])[0].tobytes()


@pytest.mark.parametrize("op", [RotaryPermute(2, 2), Transpose(0, 1), Concat(1, (2, 2))])
def test_ops_that_reorder_inside_rows_are_not_moves(op):
    arrays = [np.zeros((4, 2), dtype=np.uint16)] * op.arity_in
    with pytest.raises(NotAMove):
        evaluate(op, as_ranges(arrays)[0])
