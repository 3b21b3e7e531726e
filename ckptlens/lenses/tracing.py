"""Tracing what a lens really reads and writes, for the footprint-honesty law.

Each leaf lens runs alone on the part of the source (and view) it would see, reading through a
dict that records every key it looks at and writing into a copy, so a lens cannot hide behind
a sibling that declares the path it touched. Combinators route the walk (``Lens._strays``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ckptlens.lenses.context import ReadContext, Style, WriteContext
from ckptlens.lenses.footprints import Claim
from ckptlens.lenses.paths import ANY_KEY, Path, dotted, json_copy

if TYPE_CHECKING:
    from ckptlens.lenses.core import Lens


class TracedDict(dict):
    """A dict that records every key read or tested (``[]``, ``get``, ``in``) with its path."""

    def __init__(self, data: dict, path: Path, log: set[Path]) -> None:
        super().__init__({key: trace(value, (*path, key), log) for key, value in data.items()})
        self._path = path
        self._log = log

    def __getitem__(self, key: Any) -> Any:
        self._log.add((*self._path, key))
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._log.add((*self._path, key))
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self._log.add((*self._path, key))
        return super().__contains__(key)

    def items(self) -> Any:
        for key in self:
            self._log.add((*self._path, key))
        return super().items()

    def values(self) -> Any:
        return [value for _, value in self.items()]


def trace(value: Any, path: Path, log: set[Path]) -> Any:
    if isinstance(value, dict):
        return TracedDict(value, path, log)
    return value


def matches(pattern: Path, path: Path) -> bool:
    """Whether ``path`` matches ``pattern`` (``ANY_KEY`` matches any one key)."""
    return len(pattern) == len(path) and all(
        p is ANY_KEY or p == q for p, q in zip(pattern, path, strict=True)
    )


def declared(path: Path, claims: list[Claim], deps: list[Path]) -> bool:
    """Whether ``path`` lies inside what a lens declared it may touch."""
    for claim in claims:
        n = len(claim.path)
        if matches(claim.path, path[:n]) and (len(path) == n or claim.subtree):
            return True
        if len(path) < n and matches(claim.path[: len(path)], path):
            return True  # navigating towards a declared path
    return any(matches(dep, path) for dep in deps)


def changed_paths(old: Any, new: Any, at: Path = ()) -> Iterator[Path]:
    """Paths whose value differs between two JSON trees (down to leaves where both are dicts)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old.keys() | new.keys():
            if key not in old or key not in new:
                yield (*at, key)
            else:
                yield from changed_paths(old[key], new[key], (*at, key))
    elif type(old) is not type(new) or old != new:
        yield at


def leaf_strays(lens: Lens, src: Any, at: Path, view: Any, strays: list[str]) -> None:
    """Run ``lens`` alone on ``src`` (at source path ``at``) and ``view``; add to ``strays``
    each source path it read or changed outside its own footprint."""
    log: set[Path] = set()
    lens._read(trace(src, at, log), at, ReadContext(root=src))
    report(lens, log, at, strays, "read")
    if isinstance(view, dict) and isinstance(src, dict):
        ctx = WriteContext(style=Style(), fresh=False, view_root=view)
        written = lens._write(view, (), json_copy(src), src, at, ctx)
        changed = {(*at, *path) for path in changed_paths(src, written)}
        report(lens, changed, at, strays, "changed", writes=True)


def report(
    lens: Lens, paths: set[Path], at: Path, strays: list[str], verb: str, writes: bool = False
) -> None:
    """Add to ``strays`` the ``paths`` (read, or with ``writes`` changed) that ``lens`` did not
    declare."""
    fp = lens.footprint
    claims = [claim.prefixed(at) for claim in (fp.claims if writes else fp.claims | fp.kept)]
    deps = [] if writes else [(*at, *dep) for dep in fp.deps]  # read-only, owned by others
    for path in sorted(paths, key=str):
        if not declared(path, claims, deps):
            strays.append(f"{lens.name} @ {lens.site} {verb} {dotted(path)}")
