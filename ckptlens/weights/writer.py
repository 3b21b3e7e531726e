"""Streaming safetensors output: headers fixed by the plan, data appended tensor by tensor.

Because the plan knows every output name, dtype and shape before any data is read, each
shard's header is written first and tensors are then streamed into place one group at a time:
no shard is ever held in memory. Shard names and the index follow the Hugging Face convention
(``model.safetensors`` alone, or ``model-0000i-of-0000N.safetensors`` plus
``model.safetensors.index.json``), with ``__metadata__ {"format": "pt"}``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from ckptlens.weights.safetensors_header import DTYPE_SIZES, INDEX_FILE, SINGLE_FILE

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]
METADATA = {"format": "pt"}


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


class ShardWriter:
    """Writes one shard: the header at open, then each tensor in the layout's order."""

    def __init__(self, directory: str, layout: ShardLayout) -> None:
        self.layout = layout
        self._next = 0
        self._file = open(os.path.join(directory, layout.filename), "wb", buffering=0)  # noqa: SIM115
        _write_all(self._file, layout.header())

    def write(self, name: str, array: np.ndarray) -> int:
        """Append ``array``'s bytes as tensor ``name``; refuses anything out of plan."""
        import numpy as np

        data = np.ascontiguousarray(array)
        self._expect(name, data.nbytes)
        _write_all(self._file, memoryview(data.reshape(-1).view(np.uint8)))
        self._next += 1
        return data.nbytes

    def copy(self, name: str, segments: Sequence[Any], descriptors: dict[str, int]) -> int:
        """Append tensor ``name`` by kernel copies of source byte ranges (``cp``'s path)."""
        expected = self._expect(name, sum(segment.length for segment in segments))
        for segment in segments:
            if segment.file not in descriptors:
                descriptors[segment.file] = os.open(segment.file, os.O_RDONLY)
            _copy_range(
                descriptors[segment.file], self._file.fileno(), segment.start, segment.length
            )
        self._next += 1
        return expected.nbytes

    def _expect(self, name: str, nbytes: int) -> OutputTensor:
        expected = self.layout.tensors[self._next]
        if name != expected.name or nbytes != expected.nbytes:
            raise RuntimeError(
                f"writer expected {expected.name} ({expected.nbytes} bytes), got {name} "
                f"({nbytes} bytes): the plan and the executor disagree"
            )
        return expected

    def close(self) -> None:
        """Sync and close; the shard must be complete."""
        try:
            if self._next != len(self.layout.tensors):
                missing = self.layout.tensors[self._next].name
                raise RuntimeError(f"shard {self.layout.filename} closed before {missing}")
            os.fsync(self._file.fileno())
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


def _write_all(handle: Any, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view.nbytes:
        written = handle.write(view)
        view = view[written:]


def _copy_range(source: int, destination: int, offset: int, length: int) -> None:
    """``length`` bytes from ``offset`` in ``source`` to the current position of ``destination``."""
    while length:
        copied = os.copy_file_range(source, destination, length, offset)
        if copied == 0:
            raise OSError(f"source ended {length} bytes early at offset {offset}")
        offset, length = offset + copied, length - copied
