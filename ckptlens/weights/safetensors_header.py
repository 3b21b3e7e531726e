"""Read and validate safetensors headers and shard indexes without reading tensor data.

A safetensors file is an 8-byte little-endian header length, a JSON header (tensor name ->
dtype, shape, [begin, end) offsets into the data region), then the data region. Everything a
plan needs is in the header, so a checkpoint is checked completely (offsets contiguous and in
bounds, sizes matching dtype x shape, the file long enough, every index entry pointing at a
shard that holds it) before any byte of data is read. Problems are collected, never raised one
at a time.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator
from typing import Any

from attrs import frozen

from ckptlens.dtypes import DTYPE_SIZES
from ckptlens.files import read_json_object
from ckptlens.lenses.errors import SourceError, Violation, quote

Shape = tuple[int, ...]

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
MAX_HEADER_BYTES = 100 * 1024 * 1024
SITE = "safetensors header"


@frozen
class TensorInfo:
    """Where one tensor's bytes are: ``[start, end)`` are absolute file offsets."""

    name: str
    file: str
    dtype: str
    shape: Shape
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@frozen
class Checkpoint:
    """The tensors of a checkpoint directory, by name, and the shard files that hold them."""

    directory: str
    tensors: dict[str, TensorInfo]
    files: tuple[str, ...]

    @property
    def nbytes(self) -> int:
        return sum(info.nbytes for info in self.tensors.values())


def read_checkpoint(directory: str) -> Checkpoint:
    """All tensors of ``directory``; raises ``SourceError`` listing every problem found."""
    problems: list[Violation] = []
    files = _weight_files(directory, problems)
    tensors: dict[str, TensorInfo] = {}
    for filename in files:
        infos, found = read_header(os.path.join(directory, filename))
        problems += found
        for info in infos:
            if info.name in tensors:
                where = f"{tensors[info.name].file} and {filename}"
                problems.append(Violation(info.name, "one shard per tensor", where, SITE))
            tensors[info.name] = info
    if os.path.exists(os.path.join(directory, INDEX_FILE)):
        problems += _index_problems(directory, tensors)
    if problems:
        raise SourceError(problems)
    return Checkpoint(directory, tensors, tuple(files))


def _weight_files(directory: str, problems: list[Violation]) -> list[str]:
    """The shard files of ``directory``: from the index if there is one, else the single file."""
    index_path = os.path.join(directory, INDEX_FILE)
    if os.path.exists(index_path):
        weight_map = _weight_map(index_path, problems)
        shards = list(dict.fromkeys(weight_map.values()))
        present = [s for s in shards if os.path.isfile(os.path.join(directory, s))]
        for shard in shards:
            if shard not in present:
                problems.append(
                    Violation(
                        f"{INDEX_FILE}:$.weight_map",
                        "existing shards",
                        f"missing shard {shard!r}",
                        SITE,
                    )
                )
        return present
    if os.path.isfile(os.path.join(directory, SINGLE_FILE)):
        return [SINGLE_FILE]
    pickles = sorted(n for n in _listdir(directory) if n.endswith(PICKLE_SUFFIXES))
    found = f"pickle files {pickles} (refused: unpickling runs code)" if pickles else "no weights"
    problems.append(Violation(directory, f"{SINGLE_FILE} or {INDEX_FILE}", found, SITE))
    return []


