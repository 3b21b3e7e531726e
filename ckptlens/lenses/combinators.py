"""Combinators: sequential composition ``>>``, the product ``record``, and ``at`` (a focus on
the view side)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from attrs import frozen

from ckptlens.lenses.context import ReadContext, WriteContext, resolve_deferred
from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import definition_site
from ckptlens.lenses.footprints import Claim, Footprint, cached_footprint, check_disjoint
from ckptlens.lenses.paths import (
    ABSENT,
    INVALID,
    Path,
    as_path,
    json_copy,
    lookup,
    nest,
    other_member,
)


@frozen(repr=False)
class Compose(Lens):
    """``first >> second``: get through ``first`` then ``second``; put back the other way."""

    first: Lens
    second: Lens

    def __repr__(self) -> str:
        return f"{self.first!r} >> {self.second!r}"

    def children(self) -> Sequence[Lens]:
        return (self.first, self.second)

    @cached_footprint
    def footprint(self) -> Footprint:
        # An iso second step (the attrs structuring) relabels the view without changing its
        # paths, so the view footprint is the first step's.
        first, second = self.first.footprint, self.second.footprint
        view = first.view if self.second.iso else second.view
        return Footprint(first.claims, first.kept, first.deps, view, first.view_deps)

    @property
    def tree(self) -> Lens:
        return self.first if self.second.iso else self

    def _view_claims(self, prefix: Path) -> list[tuple[Claim, Lens]]:
        return (self.first if self.second.iso else self.second)._view_claims(prefix)

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        self.first._strays(src, at, view, strays)  # the second step reads the first's view

    def _examples(self, vat: Path) -> Any:
        return self.first._examples(vat)

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

    @cached_footprint
    def footprint(self) -> Footprint:
        total = Footprint()
        for part in self.parts:
            total = total | part.footprint
        return total

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        view: dict[str, Any] = {}
        for part in self.parts:
            part._read_into(view, src, at, ctx)
        return view

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        for part in self.parts:
            new = part._write(view, vat, new, old, at, ctx)
        return new

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        for part in self.parts:
            yield from part._live_rows(src, vprefix, sprefix)

    def _examples(self, vat: Path) -> Any:
        from ckptlens.laws.strategies import all_of

        return all_of([part._examples(vat) for part in self.parts])


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

    @cached_footprint
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

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield from self.inner._live_rows(src, vprefix + self.prefix, sprefix)

    def _view_claims(self, prefix: Path) -> list[tuple[Claim, Lens]]:
        return self.inner._view_claims(prefix + self.prefix)

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        self.inner._strays(src, at, lookup(view, self.prefix), strays)

    def _examples(self, vat: Path) -> Any:
        return self.inner._examples(vat + self.prefix)


def at(prefix: str | Path, *parts: Lens) -> At:
    """Place the view of ``parts`` (a record if several) under ``prefix``."""
    inner = parts[0] if len(parts) == 1 else Record(parts, site=definition_site())
    return At(as_path(prefix), inner, site=definition_site())
