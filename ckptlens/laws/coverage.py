"""Coverage walkers: prove on the schema that a lens claims every view field exactly once,
and trace which source paths a lens really reads and writes."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import attrs

from ckptlens.lenses import ANY_KEY, TAG_KEY, Claim, Lens, Member, Path


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
    return lens._view_claims(prefix)


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


# ---------------------------------------------------------------- per-lens footprint honesty


def footprint_strays(lens: Lens, source: Any, view: Any) -> list[str]:
    """Source paths some lens read or changed outside its *own* declared footprint.

    Each leaf lens runs alone on the part of ``source`` (and ``view``) it would see, reading
    through a tracing dict and writing into a copy, so a lens cannot hide behind a sibling
    that declares the path it touched (see ``ckptlens.lenses.tracing``)."""
    strays: list[str] = []
    lens._strays(source, (), view, strays)
    return strays