def _listdir(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _weight_map(index_path: str, problems: list[Violation]) -> dict[str, str]:
    try:
        document = read_json_object(index_path, "a JSON index")
    except SourceError as error:
        problems.extend(error.violations)
        return {}
    weight_map = document.get("weight_map")
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        problems.append(
            Violation(
                f"{INDEX_FILE}:$.weight_map",
                "an object of names to shard files",
                quote(weight_map, 80),
                SITE,
            )
        )
        return {}
    unsafe = [v for v in weight_map.values() if os.path.basename(v) != v]
    for shard in dict.fromkeys(unsafe):
        problems.append(
            Violation(
                f"{INDEX_FILE}:$.weight_map",
                "shard file names in this directory",
                repr(shard),
                SITE,
            )
        )
    return {k: v for k, v in weight_map.items() if v not in unsafe}


def _index_problems(directory: str, tensors: dict[str, TensorInfo]) -> Iterator[Violation]:
    weight_map = _weight_map(os.path.join(directory, INDEX_FILE), [])
    for name, shard in weight_map.items():
        info = tensors.get(name)
        if info is None:
            if os.path.isfile(os.path.join(directory, shard)):
                yield Violation(
                    name, f"in {shard} as the index says", "absent from the shard", SITE
                )
        elif os.path.basename(info.file) != shard:
            yield Violation(
                name, f"in {shard} as the index says", f"in {os.path.basename(info.file)}", SITE
            )
    for name, info in tensors.items():
        if name not in weight_map:
            where = os.path.basename(info.file)
            yield Violation(name, f"listed in {INDEX_FILE}", f"only in {where}", SITE)


def read_header(path: str) -> tuple[list[TensorInfo], list[Violation]]:
    """The tensors of one safetensors file and every problem with its header."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
            if length < 0 or length > min(MAX_HEADER_BYTES, size - 8):
                return [], [
                    Violation(
                        name,
                        "an 8-byte header length within the file",
                        f"{length} (file of {size} bytes)",
                        SITE,
                    )
                ]
            header = json.loads(handle.read(length))
    except (OSError, ValueError) as error:
        return [], [Violation(name, "a readable safetensors header", quote(str(error)), SITE)]
    except RecursionError:
        return [], [Violation(name, "a header of sensible depth", "a deeper header", SITE)]
    if not isinstance(header, dict):
        return [], [Violation(name, "a JSON object header", type(header).__name__, SITE)]
    data_start = 8 + length
    problems = list(_metadata_problems(name, header.get("__metadata__")))
    infos = []
    for tensor, entry in header.items():
        if tensor == "__metadata__":
            continue
        info, found = _entry(path, tensor, entry, data_start)
        problems += found
        if info is not None:
            infos.append(info)
    problems += _layout_problems(name, infos, data_start, size)
    return infos, problems


def _metadata_problems(name: str, metadata: Any) -> Iterator[Violation]:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        yield Violation(f"{name}:__metadata__", "an object of strings", quote(metadata, 80), SITE)


def _entry(
    path: str, tensor: str, entry: Any, data_start: int
) -> tuple[TensorInfo | None, list[Violation]]:
    where = f"{os.path.basename(path)}:{tensor}"
    if not isinstance(entry, dict):
        return None, [
            Violation(where, "an object with dtype, shape, data_offsets", quote(entry, 80), SITE)
        ]
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    problems = []
    if dtype not in DTYPE_SIZES:
        problems.append(
            Violation(f"{where}.dtype", f"one of {sorted(DTYPE_SIZES)}", quote(dtype), SITE)
        )
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        problems.append(
            Violation(f"{where}.shape", "a list of non-negative integers", quote(shape), SITE)
        )
    if not _is_offsets(offsets):
        problems.append(
            Violation(
                f"{where}.data_offsets", "[begin, end] with 0 <= begin <= end", quote(offsets), SITE
            )
        )
    if problems:
        return None, problems
    expected = math.prod(shape) * DTYPE_SIZES[dtype]
    if offsets[1] - offsets[0] != expected:
        found = f"{offsets[1] - offsets[0]} bytes"
        return None, [
            Violation(f"{where}.data_offsets", f"{expected} bytes ({dtype} x {shape})", found, SITE)
        ]
    start = data_start + offsets[0]
    return TensorInfo(tensor, path, dtype, tuple(shape), start, data_start + offsets[1]), []


def _is_offsets(offsets: Any) -> bool:
    return (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )


def _layout_problems(
    name: str, infos: list[TensorInfo], data_start: int, size: int
) -> Iterator[Violation]:
    """Offsets must tile the data region exactly: no gap, no overlap, nothing past the end."""
    cursor = data_start
    for info in sorted(infos, key=lambda i: (i.start, i.end)):
        if info.start != cursor:
            relation = "overlaps the previous tensor" if info.start < cursor else "leaves a gap"
            yield Violation(
                f"{name}:{info.name}.data_offsets",
                f"to start at {cursor - data_start}",
                f"{info.start - data_start} ({relation})",
                SITE,
            )
        cursor = max(cursor, info.end)
    if cursor != size:
        state = "truncated" if cursor > size else "has trailing bytes"
        yield Violation(
            name, f"{cursor} bytes as the header says", f"{size} bytes (file {state})", SITE
        )
