"""Coverage walkers: prove on the schema that a lens claims every view field exactly once,
and trace which source paths a lens really reads and writes."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import attrs

from ckptlens.lenses.combinators import At, Compose, Record
from ckptlens.lenses.context import ReadContext, Style, WriteContext
from ckptlens.lenses.core import Lens
from ckptlens.lenses.footprints import Claim
from ckptlens.lenses.paths import ANY_KEY, TAG_KEY, Member, Path, json_copy, lookup
from ckptlens.lenses.structure import DictOf, Spelling, Structured, Under, Union


def schema_leaves(
    cls: type, unions: dict[Any, tuple[type, ...]], prefix: Path = ()
) -> Iterator[Path]:
    """Every leaf path of an attrs schema, with every union member enumerated: a member's
    fields sit under ``Member(tag)`` and its tag is the leaf ``<union path>.type``."""
    hints = typing.get_type_hints(cls)
    for attribute in attrs.fields(cls):
        yield from _type_leaves(hints[attribute.name], unions, (*prefix, attribute.name))


def _type_leaves(hint: Any, unions: dict[Any, tuple[type, ...]], path: Path) -> Iterator[Path]:
    members = unions.get(hint)
    if members is None and _is_tagged(hint):
        members = (hint,)
    if members is not None:
        yield (*path, TAG_KEY)
        for member in members:
            yield from schema_leaves(member, unions, (*path, Member(member.tag)))
        return
    if isinstance(hint, type) and attrs.has(hint):
        yield from schema_leaves(hint, unions, path)
        return
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is dict and len(args) == 2 and isinstance(args[1], type) and attrs.has(args[1]):
        yield from schema_leaves(args[1], unions, (*path, ANY_KEY))
        return
    yield path


def _is_tagged(hint: Any) -> bool:
    return (
        isinstance(hint, type) and attrs.has(hint) and isinstance(getattr(hint, "tag", None), str)
    )


def view_claims(lens: Lens, prefix: Path = ()) -> list[tuple[Claim, Lens]]:
    """Every view claim with the lens that makes it, as a list so that double claims show."""
    if isinstance(lens, Compose):
        if getattr(lens.second, "iso", False):
            return view_claims(lens.first, prefix)
        return view_claims(lens.second, prefix)
    if isinstance(lens, Record):
        return [item for part in lens.parts for item in view_claims(part, prefix)]
    if isinstance(lens, At):
        return view_claims(lens.inner, prefix + lens.prefix)
    if isinstance(lens, Spelling):
        # Every spelling shows the same view; count the fields once.
        return view_claims(next(iter(lens.spellings.values())), prefix)
    if isinstance(lens, Union):
        claims = [(Claim((*prefix, TAG_KEY)), lens)]
        for tag, branch in lens.branches.items():
            claims.extend(view_claims(branch, (*prefix, Member(tag))))
        return claims
    if lens.children():
        return [item for child in lens.children() for item in view_claims(child, prefix)]
    return [(claim.prefixed(prefix), lens) for claim in lens.footprint.view]


def view_coverage_problems(
    lens: Lens, schema: type, unions: dict[Any, tuple[type, ...]]
) -> list[str]:
    """Schema leaves no lens claims, and leaves claimed more than once, among the union members
    the lens supports (a member it supports is one whose marker appears in its claims)."""
    claims = view_claims(lens)
    supported = {
        claim.path[: i + 1]
        for claim, _ in claims
        for i, part in enumerate(claim.path)
        if isinstance(part, Member)
    }
    problems = []
    leaves = named_leaves(list(schema_leaves(schema, unions)), [claim.path for claim, _ in claims])
    for leaf in leaves:
        if not _members_supported(leaf, supported):
            continue
        owners = [owner for claim, owner in claims if _covers(claim, leaf)]
        if not owners:
            problems.append(f"view field {_show(leaf)} is claimed by no lens and pinned by none")
        elif len(owners) > 1:
            names = ", ".join(f"{o.name} @ {o.site}" for o in owners)
            problems.append(f"view field {_show(leaf)} is claimed {len(owners)} times: {names}")
    for claim, owner in claims:
        if not any(_covers(claim, leaf) or _covers(Claim(leaf), claim.path) for leaf in leaves):
            problems.append(
                f"{owner.name} @ {owner.site} claims {_show(claim.path)}, which the schema lacks"
            )
    return problems


def named_leaves(leaves: list[Path], claimed: list[Path]) -> list[Path]:
    """``leaves`` with each dict wildcard (``blocks.*``) replaced by the entry names the claims
    use there, when they name some (a format whose pattern blocks are ``full``/``sliding``)."""
    out: list[Path] = []
    for leaf in leaves:
        if ANY_KEY not in leaf:
            out.append(leaf)
            continue
        i = leaf.index(ANY_KEY)
        names = {
            path[i]
            for path in claimed
            if len(path) > i and path[:i] == leaf[:i] and isinstance(path[i], str)
        }
        if not names:
            out.append(leaf)
            continue
        named = [(*leaf[:i], name, *leaf[i + 1 :]) for name in sorted(names)]
        out.extend(named_leaves(named, claimed))
    return out


def _members_supported(leaf: Path, supported: set[Path]) -> bool:
    return all(
        leaf[: i + 1] in supported for i, part in enumerate(leaf) if isinstance(part, Member)
    )


def _covers(claim: Claim, path: Path) -> bool:
    if claim.path == path:
        return True
    return claim.subtree and path[: len(claim.path)] == claim.path


def _show(path: Path) -> str:
    return ".".join(str(part) for part in path)


# ---------------------------------------------------------------- source tracing


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


# ---------------------------------------------------------------- per-lens footprint honesty


def footprint_strays(lens: Lens, source: Any, view: Any) -> list[str]:
    """Source paths some lens read or changed outside its *own* declared footprint.

    Each leaf lens runs alone on the part of ``source`` (and ``view``) it would see, reading
    through a tracing dict and writing into a copy, so a lens cannot hide behind a sibling
    that declares the path it touched."""
    strays: list[str] = []
    _walk(lens, source, (), view, strays)
    return strays


def _walk(lens: Lens, src: Any, at: Path, view: Any, strays: list[str]) -> None:
    if isinstance(lens, Compose):
        _walk(lens.first, src, at, view, strays)
    elif isinstance(lens, Structured):
        return
    elif isinstance(lens, At):
        _walk(lens.inner, src, at, lookup(view, lens.prefix), strays)
    elif isinstance(lens, Under):
        sub = src.get(lens.key) if isinstance(src, dict) else None
        _walk(lens.inner, sub if isinstance(sub, dict) else {}, (*at, lens.key), view, strays)
    elif isinstance(lens, DictOf):
        for name, sub in (src or {}).items():
            _walk(lens.entry, sub, (*at, name), lookup(view, (name,)), strays)
    elif isinstance(lens, Union | Spelling):
        log: set[Path] = set()
        (lens.choose if isinstance(lens, Union) else lens.detect)(trace(src, at, log))
        _report(lens, log, at, strays, "read")
        for branch in lens.children():
            _walk(branch, src, at, view, strays)
    elif lens.children():
        for child in lens.children():
            _walk(child, src, at, view, strays)
    else:
        log = set()
        lens._read(trace(src, at, log), at, ReadContext(root=src))
        _report(lens, log, at, strays, "read")
        if isinstance(view, dict) and isinstance(src, dict):
            ctx = WriteContext(style=Style(), fresh=False, view_root=view)
            written = lens._write(view, (), json_copy(src), src, at, ctx)
            changed = {(*at, *path) for path in changed_paths(src, written)}
            _report(lens, changed, at, strays, "changed", writes=True)


def _report(
    lens: Lens, paths: set[Path], at: Path, strays: list[str], verb: str, writes: bool = False
) -> None:
    fp = lens.footprint
    claims = [claim.prefixed(at) for claim in (fp.claims if writes else fp.claims | fp.kept)]
    deps = [] if writes else [(*at, *dep) for dep in fp.deps]  # read-only, owned by others
    for path in sorted(paths, key=str):
        if not declared(path, claims, deps):
            strays.append(f"{lens.name} @ {lens.site} {verb} {_show(path)}")
