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
from typing import TYPE_CHECKING, Any

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
from ckptlens.lenses.footprints import Footprint, coverage_violations
from ckptlens.lenses.paths import ABSENT, INVALID, Path, deep_merge, json_copy

if TYPE_CHECKING:
    from ckptlens.lenses.describe import Table


@frozen
class Lens:
    """Base class of every lens. Subclasses implement ``_read``, ``_write``, ``footprint``,
    ``_rows`` and ``__repr__``; everything public is defined here once."""

    site: str = attrs.field(factory=definition_site, eq=False, repr=False, kw_only=True)

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
