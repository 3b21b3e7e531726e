"""Floating-point casts on raw bits with numpy: torch's rounding, without torch, in bounded memory.

Every cast works on raw-width integer arrays (``uint16`` for BF16/F16, ``uint32`` for F32,
``uint64`` for F64) and writes into a caller's buffer, a block of ``BLOCK_ELEMENTS`` at a time
so the temporaries stay in the CPU cache. Widening casts are exact; narrowing ones round to
nearest, ties to even, overflow to infinity and keep subnormals, exactly as
``torch.Tensor.to`` does (proven by a property test on drawn bit patterns). NaN stays NaN with
its sign, made quiet; its other bits are not torch's, which are not fixed either (on this CPU
torch turns every F32 NaN into BF16 ``0xFFFF`` in its vector loop and ``0x7FC0`` in its scalar
one).

The kernels are found by ``(source, target)`` in ``KERNELS``: a later cast (FP8 with block
scales) registers its own entry. ``Streamer`` moves any number of source byte ranges through
``WORKERS`` threads, each with one fixed set of buffers, so a cast conversion's memory is
``stream_bound`` whatever the size of its tensors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ckptlens.dtypes import DTYPE_SIZES, RAW_TYPES
from ckptlens.weights.writer import start_writeback

if TYPE_CHECKING:
    import numpy as np

    from ckptlens.weights.writer import OutputFiles

BLOCK_ELEMENTS = 64 * 1024
"""Elements cast per pass: a block and its scratch fit in L2, so the passes are cache-bound."""
CHUNK_BYTES = 1024 * 1024
"""Source bytes read, cast and written at a time: small enough that the chunk, its cast and
the kernel's copies of both stay in cache (measured here: 1 MiB chunks took half the system
time of 4 or 16 MiB ones)."""
WORKERS = 1
"""Cast threads. One: a second one writing into the same shard made the conversion slower (it
doubled the kernel's time in ``pwrite``); both cores are still used, the other by the main
thread computing groups and by the kernel copies."""
SCRATCH_BYTES = BLOCK_ELEMENTS * 16
"""Four blocks of 32-bit words: two temporaries of a fast kernel, one of F32 for the casts that
go through F32 (see ``_through_f32``), one spare."""

Kernel = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], None]
"""``kernel(source_raw, target_raw, scratch)``: cast one block into ``target_raw``."""


def _bf16_to_f32(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    import numpy as np

    np.left_shift(source, 16, out=target, dtype=np.uint32)  # BF16 is F32's high half


def _f32_to_bf16(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    """Round to nearest even on the dropped 16 bits (carries reach the exponent, so the
    largest finite values round up to infinity); NaN keeps sign and high payload, made quiet."""
    import numpy as np

    bias = scratch.view(np.uint32)[: source.size]
    np.right_shift(source, 16, out=bias)
    np.bitwise_and(bias, 1, out=bias)
    bias += 0x7FFF
    bias += source  # NaN may wrap here; it is replaced below
    bias >>= 16
    np.copyto(target, bias, casting="unsafe")
    nan = (source & 0x7FFFFFFF) > 0x7F800000
    if nan.any():
        target[nan] = (source[nan] >> 16).astype(np.uint16) | 0x0040


def _f32_to_f16(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    """numpy's F32 -> F16 is IEEE round to nearest even; NaNs are made quiet as F16C does."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(target.view(np.float16), source.view(np.float32), casting="same_kind")
    _quiet_nans(target, 0x7C00, 0x0200)


def _f16_to_f32(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    import numpy as np

    with np.errstate(invalid="ignore"):
        np.copyto(target.view(np.float32), source.view(np.float16), casting="same_kind")
    _quiet_nans(target, 0x7F800000, 0x00400000)


def _f64_to_f32(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(target.view(np.float32), source.view(np.float64), casting="same_kind")
    _quiet_nans(target, 0x7F800000, 0x00400000)


def _f32_to_f64(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    import numpy as np

    with np.errstate(invalid="ignore"):
        np.copyto(target.view(np.float64), source.view(np.float32), casting="same_kind")
    _quiet_nans(target, 0x7FF0000000000000, 0x0008000000000000)


def _quiet_nans(target: np.ndarray, exponent: int, quiet: int) -> None:
    """Set the quiet bit of every NaN in ``target`` (numpy keeps signalling NaNs signalling)."""
    magnitude = exponent | ((exponent & -exponent) - 1)  # everything but the sign
    nan = (target & magnitude) > exponent
    if nan.any():
        target[nan] |= quiet


def _bf16_to_f16(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    """Exact by integer rebiasing where the exponent is in F16's normal range (BF16's 7
    mantissa bits fit in F16's 10); zeros, F16 subnormals, overflow, infinity and NaN go
    through F32."""
    import numpy as np

    np.bitwise_and(source, 0x7FFF, out=target)
    target -= 0x3880  # BF16 2**-14: below it wraps around, so one comparison finds both ends
    odd = target >= 0x0F00  # BF16 2**16
    target += 0x80
    target <<= 3
    sign = scratch.view(np.uint16)[: source.size]
    np.bitwise_and(source, 0x8000, out=sign)
    target |= sign
    _patch(odd, source, target, scratch, _BF16_TO_F16_SLOW)


def _f16_to_f32_fast(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    """Exact by rebiasing for normal F16; zeros, subnormals, infinity and NaN go to numpy."""
    import numpy as np

    np.bitwise_and(source, 0x7FFF, out=target, casting="same_kind")
    target -= 0x0400  # F16 2**-14: subnormals and zeros wrap around
    odd = target >= 0x7800  # exponent all ones
    target += 0x0400 + (112 << 10)  # F32 bias 127 - F16 bias 15 = 112
    target <<= 13
    sign = scratch.view(np.uint32)[: source.size]
    np.bitwise_and(source, 0x8000, out=sign, casting="same_kind")
    sign <<= 16
    target |= sign
    _patch(odd, source, target, scratch, _f16_to_f32)


def _f32_to_f16_fast(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    """Round to nearest even by integer arithmetic where the result is a normal F16 (a carry
    out of the largest binade gives infinity, as IEEE rounding does); values that become F16
    subnormals or zero, infinity and NaN go to numpy."""
    import numpy as np

    words = scratch.view(np.uint32)
    bits, lsb = words[: source.size], words[source.size : 2 * source.size]
    np.bitwise_and(source, 0x7FFFFFFF, out=bits)
    bits -= 0x38800000  # F32 2**-14: below it wraps around
    odd = bits >= 0x0F000000  # F32 2**16
    bits += 0x00800000  # now rebiased: F16 exponent and mantissa with 13 bits to drop
    np.right_shift(bits, 13, out=lsb)
    lsb &= 1
    bits += lsb
    bits += 0x0FFF
    np.right_shift(source, 3, out=lsb)  # the sign, to land on bit 15 after the shift below
    lsb &= 1 << 28
    bits |= lsb
    bits >>= 13
    np.copyto(target, bits, casting="unsafe")
    _patch(odd, source, target, scratch, _f32_to_f16)


def _patch(
    odd: np.ndarray, source: np.ndarray, target: np.ndarray, scratch: np.ndarray, slow: Kernel
) -> None:
    """Redo the elements a fast kernel does not cover with the general one."""
    if odd.any():
        import numpy as np

        where = np.flatnonzero(odd)
        fixed = np.empty(where.size, dtype=target.dtype)
        slow(source[where], fixed, scratch)
        target[where] = fixed


def _through_f32(first: Kernel, second: Kernel) -> Kernel:
    """Two casts via an F32 block held in the scratch buffer. Torch goes through F32 for every
    pair below (it converts F64 to F32 before rounding to a 16-bit type), so both round the
    same values the same way."""

    def kernel(source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
        import numpy as np

        words = scratch.view(np.uint32)
        middle = words[words.size - source.size :]  # kernels' own temporaries are at the front
        first(source, middle, scratch)
        second(middle, target, scratch)

    return kernel


_BF16_TO_F16_SLOW = _through_f32(_bf16_to_f32, _f32_to_f16)
KERNELS: dict[tuple[str, str], Kernel] = {
    ("BF16", "F32"): _bf16_to_f32,
    ("F32", "BF16"): _f32_to_bf16,
    ("F16", "F32"): _f16_to_f32_fast,
    ("F32", "F16"): _f32_to_f16_fast,
    ("BF16", "F16"): _bf16_to_f16,
    ("F64", "F32"): _f64_to_f32,
    ("F32", "F64"): _f32_to_f64,
}
for _a, _b in [("F16", "BF16"), ("BF16", "F64"), ("F16", "F64")]:
    KERNELS[_a, _b] = _through_f32(KERNELS[_a, "F32"], KERNELS["F32", _b])
for _a in ("BF16", "F16"):
    KERNELS["F64", _a] = _through_f32(KERNELS["F64", "F32"], KERNELS["F32", _a])


def kernel(source: str, target: str) -> Kernel:
    """The cast from safetensors dtype ``source`` to ``target`` (both in ``KERNELS``)."""
    return KERNELS[source, target]


def cast_into(source_raw: np.ndarray, target_raw: np.ndarray, cast: Kernel) -> None:
    """Cast flat raw arrays of equal length block by block (``target_raw`` is overwritten)."""
    import numpy as np

    _blocks(cast, source_raw, target_raw, np.empty(SCRATCH_BYTES, dtype=np.uint8))


def _blocks(cast: Kernel, source: np.ndarray, target: np.ndarray, scratch: np.ndarray) -> None:
    for start in range(0, source.size, BLOCK_ELEMENTS):
        end = start + BLOCK_ELEMENTS
        cast(source[start:end], target[start:end], scratch)


def cast_array(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """A new raw array of ``target``'s width holding ``array`` (raw ``source`` bits) cast."""
    import numpy as np

    if source == target:
        return array
    flat = np.ascontiguousarray(array).reshape(-1)
    result = np.empty(flat.size, dtype=RAW_TYPES[DTYPE_SIZES[target]])
    cast_into(flat, result, kernel(source, target))
    return result.reshape(array.shape)


def buffer_bytes(source: str, target: str) -> int:
    """One worker's fixed buffers: a source chunk, its cast, and the block scratch."""
    return CHUNK_BYTES + CHUNK_BYTES * DTYPE_SIZES[target] // DTYPE_SIZES[source] + SCRATCH_BYTES


def stream_bound(pairs: Sequence[tuple[str, str]]) -> int:
    """Peak bytes of tensor data the streaming casts hold: every worker's buffers."""
    return WORKERS * max((buffer_bytes(s, t) for s, t in pairs), default=0)


class Streamer:
    """Casts byte ranges of source files into places of output files on ``WORKERS`` threads.

    Each thread owns one set of buffers, allocated on its first chunk and reused, so however
    many chunks are queued the data in memory stays at ``stream_bound``; queued chunks are
    only offsets.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="ckptlens-cast")
        self._local = threading.local()

    def submit(
        self,
        source: tuple[int, int, int],
        target: tuple[int, int],
        dtypes: tuple[str, str],
        written: Callable[[int, int, int], None],
    ) -> list[Future]:
        """Queue ``source`` = (descriptor, offset, length) cast into ``target`` =
        (descriptor, offset), chunk by chunk; ``written(descriptor, offset, length)`` is called
        after each chunk lands."""
        descriptor, offset, length = source
        out_descriptor, out_offset = target
        item = DTYPE_SIZES[dtypes[0]]
        ratio = (DTYPE_SIZES[dtypes[1]], item)
        step = CHUNK_BYTES - CHUNK_BYTES % item
        futures = []
        for start in range(0, length, step):
            size = min(step, length - start)
            place = out_offset + start * ratio[0] // ratio[1]
            futures.append(
                self._pool.submit(
                    self._chunk,
                    (descriptor, offset + start, size),
                    (out_descriptor, place),
                    dtypes,
                    written,
                )
            )
        return futures

    def _chunk(
        self,
        source: tuple[int, int, int],
        target: tuple[int, int],
        dtypes: tuple[str, str],
        written: Callable[[int, int, int], None],
    ) -> None:

        read, cast, scratch = self._buffers(dtypes)
        descriptor, offset, length = source
        view = memoryview(read)[:length]
        _pread_all(descriptor, view, offset)
        source_raw = read[:length].view(RAW_TYPES[DTYPE_SIZES[dtypes[0]]])
        out_length = source_raw.size * DTYPE_SIZES[dtypes[1]]
        target_raw = cast[:out_length].view(RAW_TYPES[DTYPE_SIZES[dtypes[1]]])
        _blocks(kernel(*dtypes), source_raw, target_raw, scratch)
        _pwrite_all(target[0], memoryview(cast)[:out_length], target[1])
        written(target[0], target[1], out_length)

    def _buffers(self, dtypes: tuple[str, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        buffers = getattr(self._local, "buffers", None)
        wanted = buffer_bytes(*dtypes) - SCRATCH_BYTES - CHUNK_BYTES
        if buffers is None or buffers[1].nbytes < wanted:
            buffers = (
                np.empty(CHUNK_BYTES, dtype=np.uint8),
                np.empty(wanted, dtype=np.uint8),
                np.empty(SCRATCH_BYTES, dtype=np.uint8),
            )
            self._local.buffers = buffers
        return buffers

    def shutdown(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


def _pread_all(descriptor: int, view: memoryview, offset: int) -> None:
    while view.nbytes:
        count = os.preadv(descriptor, [view], offset)
        if count == 0:
            raise OSError(f"source ended {view.nbytes} bytes early at offset {offset}")
        view, offset = view[count:], offset + count


def _pwrite_all(descriptor: int, view: memoryview, offset: int) -> None:
    while view.nbytes:
        count = os.pwrite(descriptor, view, offset)
        view, offset = view[count:], offset + count


def write_cast(outputs: OutputFiles, name: str, array: np.ndarray, dtypes: tuple[str, str]) -> int:
    """Write a computed tensor (raw ``dtypes[0]`` bits) into its place as ``dtypes[1]``, a
    chunk at a time through one buffer, so the cast never holds a whole copy of the tensor."""
    import numpy as np

    flat = np.ascontiguousarray(array).reshape(-1)
    source, target = (DTYPE_SIZES[d] for d in dtypes)
    nbytes = flat.size * target
    descriptor, offset = outputs.claim(name, nbytes)
    function = kernel(*dtypes)
    step = CHUNK_BYTES // source
    buffer = np.empty(step * target, dtype=np.uint8)
    scratch = np.empty(SCRATCH_BYTES, dtype=np.uint8)
    for start in range(0, flat.size, step):
        piece = flat[start : start + step]
        cast = buffer[: piece.size * target].view(RAW_TYPES[target])
        _blocks(function, piece, cast, scratch)
        _pwrite_all(descriptor, memoryview(buffer)[: cast.nbytes], offset + start * target)
    start_writeback(descriptor, offset, nbytes)
    return nbytes
