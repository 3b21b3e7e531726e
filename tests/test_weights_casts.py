"""The numpy casts round exactly as ``torch.Tensor.to`` does, on every bit pattern we can draw.

16-bit sources are checked exhaustively (all 65536 patterns); F32 and F64 sources on drawn
patterns that favour the hard places: ties, one ulp either side of a tie, subnormals of the
target, the largest finite values and the overflow threshold, infinities and NaNs. Outputs are
compared bit for bit, except NaN: torch's own NaN bits depend on which of its loops ran, so a
NaN must give a NaN of the same sign (our contract), whatever its payload.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckptlens.weights.casts import BLOCK_ELEMENTS, KERNELS, cast_array

torch = pytest.importorskip("torch")

TORCH = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}
RAW = {"BF16": np.uint16, "F16": np.uint16, "F32": np.uint32, "F64": np.uint64}
TORCH_RAW = {2: torch.int16, 4: torch.int32, 8: torch.int64}
LAYOUT = {"F32": (8, 23), "F64": (11, 52)}  # exponent and mantissa bits
PAIRS = sorted(KERNELS)


def torch_cast(bits: np.ndarray, source: str, target: str) -> np.ndarray:
    width = np.dtype(RAW[source]).itemsize
    signed = torch.from_numpy(bits.view(f"int{width * 8}").copy())
    result = signed.view(TORCH[source]).to(TORCH[target])
    out_width = np.dtype(RAW[target]).itemsize
    return result.view(TORCH_RAW[out_width]).numpy().view(RAW[target])


INFINITY = {"BF16": 0x7F80, "F16": 0x7C00, "F32": 0x7F800000, "F64": 0x7FF0000000000000}


def is_nan(bits: np.ndarray, dtype: str) -> np.ndarray:
    """Exponent all ones and a non-zero mantissa: above infinity once the sign is dropped."""
    magnitude = (1 << (bits.dtype.itemsize * 8 - 1)) - 1
    return (bits & magnitude) > INFINITY[dtype]


def sign(bits: np.ndarray) -> np.ndarray:
    return bits >> (bits.dtype.itemsize * 8 - 1)


def assert_like_torch(bits: np.ndarray, source: str, target: str) -> None:
    ours = cast_array(bits, source, target)
    theirs = torch_cast(bits, source, target)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    nan_in = is_nan(bits, source)
    assert np.array_equal(is_nan(ours, target), is_nan(theirs, target))
    assert np.array_equal(is_nan(ours, target), nan_in)  # NaN in, NaN out; nothing else is
    assert np.array_equal(sign(ours)[nan_in], sign(bits)[nan_in].astype(ours.dtype))
    same = ~nan_in
    mismatch = np.flatnonzero(ours[same] != theirs[same])
    assert mismatch.size == 0, [
        (hex(int(bits[same][i])), hex(int(ours[same][i])), hex(int(theirs[same][i])))
        for i in mismatch[:5]
    ]


@pytest.mark.parametrize(("source", "target"), [p for p in PAIRS if p[0] in ("BF16", "F16")])
def test_every_16_bit_pattern_casts_like_torch(source: str, target: str) -> None:
    assert_like_torch(np.arange(2**16, dtype=np.uint16), source, target)


@st.composite
def hard_bits(draw: st.DrawFn, dtype: str) -> int:
    """A float's bits, drawn so that the edge cases of every narrower target come up often."""
    exponent_bits, mantissa_bits = LAYOUT[dtype]
    bias = 2 ** (exponent_bits - 1) - 1
    top = 2**exponent_bits - 1
    # exponents around the targets' subnormal, normal and overflow boundaries (F16: -24..15,
    # BF16/F32: -133..127), zero/subnormal and inf/NaN encodings
    edges = [0, 1, top, top - 1]
    for unbiased in (-150, -149, -134, -133, -127, -126, -25, -24, -15, -14, 15, 16, 127, 128):
        if 0 < unbiased + bias < top:
            edges.append(unbiased + bias)
    exponent = draw(st.one_of(st.sampled_from(edges), st.integers(0, top)))
    full = 2**mantissa_bits - 1
    ties = []
    for kept in (7, 10, 23):  # BF16, F16, F32 mantissas
        if kept < mantissa_bits:
            half = 1 << (mantissa_bits - kept - 1)
            ties += [half, half - 1, half + 1, 3 * half, half * 2 - 1]
    low = draw(st.one_of(st.sampled_from([0, 1, full, *ties]), st.integers(0, full)))
    high = draw(st.integers(0, full)) & ~(2 * max(ties) - 1) if ties else 0
    mantissa = (high | low) & full
    sign_bit = draw(st.integers(0, 1))
    return (sign_bit << (exponent_bits + mantissa_bits)) | (exponent << mantissa_bits) | mantissa


