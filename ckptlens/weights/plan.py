"""The conversion plan, built from the config and the safetensors headers alone.

A plan pairs a source weight lens (how the checkpoint on disk maps onto native tensors) with a
target weight lens (how native tensors map onto the output layout). Mappings that share native
tensors form a *group*, the unit of execution: its source tensors are read, pushed through the
source ops to native tensors, then through the inverse target ops to output tensors. Building
the plan checks every source tensor is consumed exactly once, every output produced exactly
once, every shape and dtype agrees with the config, and reports every problem at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from attrs import field, frozen

from ckptlens.dtypes import DTYPE_SIZES, FLOAT_CODE_BY_NAME, FLOAT_CODES
from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.weights import casts
from ckptlens.weights.lens import TensorMapping, WeightLens
from ckptlens.weights.ops import Chain, Shape, TensorOp
from ckptlens.weights.safetensors_header import Checkpoint, TensorInfo
from ckptlens.weights.segments import Segment, group_moves
from ckptlens.weights.writer import OutputTensor, ShardLayout, assign_shards

SITE = "plan"
WRITE_QUEUE_DEPTH = 1
"""Computed groups waiting for (beyond the one being written by) the IO threads; the memory
bound counts them."""


@frozen
class Group:
    """Source tensors -> source ops -> native tensors -> inverse target ops -> outputs."""

    reads: tuple[TensorInfo, ...] = field(converter=tuple)
    source: tuple[TensorMapping, ...] = field(converter=tuple)
    target: tuple[TensorMapping, ...] = field(converter=tuple)
    outputs: tuple[OutputTensor, ...] = field(converter=tuple)
    working_bytes: int
    moves: tuple[tuple[str, tuple[Segment, ...]], ...] | None = None
    """Set when the group is a pure byte move: each output's source byte ranges."""

    @property
    def read_bytes(self) -> int:
        return sum(info.nbytes for info in self.reads)

    @property
    def write_bytes(self) -> int:
        return sum(t.nbytes for t in self.outputs)

    @property
    def dtypes(self) -> tuple[str, str]:
        """Source and output dtype (equal unless the group casts)."""
        return self.reads[0].dtype, self.outputs[0].dtype if self.outputs else self.reads[0].dtype

    @property
    def held_bytes(self) -> int:
        """The computed outputs waiting to be written: still in the source dtype, since the
        writer casts them a chunk at a time."""
        item = DTYPE_SIZES[self.reads[0].dtype]
        return sum(math.prod(t.shape) * item for t in self.outputs)

    def describe(self) -> str:
        ops = [repr(m.op) for m in self.source if not m.op.is_identity]
        ops += [f"inverse {m.op!r}" for m in self.target if not m.op.is_identity]
        reads = ", ".join(f"{i.name} {list(i.shape)} {i.dtype}" for i in self.reads)
        writes = ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in self.outputs)
        if self.moves is None:
            how = f"compute, {human_size(self.working_bytes)}"
        else:
            how = "kernel copy" if self.dtypes[0] == self.dtypes[1] else "streamed cast"
        size = human_size(self.write_bytes)
        return f"{reads}\n    -> {' ; '.join(ops) or 'rename'} ({how})\n    -> {writes} ({size})"


@frozen
class Plan:
    source_directory: str
    source_layout: str
    target_layout: str
    dtype: str | None
    groups: tuple[Group, ...] = field(converter=tuple)
    shards: tuple[ShardLayout, ...] = field(converter=tuple)
    # What the conversion does besides tensors (how config.json is made, which other files
    # are copied or left behind), one line each; set by ``convert``.
    notes: tuple[str, ...] = field(default=(), converter=tuple)

    @property
    def read_bytes(self) -> int:
        return sum(g.read_bytes for g in self.groups)

    @property
    def write_bytes(self) -> int:
        return sum(g.write_bytes for g in self.groups)

    @property
    def memory_bound(self) -> int:
        """Peak bytes of tensor data alive at once: the group being computed, the groups queued
        for and being written by the writer thread (plus its cast buffers when it casts), and
        the cast workers' fixed buffers. Byte moves hold no data; streamed casts hold only the
        workers' buffers, whatever the size of their tensors."""
        computed = [g for g in self.groups if g.moves is None]
        streamed = {g.dtypes for g in self.groups if g.moves is not None} - _SAME
        bound = casts.stream_bound(sorted(streamed))
        if computed:
            largest = max(g.held_bytes for g in computed)
            bound += max(g.working_bytes for g in computed) + (WRITE_QUEUE_DEPTH + 1) * largest
            cast = {g.dtypes for g in computed} - _SAME
            bound += max((casts.buffer_bytes(*pair) for pair in cast), default=0)
        return bound

    def describe(self, verbose: bool = True) -> str:
        cast = "" if self.dtype is None else f" as {self.dtype}"
        lines = [
            f"plan: {self.source_layout} -> {self.target_layout}{cast}",
            f"  {_count(len(self.groups), 'group')}, {_count(len(self.shards), 'shard')},"
            f" read {human_size(self.read_bytes)}, write {human_size(self.write_bytes)},"
            f" peak tensor memory <= {human_size(self.memory_bound)}",
        ]
        lines += [f"  {note}" for note in self.notes]
        if verbose:
            for shard in self.shards:
                lines.append(
                    f"  {shard.filename}: {len(shard.tensors)} tensors, {human_size(shard.nbytes)}"
                )
            lines += [f"  {g.describe()}" for g in self.groups]
        return "\n".join(lines)


