"""The lens protocol and the machinery every primitive shares.

A lens relates a *source* (an HF ``config.json`` dict, exactly as on disk) and a *view* (the
native dict, and at the top a native attrs object). Primitives implement two internal steps:

- ``_read(src, at, ctx)``: the view fragment for the source value ``src`` found at path ``at``;
  problems go to ``ctx.violations``, owned source paths to ``ctx.claims`` (for coverage);
- ``_write(view, vat, new, old, at, ctx)``: write ``view`` (the view value at ``vat``) into
  ``new``, the working copy of the source at ``at``, consulting ``old`` (the previous source at
  ``at``, or ``ABSENT``) for presentation; return the new source value at ``at``.

The public ``get``/``put``/``create``/``check_*`` wrap those with error collection, coverage,
and copy-on-entry so that no input is ever modified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import attrs
from attrs import define, frozen

from ckptlens.lenses.errors import (
    USER_ERRORS,
    DefinitionError,
    SourceError,
    ViewError,
    Violation,
    definition_site,
)
from ckptlens.lenses.paths import (
    ABSENT,
    INVALID,
    Path,
    as_path,
    deep_merge,
    is_prefix,
    json_copy,
    jsonpath,
    lookup,
    nest,
    other_member,
)

GENERATIONS = ("v5", "v4")


@frozen
class Style:
    """How a fresh source is spelled: for ``create``, and for ``normalize``.

    ``generation`` picks the transformers spelling (v5: ``rope_parameters``/``dtype``; v4:
    ``rope_theta``+``rope_scaling``/``torch_dtype``). ``normal`` asks put to drop the old
    source's value spellings and implicit defaults while keeping its structure and key order.
    """

    generation: str = attrs.field(
        default="v5", validator=attrs.validators.in_(GENERATIONS), kw_only=True
    )
    normal: bool = attrs.field(default=False, kw_only=True)


@frozen
class Fresh:
    """The ``old`` source of ``create``: there is none, only a style to write in."""

    style: Style = Style()


MISSING = Fresh()
"""``put(view, MISSING)`` is ``create(view)``."""


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


@define
class Deferred:
    """A view value that depends on other view values (a derived default), resolved once the
    whole view has been read."""

    compute: Callable[[ViewReader], Any]
    path: Path
    lens: Lens


class ViewReader:
    """Reads absolute view paths for derived values; refuses unresolved or invalid values."""

    def __init__(self, view: Any) -> None:
        self._view = view

    def __call__(self, path: str | Path) -> Any:
        value = lookup(self._view, as_path(path))
        if value is ABSENT or value is INVALID or isinstance(value, Deferred):
            raise _NotReady(path)
        return value


class _NotReady(Exception):
    pass


@define
class ReadContext:
    root: Any
    violations: list[Violation] = attrs.Factory(list)
    claims: list[tuple[Path, str, Lens]] = attrs.Factory(list)
    # Whole-view checks (constraints between fields), run once derived values are resolved.
    checks: list[Callable[[Any], None]] = attrs.Factory(list)

    def fail(self, lens: Lens, path: Path, expected: str, found: Any) -> Any:
        found_text = found if isinstance(found, str) and found.startswith("<") else repr(found)
        if found is ABSENT:
            found_text = "nothing (key absent)"
        self.violations.append(
            Violation(jsonpath(path), expected, found_text, lens.name, lens.site)
        )
        return INVALID

    def claim(self, path: Path, lens: Lens, mode: str = "leaf") -> None:
        """Record that ``lens`` owns ``path``: mode ``leaf``, ``subtree`` or ``container``."""
        self.claims.append((path, mode, lens))


@define
class WriteContext:
    style: Style
    fresh: bool
    view_root: Any
    violations: list[Violation] = attrs.Factory(list)

    def fail(self, lens: Lens, vpath: Path, expected: str, found: Any) -> None:
        found_text = "nothing (field absent)" if found is ABSENT else repr(found)
        self.violations.append(
            Violation(jsonpath(vpath), expected, found_text, lens.name, lens.site)
        )


def _site() -> str:
    return definition_site()


@frozen
class Lens:
    """Base class of every lens. Subclasses implement ``_read``, ``_write``, ``footprint``,
    ``_rows`` and ``__repr__``; everything public is defined here once."""

    kind: ClassVar[str] = "lens"
    site: str = attrs.field(factory=_site, eq=False, repr=False, kw_only=True)

    # ------------------------------------------------------------------ public protocol

    @property
    def name(self) -> str:
        text = repr(self)
        return text if len(text) <= 60 else text[:57] + "..."

    def get(self, source: Any) -> Any:
        """The view of ``source``; raises ``SourceError`` listing every problem."""
        view, violations = self._get_checked(source)
        if violations:
            raise SourceError(violations)
        return view

    def check_source(self, source: Any) -> list[Violation]:
        """The violations ``get(source)`` would raise, without raising."""
        return self._get_checked(source)[1]

    def put(self, view: Any, source: Any, *, style: Style | None = None) -> Any:
        """``source`` updated to show ``view``; raises ``ViewError`` if the view is outside the
        domain. ``source`` may be ``MISSING`` (or any ``Fresh``) to create."""
        result, violations = self._put_checked(view, source, style)
        if violations:
            raise ViewError(violations)
        return result

    def create(self, view: Any, *, generation: str = "v5") -> Any:
        """A fresh source for ``view``, spelled for the transformers ``generation``."""
        return self.put(view, Fresh(Style(generation=generation)))

    def check_view(self, view: Any, source: Any = MISSING) -> list[Violation]:
        """The violations ``put(view, source)`` would raise, without raising."""
        return self._put_checked(view, source, None)[1]

    def normalize(self, source: Any) -> Any:
        """``source`` with canonical value spellings and implicit defaults, same structure."""
        return self.put(self.get(source), source, style=Style(normal=True))

    def __rshift__(self, other: Lens) -> Lens:
        return Compose(self, other)

    def describe(self) -> Table:
        """The mapping table: view path, source path, primitive, default, domain."""
        from ckptlens.lenses.describe import describe

        return describe(self)

    def explain(self, source: Any) -> Table:
        """The mapping table filled with the values read from ``source``."""
        from ckptlens.lenses.describe import explain

        return explain(self, source)

    # ------------------------------------------------------------------ shared machinery

    def _get_checked(self, source: Any) -> tuple[Any, list[Violation]]:
        ctx = ReadContext(root=source)
        if not isinstance(source, dict):
            ctx.fail(self, (), "a JSON object (a config dict)", source)
            return None, ctx.violations
        view = self._read_root(source, ctx)
        ctx.violations.extend(coverage_violations(source, ctx.claims))
        return (None if ctx.violations else view), ctx.violations

    def _read_root(self, source: Any, ctx: ReadContext) -> Any:
        try:
            view = self._read(source, (), ctx)
            return resolve_deferred(view, ctx)
        except RecursionError:
            ctx.fail(self, (), "a tree of sensible depth", "<too deeply nested>")
            return INVALID

    def _put_checked(
        self, view: Any, source: Any, style: Style | None
    ) -> tuple[Any, list[Violation]]:
        fresh = isinstance(source, Fresh)
        style = style or (source.style if fresh else Style())
        old = ABSENT if fresh else source
        new = {} if fresh else json_copy(source)
        ctx = WriteContext(style=style, fresh=fresh, view_root=view)
        try:
            result = self._write(view, (), new, old, (), ctx)
        except RecursionError:
            ctx.fail(self, (), "a view of sensible depth", "<too deeply nested>")
            result = None
        return (None if ctx.violations else result), ctx.violations

    # ------------------------------------------------------------------ for subclasses

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        raise NotImplementedError

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        raise NotImplementedError

    @property
    def footprint(self) -> Footprint:
        raise NotImplementedError

    def children(self) -> Sequence[Lens]:
        return ()

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        for child in self.children():
            yield from child._rows(vprefix, sprefix)


@frozen
class Row:
    """One line of ``describe()``: where a view field comes from and how."""

    view: str
    source: str
    primitive: str
    default: str = ""
    domain: str = ""


Table = Any  # ckptlens.lenses.describe.Table, imported lazily to keep this module small


def resolve_deferred(view: Any, ctx: ReadContext) -> Any:
    """Compute derived defaults in dependency order, report those that cannot be computed,
    then run the whole-view checks."""
    pending = collect_deferred(view, ())
    while pending:
        progressed = False
        for path, item in list(pending):
            try:
                value = item.compute(ViewReader(view))
            except _NotReady:
                continue
            except USER_ERRORS as error:
                value = ctx.fail(item.lens, item.path, "a derivable default", f"<{error}>")
            view = assign(view, path, value)
            pending.remove((path, item))
            progressed = True
        if not progressed:
            for _, item in pending:
                if not ctx.violations:
                    ctx.fail(item.lens, item.path, "a derivable default", "<missing inputs>")
                view = assign(view, _, INVALID)
            break
    if not ctx.violations:
        for check in ctx.checks:
            check(view)
    ctx.checks.clear()
    return view


def collect_deferred(view: Any, at: Path) -> list[tuple[Path, Deferred]]:
    if isinstance(view, Deferred):
        return [(at, view)]
    if isinstance(view, dict):
        return [item for key, value in view.items() for item in collect_deferred(value, (*at, key))]
    return []


def assign(tree: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return tree


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


@frozen(repr=False)
class Compose(Lens):
    """``first >> second``: get through ``first`` then ``second``; put back the other way."""

    first: Lens
    second: Lens

    def __repr__(self) -> str:
        return f"{self.first!r} >> {self.second!r}"

    def children(self) -> Sequence[Lens]:
        return (self.first, self.second)

    @property
    def footprint(self) -> Footprint:
        # An iso second step (the attrs structuring) relabels the view without changing its
        # paths, so the view footprint is the first step's.
        first, second = self.first.footprint, self.second.footprint
        view = first.view if getattr(self.second, "iso", False) else second.view
        return Footprint(first.claims, first.kept, first.deps, view, first.view_deps)

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        middle = resolve_deferred(self.first._read(src, at, ctx), ctx)
        if ctx.violations:
            return INVALID
        inner = ReadContext(root=middle)
        view = self.second._read_root(middle, inner)
        ctx.violations.extend(inner.violations)
        return view

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        old_middle = ABSENT
        if old is not ABSENT:
            old_middle, problems = self.first._get_checked(old)
            if problems:
                ctx.violations.extend(problems)
                return new
        inner = WriteContext(style=ctx.style, fresh=ctx.fresh, view_root=view)
        middle = self.second._write(
            view, vat, {} if old_middle is ABSENT else json_copy(old_middle), old_middle, (), inner
        )
        if inner.violations:
            ctx.violations.extend(inner.violations)
            return new
        ctx.view_root = middle
        return self.first._write(middle, (), new, old, at, ctx)


@frozen(repr=False)
class Record(Lens):
    """A product: every part reads the same source; their view fragments merge. Parts must
    own disjoint paths, checked when the record is built."""

    parts: tuple[Lens, ...] = attrs.field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        check_disjoint(self.parts)

    def __repr__(self) -> str:
        shown = ", ".join(repr(p) for p in self.parts[:2])
        more = f", ... +{len(self.parts) - 2}" if len(self.parts) > 2 else ""
        return f"record({shown}{more})"

    def children(self) -> Sequence[Lens]:
        return self.parts

    @property
    def footprint(self) -> Footprint:
        total = Footprint()
        for part in self.parts:
            total = total | part.footprint
        return total

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        view: dict[str, Any] = {}
        for part in self.parts:
            fragment = part._read(src, at, ctx)
            if isinstance(fragment, dict):
                deep_merge(view, fragment)
        return view

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        for part in self.parts:
            new = part._write(view, vat, new, old, at, ctx)
        return new


def record(*parts: Lens) -> Record:
    """The product of ``parts`` (each owns its own keys; together they own the whole)."""
    return Record(parts, site=definition_site())


@frozen(repr=False)
class At(Lens):
    """Focus on the view side: ``inner``'s view lives under ``prefix`` of this lens's view."""

    prefix: Path = attrs.field(converter=as_path)
    inner: Lens

    def __repr__(self) -> str:
        return f"at({'.'.join(map(str, self.prefix))!r}, {self.inner!r})"

    def children(self) -> Sequence[Lens]:
        return (self.inner,)

    @property
    def footprint(self) -> Footprint:
        return self.inner.footprint.under(view_prefix=self.prefix)

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        return nest(self.prefix, self.inner._read(src, at, ctx))

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        sub = lookup(view, self.prefix)
        if not isinstance(sub, dict):
            if not other_member(view, self.prefix):
                ctx.fail(self, vat + self.prefix, "an object", sub)
            return new
        return self.inner._write(sub, vat + self.prefix, new, old, at, ctx)

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield from self.inner._rows(vprefix + self.prefix, sprefix)


def at(prefix: str | Path, *parts: Lens) -> At:
    """Place the view of ``parts`` (a record if several) under ``prefix``."""
    inner = parts[0] if len(parts) == 1 else Record(parts, site=definition_site())
    return At(as_path(prefix), inner, site=definition_site())