@pytest.mark.parametrize(("source", "target"), [p for p in PAIRS if p[0] in ("F32", "F64")])
@given(data=st.data())
def test_drawn_wide_patterns_cast_like_torch(source: str, target: str, data: st.DataObject) -> None:
    values = data.draw(st.lists(hard_bits(source), min_size=1, max_size=64), label="bits")
    assert_like_torch(np.array(values, dtype=RAW[source]), source, target)


def test_arrays_longer_than_a_block_are_cast_whole() -> None:
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=BLOCK_ELEMENTS * 2 + 3, dtype=np.uint32).reshape(-1, 1)
    assert_like_torch(bits, "F32", "BF16")
    assert_like_torch(bits, "F32", "F16")


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_cast_conversion_equals_torch_on_every_tensor(tmp_path, monkeypatch, dtype: str) -> None:
    """Streamed (renamed, concatenated from two files) and computed (rotary-permuted) groups
    land every chunk in its place: tiny chunks force many per tensor, and an odd block size
    splits chunks unevenly."""
    from ckptlens.demo import tiny_llama, write_hf_checkpoint
    from ckptlens.weights import casts, convert
    from ckptlens.weights.execute import read_tensor
    from ckptlens.weights.safetensors_header import read_checkpoint

    monkeypatch.setattr(casts, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(casts, "BLOCK_ELEMENTS", 77)
    write_hf_checkpoint(str(tmp_path / "hf"), tiny_llama(), 1)  # a file per tensor
    convert(tmp_path / "hf", tmp_path / "same", to="native", progress=False)
    plan = convert(tmp_path / "hf", tmp_path / "cast", to="native", dtype=dtype, progress=False)
    assert {g.moves is None for g in plan.groups} == {True, False}  # computed and streamed
    assert any(len(segments) > 1 for g in plan.groups for _, segments in g.moves or ())
    assert "streamed cast" in plan.describe()
    same = read_checkpoint(str(tmp_path / "same")).tensors
    cast = read_checkpoint(str(tmp_path / "cast")).tensors
    target = {"float16": "F16", "float32": "F32"}[dtype]
    assert same.keys() == cast.keys()
    descriptors: dict[str, int] = {}
    for name, info in same.items():
        expected = torch_cast(read_tensor(info, descriptors), info.dtype, target)
        assert cast[name].dtype == target
        assert np.array_equal(read_tensor(cast[name], descriptors), expected), name


def test_a_cast_plans_memory_does_not_grow_with_streamed_tensors(tmp_path) -> None:
    """A bigger vocabulary makes the embedding (a streamed rename) bigger, not the bound."""
    import attrs

    from ckptlens.demo import tiny_llama, write_hf_checkpoint
    from ckptlens.weights import casts, convert

    bounds = []
    for vocab in (256, 4096):
        model = attrs.evolve(tiny_llama(), vocab_size=vocab)
        write_hf_checkpoint(str(tmp_path / str(vocab)), model, 10**9)
        plan = convert(
            tmp_path / str(vocab), tmp_path / "x", to="native", dtype="fp32", plan_only=True
        )
        bounds.append(plan.memory_bound)
        assert plan.memory_bound >= casts.stream_bound([("BF16", "F32")])
    assert bounds[0] == bounds[1]
