"""Bit-exact laws of the tensor ops on random shapes and random bit patterns."""

from __future__ import annotations

import math

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
    ShapeError,
    Split,
    Stack,
    Tie,
    Transpose,
    Unstack,
    Untie,
)

RAW = st.sampled_from([np.uint8, np.uint16, np.uint32, np.uint64])
dims = st.integers(1, 5)


def random_array(data: st.DataObject, shape: tuple[int, ...], raw: type) -> np.ndarray:
    """Arbitrary bit patterns (NaNs, infinities and denormals included once reinterpreted)."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    info = np.iinfo(raw)
    values = np.random.default_rng(seed).integers(0, info.max, size=shape, dtype=raw, endpoint=True)
    return values


def assert_round_trip(op, arrays: list[np.ndarray]) -> None:
    """forward then inverse is the identity, bit for bit; shapes agree with output_shapes."""
    forward = op.apply(arrays)
    assert [tuple(a.shape) for a in forward] == op.output_shapes([a.shape for a in arrays])
    back = op.inverse().apply(forward)
    assert len(back) == len(arrays)
    for original, restored in zip(arrays, back, strict=True):
        assert original.dtype == restored.dtype
        assert original.shape == restored.shape
        assert np.array_equal(original, restored)
    assert op.inverse().inverse() == op


@st.composite
def concat_case(draw, data=None):
    rank = draw(st.integers(1, 3))
    dim = draw(st.integers(0, rank - 1))
    base = [draw(dims) for _ in range(rank)]
    sizes = tuple(draw(st.lists(dims, min_size=1, max_size=4)))
    return dim, base, sizes


@settings(max_examples=60, deadline=None)
@given(case=concat_case(), raw=RAW, data=st.data())
def test_concat_split_round_trip(case, raw, data):
    dim, base, sizes = case
    parts = [random_array(data, tuple([*base[:dim], s, *base[dim + 1 :]]), raw) for s in sizes]
    assert_round_trip(Concat(dim, sizes), parts)
    whole = Concat(dim, sizes).apply(parts)[0]
    assert_round_trip(Split(dim, sizes), [whole])


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 5), shape=st.lists(dims, max_size=3), raw=RAW, data=st.data())
def test_stack_unstack_round_trip(count, shape, raw, data):
    arrays = [random_array(data, tuple(shape), raw) for _ in range(count)]
    assert_round_trip(Stack(count), arrays)
    assert_round_trip(Unstack(count), Stack(count).apply(arrays))


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, min_size=2, max_size=4), raw=RAW, data=st.data())
def test_transpose_round_trip_and_square_matrices(shape, raw, data):
    a, b = data.draw(st.integers(0, len(shape) - 1)), data.draw(st.integers(0, len(shape) - 1))
    array = random_array(data, tuple(shape), raw)
    assert_round_trip(Transpose(a, b), [array])
    square = random_array(data, (shape[0], shape[0]), raw)
    expected = square.T
    assert np.array_equal(Transpose(0, 1).apply([square])[0], expected)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(dims, min_size=1, max_size=4), raw=RAW, data=st.data())
def test_reshape_round_trip(shape, raw, data):
    array = random_array(data, tuple(shape), raw)
    target = (math.prod(shape),) if data.draw(st.booleans()) else tuple(reversed(shape))
    assert_round_trip(Reshape(tuple(shape), target), [array])


def split_to_interleaved_oracle(array: np.ndarray, heads: int, head_size: int) -> np.ndarray:
    """The layout contract, row by row: native row 2i = HF row i, 2i+1 = HF row i + hd/2."""
    out = np.empty_like(array)
    half = head_size // 2
    for head in range(heads):
        base = head * head_size
        for i in range(half):
            out[base + 2 * i] = array[base + i]
            out[base + 2 * i + 1] = array[base + i + half]
    return out


@settings(max_examples=80, deadline=None)
@given(
    kv_heads=st.integers(1, 5),
    group=st.integers(1, 4),
    half=st.integers(1, 6),
    columns=st.sampled_from([(), (1,), (3,), (7,)]),
    raw=RAW,
    data=st.data(),
)
def test_rotary_permutation_matches_contract(kv_heads, group, half, columns, raw, data):
    """Grouped-query ratios, odd head counts, biases (no columns) and matrices."""
    head_size = 2 * half
    for heads in (kv_heads, kv_heads * group):
        array = random_array(data, (heads * head_size, *columns), raw)
        op = RotaryPermute(heads, head_size)
        assert np.array_equal(
            op.apply([array])[0], split_to_interleaved_oracle(array, heads, head_size)
        )
        assert_round_trip(op, [array])
        assert_round_trip(op.inverse(), [array])


@settings(max_examples=40, deadline=None)
@given(
    kv_heads=st.integers(1, 4),
    group=st.integers(1, 3),
    half=st.integers(1, 4),
    hidden=dims,
    raw=RAW,
    data=st.data(),
)
def test_fused_key_value_round_trip(kv_heads, group, half, hidden, raw, data):
    """The key/value fusion as the Llama family uses it: permute keys, then concatenate."""
    head_size, rows = 2 * half, kv_heads * 2 * half
    op = Chain(
        (Parallel((RotaryPermute(kv_heads, head_size), Identity())), Concat(0, (rows, rows)))
    )
    keys, values = (random_array(data, (rows, hidden * group), raw) for _ in range(2))
    assert_round_trip(op, [keys, values])
    fused = op.apply([keys, values])[0]
    assert np.array_equal(fused[rows:], values)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(dims, max_size=3), count=st.integers(2, 4), raw=RAW, data=st.data())
def test_tie_untie_round_trip(shape, count, raw, data):
    array = random_array(data, tuple(shape), raw)
    assert_round_trip(Untie(count), [array])
    assert_round_trip(Tie(count), [array] * count)


def test_tie_refuses_copies_that_differ():
    a = np.zeros((2, 3), dtype=np.uint16)
    b = a.copy()
    b[1, 2] = 1
    with pytest.raises(ShapeError, match="differ"):
        Tie(2).apply([a, b])


@pytest.mark.parametrize(
    ("op", "shapes"),
    [
        (Concat(0, (2, 3)), [(2, 4), (3, 5)]),
        (Split(0, (2, 3)), [(6, 4)]),
        (Stack(2), [(2, 3), (3, 2)]),
        (Unstack(3), [(2, 3)]),
        (Reshape((2, 3), (6,)), [(3, 2)]),
        (RotaryPermute(3, 4), [(8, 4)]),
        (Transpose(0, 2), [(2, 3)]),
        (Identity(), [(1,), (1,)]),
    ],
)
def test_shape_checks_reject_wrong_shapes(op, shapes):
    with pytest.raises(ShapeError):
        op.output_shapes(shapes)


def test_rotary_needs_even_head_size():
    with pytest.raises(ValueError, match="even"):
        RotaryPermute(2, 3)
