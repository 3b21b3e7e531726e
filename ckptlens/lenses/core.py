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

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from attrs import frozen

from ckptlens.lenses.context import (
    MISSING,
    Fresh,
    ReadContext,
    Style,
    WriteContext,
    resolve_deferred,
)
from ckptlens.lenses.errors import SourceError, ViewError, Violation, definition_site
from ckptlens.lenses.footprints import Claim, Footprint, coverage_violations
from ckptlens.lenses.paths import (
    ABSENT,
    INVALID,
    MAX_DEPTH,
    Path,
    deep_merge,
    json_copy,
    too_deep,
)
from ckptlens.lenses.tracing import leaf_strays

DEEP = f"a JSON tree at most {MAX_DEPTH} levels deep"

if TYPE_CHECKING:
    from ckptlens.lenses.describe import Table


@frozen
class Lens:
    """Base class of every lens. Subclasses implement ``_read``, ``_write``, ``footprint``,
    ``_rows`` and ``__repr__``; everything public is defined here once."""

    site: str = attrs.field(factory=definition_site, eq=False, repr=False, kw_only=True)

    iso: ClassVar[bool] = False
    """Whether this lens only relabels its source as another type (the final attrs step of a
    format lens): paths, footprint and domain are its input's."""

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

    @property
    def tree(self) -> Lens:
        """The part of this lens whose view is a plain dict: a format lens without its final
        attrs iso (``Compose`` overrides this); what walkers over view paths start from."""
        return self

    def __rshift__(self, other: Lens) -> Lens:
        from ckptlens.lenses.combinators import Compose

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
        if too_deep(source):
            ctx.fail(self, (), DEEP, "<a more deeply nested tree>")
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
        ctx = WriteContext(style=style, fresh=fresh, view_root=view)
        if not fresh and too_deep(source):
            ctx.fail(self, (), f"a source that is {DEEP}", "<a more deeply nested tree>")
            return None, ctx.violations
        try:
            new = {} if fresh else json_copy(source)
            result = self._write(view, (), new, old, (), ctx)
        except RecursionError:
            ctx.fail(self, (), "a view of sensible depth", "<too deeply nested>")
            result = None
        return (None if ctx.violations else result), ctx.violations

    # ------------------------------------------------------------------ for subclasses

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        raise NotImplementedError

    def _read_into(self, view: dict, src: Any, at: Path, ctx: ReadContext) -> None:
        """Merge this lens's view fragment into ``view`` (a record's parts share one view).
        Leaves override it to write their fields in place instead of building fragments."""
        fragment = self._read(src, at, ctx)
        if isinstance(fragment, dict):
            deep_merge(view, fragment)

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        raise NotImplementedError

    @property
    def footprint(self) -> Footprint:
        raise NotImplementedError

    def children(self) -> Sequence[Lens]:
        return ()

    # ------------------------------------------------------------------ walkers
    # Each walker's default is here: recurse into ``children()`` with the same paths, or treat
    # a lens without children as a leaf. A combinator overrides the walkers for which it moves
    # a path, changes the source, or picks a branch, in its own class: nothing else has to
    # learn about it.

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        """``describe()`` rows, view paths under ``vprefix`` and source paths under ``sprefix``."""
        for child in self.children():
            yield from child._rows(vprefix, sprefix)

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        """``explain()`` rows: ``_rows``, following only the branches and spellings ``src`` uses."""
        return self._rows(vprefix, sprefix)

    def _view_claims(self, prefix: Path) -> list[tuple[Claim, Lens]]:
        """Every view claim with the lens that makes it, as a list so that double claims show."""
        if self.children():
            return [item for child in self.children() for item in child._view_claims(prefix)]
        return [(claim.prefixed(prefix), self) for claim in self.footprint.view]

    def _examples(self, vat: Path) -> Any:
        """For the laws (``ckptlens.laws.strategies``, which imports Hypothesis): a strategy of
        source fragments, the keys this lens owns at its level, drawn the way people write
        them; the view of this lens sits at ``vat``. The default serves lenses owning no key."""
        if self.footprint.claims or self.children():
            raise TypeError(
                f"no source strategy for {type(self).__name__}; give it an examples hook"
            )
        from ckptlens.laws.strategies import EMPTY

        return EMPTY

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        """Source paths this lens (each leaf alone) touches outside its own footprint; see
        ``tracing.leaf_strays``."""
        if self.children():
            for child in self.children():
                child._strays(src, at, view, strays)
        else:
            leaf_strays(self, src, at, view, strays)


@frozen
class Row:
    """One line of ``describe()``: where a view field comes from and how."""

    view: str
    source: str
    primitive: str
    default: str = ""
    domain: str = ""
