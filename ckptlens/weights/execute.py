"""Execute a plan: read each group's bytes, run its ops, stream the outputs into the shards.

Reads use ``os.preadv`` into fresh buffers rather than a memory map, so the data alive at any
moment is exactly what the plan's memory bound counts (mapped pages would show up in RSS and
linger). Ops run on numpy arrays of the raw element width; torch is imported only to cast
floating dtypes when the user asked for another dtype. A writer thread overlaps writing one
group with reading and computing the next (file writes release the GIL).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from ckptlens.weights.plan import WRITE_QUEUE_DEPTH, Group, Plan
from ckptlens.weights.safetensors_header import DTYPE_SIZES, TensorInfo
from ckptlens.weights.writer import ShardWriter

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[int], None]
TORCH_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}
POLL_SECONDS = 0.1
RAW_TYPES = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}


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
    floats = raw.view(getattr(torch, TORCH_DTYPES[source]))
    converted = floats.to(getattr(torch, TORCH_DTYPES[target])).view(torch.uint8).numpy()
    return converted.view(RAW_TYPES[DTYPE_SIZES[target]]).reshape(array.shape)


def run_group(group: Group, descriptors: dict[str, int]) -> list[tuple[str, np.ndarray]]:
    """The group's outputs in plan order."""
    native: dict[str, np.ndarray] = {}
    for mapping in group.source:
        arrays = [read_tensor(_info(group, name), descriptors) for name in mapping.external]
        native.update(zip(mapping.native, mapping.op.apply(arrays), strict=True))
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

    The writer thread is a daemon watching a cancel flag, so an interrupt anywhere (even
    between two queue operations) stops it and lets the caller remove the staging directory.
    """
    pending: queue.Queue = queue.Queue(maxsize=WRITE_QUEUE_DEPTH)
    cancel = threading.Event()
    failure: list[BaseException] = []
    arguments = (plan, directory, pending, cancel, failure, progress)
    writer = threading.Thread(target=_write_loop, args=arguments, daemon=True)
    writer.start()
    descriptors: dict[str, int] = {}
    try:
        for group in plan.groups:
            work = group.moves if group.moves is not None else run_group(group, descriptors)
            _hand_over(pending, (group.moves is not None, work), writer, failure)
        _hand_over(pending, None, writer, failure)
        writer.join()
    except BaseException:
        cancel.set()
        writer.join(timeout=10)
        raise
    finally:
        for descriptor in descriptors.values():
            os.close(descriptor)
    if failure:
        raise failure[0]


def _hand_over(pending: queue.Queue, item: object, writer: threading.Thread, failure: list) -> None:
    while writer.is_alive() and not failure:
        try:
            pending.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue
    if failure:
        raise failure[0]


def _write_loop(
    plan: Plan,
    directory: str,
    pending: queue.Queue,
    cancel: threading.Event,
    failure: list[BaseException],
    progress: Progress | None,
) -> None:
    """Consume group outputs in order, opening and closing shards as the layout says."""
    shards = iter(plan.shards)
    writer: ShardWriter | None = None
    remaining = 0
    sources: dict[str, int] = {}
    try:
        for is_move, outputs in _until_done(pending, cancel):
            for name, data in outputs:
                if remaining == 0:
                    if writer is not None:
                        writer.close()
                    layout = next(shards)
                    writer, remaining = ShardWriter(directory, layout), len(layout.tensors)
                if is_move:
                    written = writer.copy(name, data, sources)
                else:
                    written = writer.write(name, data)
                remaining -= 1
                if progress is not None:
                    progress(written)
        if writer is not None and not cancel.is_set():
            writer.close()
            writer = None
    except BaseException as error:
        failure.append(error)
    finally:
        if writer is not None:
            writer.abort()
        for descriptor in sources.values():
            os.close(descriptor)


def _until_done(pending: queue.Queue, cancel: threading.Event) -> Iterator[list]:
    """Items until the end marker (``None``) or until cancelled."""
    while not cancel.is_set():
        try:
            item = pending.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
        if item is None:
            return
        yield item
