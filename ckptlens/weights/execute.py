"""Execute a plan: read each group's bytes, run its ops, stream the outputs into the shards.

Reads use ``os.preadv`` into fresh buffers rather than a memory map, so the data alive at any
moment is exactly what the plan's memory bound counts (mapped pages would show up in RSS and
linger). Ops run on numpy arrays of the raw element width. Groups that only move bytes
(renames, dim-0 concatenations and splits, expert stacking) never enter memory: the kernel
copies them file to file, or, when the dtype changes, the cast workers stream them through
fixed buffers (``casts``). Computed groups are cast by the writer a chunk at a time. IO
threads write while the main thread computes (file IO and numpy release the GIL).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ckptlens.dtypes import DTYPE_SIZES, RAW_TYPES
from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.weights import casts
from ckptlens.weights.ops import ShapeError
from ckptlens.weights.plan import WRITE_QUEUE_DEPTH, Group, Plan
from ckptlens.weights.safetensors_header import TensorInfo
from ckptlens.weights.writer import OutputFiles, start_writeback

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


def run_group(group: Group, descriptors: dict[str, int]) -> list[tuple[str, np.ndarray]]:
    """The group's outputs in plan order, still in the source dtype."""
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
    return [(t.name, outputs[t.name]) for t in group.outputs]


def _info(group: Group, name: str) -> TensorInfo:
    return next(info for info in group.reads if info.name == name)


def execute(plan: Plan, directory: str, progress: Progress | None = None) -> None:
    """Write every shard of ``plan`` into ``directory`` (which must exist).

    Four lanes run at once, each tensor going straight to its planned place: one thread runs
    the kernel copies of byte-move groups, ``casts.WORKERS`` threads stream the byte moves
    that change dtype, the main thread reads and computes the other groups, and one thread
    writes (and casts) their results. At most ``WRITE_QUEUE_DEPTH + 1`` computed groups wait
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
    streamer = casts.Streamer()
    futures: list[Future] = []
    try:
        for file in sources:
            sources[file] = os.open(file, os.O_RDONLY)
        for group in plan.groups:  # moves first: they cost little memory and keep the disk busy
            if group.moves is not None and group.dtypes[0] == group.dtypes[1]:
                futures += [
                    copier.submit(_counted, report, outputs.copy, name, segments, sources)
                    for name, segments in group.moves
                ]
            elif group.moves is not None:
                futures += _stream(streamer, group, outputs, sources, report)
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
        streamer.shutdown(cancel=True)
        outputs.abort()
        raise
    finally:
        for pool in (copier, writer):
            pool.shutdown(wait=True)
        streamer.shutdown()
        for descriptor in sources.values():
            if descriptor >= 0:
                os.close(descriptor)


def _stream(
    streamer: casts.Streamer,
    group: Group,
    outputs: OutputFiles,
    sources: dict[str, int],
    report: Progress,
) -> list[Future]:
    """Queue a byte-move group that changes dtype: each source range, cast, into its place."""
    source, target = group.dtypes
    ratio = (DTYPE_SIZES[target], DTYPE_SIZES[source])
    sizes = {t.name: t.nbytes for t in group.outputs}

    def written(descriptor: int, offset: int, length: int) -> None:
        start_writeback(descriptor, offset, length)
        report(length)

    futures = []
    for name, segments in group.moves or ():
        descriptor, offset = outputs.claim(name, sizes[name])
        for segment in segments:
            where = (sources[segment.file], segment.start, segment.length)
            futures += streamer.submit(where, (descriptor, offset), group.dtypes, written)
            offset += segment.length * ratio[0] // ratio[1]
    return futures


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
    return writer.submit(_write_group, outputs, results, group.dtypes, slots, report)


def _write_group(
    outputs: OutputFiles,
    results: list,
    dtypes: tuple[str, str],
    slots: threading.BoundedSemaphore,
    report: Progress,
) -> None:
    try:
        for name, array in results:
            if dtypes[0] == dtypes[1]:
                report(outputs.write(name, array))
            else:
                report(casts.write_cast(outputs, name, array, dtypes))
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
