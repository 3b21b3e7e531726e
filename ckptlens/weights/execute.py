"""Execute a plan: read each group's bytes, run its ops, stream the outputs into the shards.

Reads use ``os.preadv`` into fresh buffers rather than a memory map, so the data alive at any
moment is exactly what the plan's memory bound counts (mapped pages would show up in RSS and
linger). Ops run on numpy arrays of the raw element width; torch is imported only to cast
floating dtypes when the user asked for another dtype. Groups that only move bytes (renames,
dim-0 concatenations and splits, expert stacking) never enter memory: the kernel copies them
file to file. IO threads write while the main thread computes (file IO releases the GIL).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ckptlens.dtypes import BY_CODE, DTYPE_SIZES, RAW_TYPES
from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.weights.ops import ShapeError
from ckptlens.weights.plan import WRITE_QUEUE_DEPTH, Group, Plan
from ckptlens.weights.safetensors_header import TensorInfo
from ckptlens.weights.writer import OutputFiles

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[int], None]
SITE = "execute"
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1024 * 1024


def read_tensor(info: TensorInfo, descriptors: dict[str, int]) -> np.ndarray:
    """The tensor's bytes as a raw-width array of its shape (a fresh buffer, not a mapping)."""
    import numpy as np

    if info.file not in descriptors:
        descriptors[info.file] = os.open(info.file, os.O_RDONLY)
    buffer = np.empty(info.nbytes, dtype=np.uint8)
    view, offset = memoryview(buffer), info.start
    while view.nbytes:
        count = os.preadv(descriptors[info.file], [view], offset)
        if count == 0:
            raise OSError(f"{info.file} ended before tensor {info.name} did")
        view, offset = view[count:], offset + count
    return buffer.view(RAW_TYPES[DTYPE_SIZES[info.dtype]]).reshape(info.shape)


def cast(array: np.ndarray, source: str, target: str) -> np.ndarray:
    """Convert floating dtypes (round to nearest even, as torch does)."""
    if source == target:
        return array
    import numpy as np
    import torch

    raw = torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    floats = raw.view(getattr(torch, BY_CODE[source].name))
    converted = floats.to(getattr(torch, BY_CODE[target].name)).view(torch.uint8).numpy()
    return converted.view(RAW_TYPES[DTYPE_SIZES[target]]).reshape(array.shape)


def run_group(group: Group, descriptors: dict[str, int]) -> list[tuple[str, np.ndarray]]:
    """The group's outputs in plan order."""
    native: dict[str, np.ndarray] = {}
    for mapping in group.source:
        arrays = [read_tensor(_info(group, name), descriptors) for name in mapping.external]
        try:
            native.update(zip(mapping.native, mapping.op.apply(arrays), strict=True))
        except ShapeError as error:  # data-dependent: tied copies that differ
            found = str(error)
            raise SourceError(
                [Violation(", ".join(mapping.external), "valid data", found, SITE)]
            ) from None
    outputs: dict[str, np.ndarray] = {}
    for mapping in group.target:
        arrays = mapping.op.inverse().apply([native[name] for name in mapping.native])
        outputs.update(zip(mapping.external, arrays, strict=True))
    source_dtype = group.reads[0].dtype
    return [(t.name, cast(outputs[t.name], source_dtype, t.dtype)) for t in group.outputs]


def _info(group: Group, name: str) -> TensorInfo:
    return next(info for info in group.reads if info.name == name)


def execute(plan: Plan, directory: str, progress: Progress | None = None) -> None:
    """Write every shard of ``plan`` into ``directory`` (which must exist).

    Three lanes run at once, each tensor going straight to its planned place: one thread runs
    the kernel copies of byte-move groups, the main thread reads and computes the other groups,
    and one thread writes their results. At most ``WRITE_QUEUE_DEPTH + 1`` computed groups wait
    for writing, which is what the plan's memory bound counts. An interrupt cancels pending
    work before the caller cleans up.
    """
    _return_large_buffers_to_the_system()
    sources = {info.file: -1 for group in plan.groups for info in group.reads}
    outputs = OutputFiles(directory, plan.shards)
    report = _thread_safe(progress)
    slots = threading.BoundedSemaphore(WRITE_QUEUE_DEPTH + 1)
    copier = ThreadPoolExecutor(1, thread_name_prefix="ckptlens-copy")
    writer = ThreadPoolExecutor(1, thread_name_prefix="ckptlens-write")
    futures: list[Future] = []
    try:
        for file in sources:
            sources[file] = os.open(file, os.O_RDONLY)
        for group in plan.groups:  # moves first: they cost no memory and keep the disk busy
            if group.moves is not None:
                futures += [
                    copier.submit(_counted, report, outputs.copy, name, segments, sources)
                    for name, segments in group.moves
                ]
        for group in plan.groups:
            if group.moves is None:
                _raise_failures(futures)
                futures.append(_compute(writer, group, outputs, sources, slots, report))
        for future in futures:
            future.result()
        outputs.finish()
    except BaseException:
        for pool in (copier, writer):
            pool.shutdown(wait=True, cancel_futures=True)
        outputs.abort()
        raise
    finally:
        for pool in (copier, writer):
            pool.shutdown(wait=True)
        for descriptor in sources.values():
            if descriptor >= 0:
                os.close(descriptor)


def _return_large_buffers_to_the_system() -> None:
    """glibc raises its mmap threshold after freeing a large block, after which tensor-sized
    buffers come from the heap and freed ones stay resident; pinning the threshold keeps
    every tensor buffer a mapping of its own, returned on free, so RSS follows the plan."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to pin
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _compute(
    writer: ThreadPoolExecutor,
    group: Group,
    outputs: OutputFiles,
    sources: dict[str, int],
    slots: threading.BoundedSemaphore,
    report: Progress,
) -> Future:
    """Compute one group (waiting for a free slot first) and queue its writes."""
    slots.acquire()
    try:
        results = run_group(group, sources)
    except BaseException:
        slots.release()
        raise
    return writer.submit(_write_group, outputs, results, slots, report)


def _write_group(
    outputs: OutputFiles, results: list, slots: threading.BoundedSemaphore, report: Progress
) -> None:
    try:
        for name, array in results:
            report(outputs.write(name, array))
    finally:
        results.clear()  # drop the arrays before the slot frees: the memory bound relies on it
        slots.release()


def _counted(report: Progress, action: Callable[..., int], *args: Any) -> None:
    report(action(*args))


def _raise_failures(futures: list[Future]) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def _thread_safe(progress: Progress | None) -> Progress:
    lock = threading.Lock()

    def report(count: int) -> None:
        if progress is not None:
            with lock:
                progress(count)

    return report
