"""What a lens owns: claims on source and view paths, and the checks built on them.

A record checks at construction that its parts' write footprints are disjoint; ``get`` checks
at run time that every key of the concrete source is claimed, exactly once.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ckptlens.lenses.errors import DefinitionError, Violation
from ckptlens.lenses.paths import Path, is_prefix, jsonpath

if TYPE_CHECKING:
    from ckptlens.lenses.core import Lens


@frozen
class Claim:
    """A path a lens owns. ``subtree``: it owns everything below too (an opaque value).
    ``container``: a dict the lens only descends into; the keys inside are claimed one by one,
    so several lenses may share a container."""

    path: Path
    subtree: bool = False
    container: bool = False

    def prefixed(self, prefix: Path) -> Claim:
        return Claim(prefix + self.path, self.subtree, self.container)

    def overlaps(self, other: Claim) -> bool:
        if self.container and other.container:
            return False
        if self.path == other.path:
            return True
        if self.subtree and is_prefix(self.path, other.path):
            return True
        return other.subtree and is_prefix(other.path, self.path)


@frozen
class Footprint:
    """What a lens touches. Source side: ``claims`` are owned and may be rewritten by put,
    ``kept`` are owned but passed through untouched, ``deps`` are read but owned by others.
    View side: ``view`` are produced by get (and read by put), ``view_deps`` are read only."""

    claims: frozenset[Claim] = frozenset()
    kept: frozenset[Claim] = frozenset()
    deps: frozenset[Path] = frozenset()
    view: frozenset[Claim] = frozenset()
    view_deps: frozenset[Path] = frozenset()

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(
            self.claims | other.claims,
            self.kept | other.kept,
            self.deps | other.deps,
            self.view | other.view,
            self.view_deps | other.view_deps,
        )

    def under(self, source_prefix: Path = (), view_prefix: Path = ()) -> Footprint:
        return Footprint(
            frozenset(c.prefixed(source_prefix) for c in self.claims),
            frozenset(c.prefixed(source_prefix) for c in self.kept),
            self.deps,
            frozenset(c.prefixed(view_prefix) for c in self.view),
            self.view_deps,
        )


_COMPUTED: dict[int, tuple[weakref.ref, Footprint]] = {}


def cached_footprint(compute: Callable[[Any], Footprint]) -> Any:
    """A ``footprint`` property computed once per lens. Lenses are immutable, but a composite's
    footprint is rebuilt from its whole subtree on every call, and unions consult their
    branches' footprints on every write. Entries are keyed by ``id`` and checked against a weak
    reference, so a lens that dies takes its entry with it and a reused id never matches."""

    def footprint(lens: Any) -> Footprint:
        key = id(lens)
        entry = _COMPUTED.get(key)
        if entry is not None and entry[0]() is lens:
            return entry[1]
        value = compute(lens)
        _COMPUTED[key] = (weakref.ref(lens, _forget(key)), value)
        return value

    return property(footprint, doc=compute.__doc__)


def _forget(key: int) -> Callable[[weakref.ref], None]:
    def forget(ref: weakref.ref) -> None:
        entry = _COMPUTED.get(key)
        if entry is not None and entry[0] is ref:
            del _COMPUTED[key]

    return forget


def coverage_violations(source: Any, claims: list[tuple[Path, str, Lens]]) -> list[Violation]:
    """Every source key no lens claimed, and every key two lenses claimed."""
    owners: dict[Path, tuple[str, Lens]] = {}
    violations: list[Violation] = []
    for path, mode, lens in claims:
        shared = mode == "container" and owners.get(path, ("container",))[0] == "container"
        if path in owners and owners[path][1] is not lens and not shared:
            other = owners[path][1]
            violations.append(
                Violation(
                    jsonpath(path),
                    "one owning lens",
                    f"claims by {other.name} @ {other.site} and {lens.name} @ {lens.site}",
                    lens.name,
                    lens.site,
                )
            )
        owners[path] = (mode, lens)

    def walk(node: Any, at: Path) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            path = (*at, key)
            owner = owners.get(path)
            if owner is None:
                violations.append(
                    Violation(jsonpath(path), "a known key", "an unknown key (no lens claims it)")
                )
            elif owner[0] == "container":
                walk(value, path)

    walk(source, ())
    return violations


def check_disjoint(parts: Sequence[Lens]) -> None:
    """Raise ``DefinitionError`` if two parts may write the same source or view path."""
    problems: list[Violation] = []
    seen: list[tuple[Claim, Lens, str]] = []
    for part in parts:
        fp = part.footprint
        mine = [(c, "source") for c in fp.claims | fp.kept] + [(c, "view") for c in fp.view]
        for claim, side in mine:
            for other, owner, other_side in seen:
                if side == other_side and claim.overlaps(other):
                    problems.append(
                        Violation(
                            f"{side} {jsonpath(claim.path)}",
                            "disjoint write footprints",
                            f"{owner.name} @ {owner.site} and {part.name} @ {part.site} both "
                            f"write it",
                            part.name,
                            part.site,
                        )
                    )
        seen.extend((claim, part, side) for claim, side in mine)
    if problems:
        raise DefinitionError(problems)
