"""Streaming safetensors output: headers fixed by the plan, each tensor written into its place.

Because the plan knows every output name, dtype and shape before any data is read, each
shard's header is written first, which fixes every tensor's offset; tensors are then written
straight into place, in any order and from several threads: no shard is ever held in memory.
Shard names and the index follow the Hugging Face convention (``model.safetensors`` alone, or
``model-0000i-of-0000N.safetensors`` plus ``model.safetensors.index.json``), with
``__metadata__ {"format": "pt"}``.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from ckptlens.dtypes import DTYPE_SIZES
from ckptlens.weights.safetensors_header import INDEX_FILE, SINGLE_FILE

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]
METADATA = {"format": "pt"}
WRITEBACK_BYTES = 1024 * 1024


@frozen
class OutputTensor:
    name: str
    dtype: str
    shape: Shape

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_SIZES[self.dtype]


@frozen
class ShardLayout:
    """One output file: its name and its tensors in data order."""

    filename: str
    tensors: tuple[OutputTensor, ...] = field(converter=tuple)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def header(self) -> bytes:
        """The length-prefixed JSON header, padded with spaces to 8 bytes as safetensors does."""
        entries: dict[str, Any] = {"__metadata__": METADATA}
        offset = 0
        for tensor in self.tensors:
            end = offset + tensor.nbytes
            entries[tensor.name] = {
                "dtype": tensor.dtype,
                "shape": list(tensor.shape),
                "data_offsets": [offset, end],
            }
            offset = end
        text = json.dumps(entries, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        return len(text).to_bytes(8, "little") + text


def shard_filename(index: int, count: int) -> str:
    if count == 1:
        return SINGLE_FILE
    return f"model-{index + 1:05d}-of-{count:05d}.safetensors"


def assign_shards(
    groups: Sequence[Sequence[OutputTensor]], max_shard_bytes: int
) -> list[ShardLayout]:
    """Pack groups in order into shards of at most ``max_shard_bytes`` (a group larger than
    that gets a shard of its own); a group's tensors never straddle two shards."""
    packs: list[list[OutputTensor]] = [[]]
    used = 0
    for group in groups:
        size = sum(t.nbytes for t in group)
        if packs[-1] and used + size > max_shard_bytes:
            packs.append([])
            used = 0
        packs[-1].extend(group)
        used += size
    count = len(packs)
    return [ShardLayout(shard_filename(i, count), pack) for i, pack in enumerate(packs)]


def index_document(shards: Sequence[ShardLayout]) -> dict[str, Any]:
    weight_map = {t.name: s.filename for s in shards for t in s.tensors}
    total = sum(s.nbytes for s in shards)
    return {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}


def write_index(directory: str, shards: Sequence[ShardLayout]) -> None:
    if len(shards) > 1:
        write_json(os.path.join(directory, INDEX_FILE), index_document(shards))


def write_json(path: str, document: Any) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


class OutputFiles:
    """Every shard of a plan, open at once with its header written. Each tensor's place
    (file, offset) is fixed by the headers, so tensors are written in any order, by any thread,
    with positional writes and kernel copies; ``finish`` checks all arrived, then syncs."""

    def __init__(self, directory: str, shards: Sequence[ShardLayout]) -> None:
        self._places: dict[str, tuple[int, int, int]] = {}
        self._descriptors: list[int] = []
        self._lock = threading.Lock()
        self._missing: set[str] = set()
        for layout in shards:
            path = os.path.join(directory, layout.filename)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._descriptors.append(descriptor)
            header = layout.header()
            _pwrite_all(descriptor, memoryview(header), 0)
            offset = len(header)
            for tensor in layout.tensors:
                self._places[tensor.name] = (descriptor, offset, tensor.nbytes)
                offset += tensor.nbytes
            os.ftruncate(descriptor, offset)
        self._missing = set(self._places)

    def write(self, name: str, array: np.ndarray) -> int:
        """Put ``array``'s bytes in tensor ``name``'s place."""
        import numpy as np

        data = np.ascontiguousarray(array)
        descriptor, offset = self._claim(name, data.nbytes)
        _pwrite_all(descriptor, memoryview(data.reshape(-1).view(np.uint8)), offset)
        start_writeback(descriptor, offset, data.nbytes)
        return data.nbytes

    def copy(self, name: str, segments: Sequence[Any], sources: dict[str, int]) -> int:
        """Fill tensor ``name``'s place by kernel copies of source byte ranges (``cp``'s path)."""
        nbytes = sum(segment.length for segment in segments)
        descriptor, offset = self._claim(name, nbytes)
        for segment in segments:
            _copy_range(sources[segment.file], segment.start, descriptor, offset, segment.length)
            offset += segment.length
        start_writeback(descriptor, offset - nbytes, nbytes)
        return nbytes

    def claim(self, name: str, nbytes: int) -> tuple[int, int]:
        """Tensor ``name``'s (descriptor, offset), for a caller that writes it in pieces."""
        return self._claim(name, nbytes)

    def _claim(self, name: str, nbytes: int) -> tuple[int, int]:
        with self._lock:
            place = self._places.get(name)
            if place is None or name not in self._missing or place[2] != nbytes:
                raise RuntimeError(
                    f"the plan and the executor disagree about {name} ({nbytes} bytes, "
                    f"planned {place[2] if place else 'nothing'})"
                )
            self._missing.discard(name)
        return place[0], place[1]

    def finish(self) -> None:
        """Check every tensor was written, then sync and close every shard."""
        try:
            if self._missing:
                raise RuntimeError(f"shards closed before {sorted(self._missing)[:3]}")
            for descriptor in self._descriptors:
                os.fsync(descriptor)
        finally:
            self.abort()

    def abort(self) -> None:
        for descriptor in self._descriptors:
            os.close(descriptor)
        self._descriptors = []


def start_writeback(descriptor: int, offset: int, length: int) -> None:
    """Ask the kernel to begin writing a range to disk without waiting (Linux
    ``sync_file_range(SYNC_FILE_RANGE_WRITE)``), so the disk works while we copy and the final
    fsync has little left to do. A no-op where the call is unavailable."""
    if _SYNC_FILE_RANGE is not None and length >= WRITEBACK_BYTES:
        _SYNC_FILE_RANGE(descriptor, ctypes.c_int64(offset), ctypes.c_int64(length), 2)


def _load_sync_file_range() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return function


_SYNC_FILE_RANGE = _load_sync_file_range()


def _pwrite_all(descriptor: int, data: memoryview, offset: int) -> None:
    while data.nbytes:
        written = os.pwrite(descriptor, data, offset)
        data, offset = data[written:], offset + written


def _copy_range(source: int, start: int, destination: int, offset: int, length: int) -> None:
    """``length`` bytes from ``start`` in ``source`` to ``offset`` in ``destination``."""
    while length:
        copied = os.copy_file_range(source, destination, length, start, offset)
        if copied == 0:
            raise OSError(f"source ended {length} bytes early at offset {start}")
        start, offset, length = start + copied, offset + copied, length - copied