_SAME = {(code, code) for code in DTYPE_SIZES}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def human_size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024  # type: ignore[assignment]
    return f"{count} B"


def build_plan(
    checkpoint: Checkpoint,
    source: WeightLens,
    target: WeightLens,
    *,
    dtype: str | None = None,
    max_shard_bytes: int = 5 * 1024**3,
) -> Plan:
    """The whole conversion, checked; raises ``SourceError`` listing every problem."""
    problems = list(_source_problems(checkpoint, source))
    if problems:
        raise SourceError(problems)
    groups = []
    for source_maps, target_maps in _components(source, target):
        group, found = _group(checkpoint, source, source_maps, target_maps, dtype)
        problems += found
        groups.append(group)
    if problems:
        raise SourceError(problems)
    shards = assign_shards([g.outputs for g in groups], max_shard_bytes)
    return Plan(checkpoint.directory, source.layout, target.layout, dtype, groups, shards)


def _source_problems(checkpoint: Checkpoint, source: WeightLens) -> Iterator[Violation]:
    expected = source.external_shapes()
    found = checkpoint.tensors
    for name, info in found.items():
        if name not in expected:
            yield Violation(
                name,
                f"a tensor of layout {source.layout!r}",
                f"unknown tensor {list(info.shape)}",
                SITE,
            )
        elif tuple(info.shape) != tuple(expected[name]):
            yield Violation(
                name, f"shape {list(expected[name])} (from the config)", f"{list(info.shape)}", SITE
            )
    for name in expected:
        if name not in found:
            yield Violation(
                name, f"shape {list(expected[name])} (from the config)", "missing", SITE
            )
    yield from _dtype_problems(checkpoint, source)


# The config's ``dtype`` names the floating dtype every weight is stored in.


def _dtype_problems(checkpoint: Checkpoint, source: WeightLens) -> Iterator[Violation]:
    """One violation per floating dtype that disagrees with the config's, naming the tensors."""
    stated = source.model.metadata.dtype
    code = FLOAT_CODE_BY_NAME.get(stated or "")
    if code is None:
        return  # no dtype stated, or one that says nothing about floating weights
    wrong: dict[str, list[str]] = {}
    for name, info in checkpoint.tensors.items():
        if info.dtype in FLOAT_CODES and info.dtype != code:
            wrong.setdefault(info.dtype, []).append(name)
    for found, names in sorted(wrong.items()):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        yield Violation(
            "config.json $.dtype",
            f"{code} tensors (the config says {stated!r})",
            f"{found} in {shown}",
            SITE,
        )


def _components(
    source: WeightLens, target: WeightLens
) -> list[tuple[list[TensorMapping], list[TensorMapping]]]:
    """Mappings linked through shared native tensors, in target order."""
    by_native = source.by_native()
    parent: dict[int, int] = {}

    def find(key: int) -> int:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    sources = list(source.mappings)
    position = {id(m): i for i, m in enumerate(sources)}
    for mapping in target.mappings:
        roots = [find(position[id(by_native[n])]) for n in mapping.native]
        for root in roots[1:]:
            parent[root] = roots[0]
    components: dict[int, tuple[list[TensorMapping], list[TensorMapping]]] = {}
    for mapping in target.mappings:
        root = find(position[id(by_native[mapping.native[0]])])
        components.setdefault(root, ([], []))[1].append(mapping)
    for index, mapping in enumerate(sources):
        components[find(index)][0].append(mapping)
    return list(components.values())


def _group(
    checkpoint: Checkpoint,
    lens: WeightLens,
    source_maps: Sequence[TensorMapping],
    target_maps: Sequence[TensorMapping],
    dtype: str | None,
) -> tuple[Group, list[Violation]]:
    reads = [checkpoint.tensors[name] for m in source_maps for name in m.external]
    dtypes = sorted({info.dtype for info in reads})
    problems = []
    if len(dtypes) > 1:
        found = ", ".join(f"{i.name}: {i.dtype}" for i in reads)
        problems.append(
            Violation(reads[0].name, "one dtype for tensors fused together", found, SITE)
        )
    source_dtype = reads[0].dtype
    out_dtype = dtype if dtype is not None and source_dtype in FLOAT_CODES else source_dtype
    native_shapes = lens.native_shapes()
    outputs = [
        OutputTensor(name, out_dtype, shape)
        for m in target_maps
        for name, shape in m.external_shapes(native_shapes).items()
    ]
    item = DTYPE_SIZES[source_dtype]
    intermediate = sum(
        _step_bytes(m.op, [native_shapes[n] for n in m.native], item, inverse=True)
        for m in target_maps
    )
    intermediate += sum(
        _step_bytes(m.op, [tuple(checkpoint.tensors[n].shape) for n in m.external], item)
        for m in source_maps
    )
    moves = group_moves(reads, source_maps, target_maps)
    if moves is not None:
        # the kernel copies file to file, or the cast workers stream it through their buffers
        return Group(reads, source_maps, target_maps, outputs, 0, tuple(moves.items())), problems
    working = sum(i.nbytes for i in reads) + intermediate
    return Group(reads, source_maps, target_maps, outputs, working), problems


def _step_bytes(op: TensorOp, shapes: list[Shape], item: int, inverse: bool = False) -> int:
    """Bytes an op may allocate: every non-identity step's outputs, counted as fresh copies."""
    op = op.inverse() if inverse else op
    steps = op.steps if isinstance(op, Chain) else (op,)
    total = 0
    for step in steps:
        shapes = step.output_shapes(shapes)
        if not step.is_identity:
            total += sum(math.prod(s) for s in shapes) * item
    return total
