"""Relations between view fields: a field derived from others, a field mirroring another
subtree, and a constraint the format requires. None of them owns a source key."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
from attrs import frozen

from ckptlens.lenses.context import Deferred, NotReady, ReadContext, ViewReader, WriteContext
from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import USER_ERRORS, definition_site
from ckptlens.lenses.fields import ViewRule
from ckptlens.lenses.footprints import Claim, Footprint
from ckptlens.lenses.paths import Path, as_path, dotted, equal_values, json_copy, lookup, nest


@frozen(repr=False)
class Derived(Lens):
    """A view field computed from other view fields on get; put checks it still agrees."""

    view: Path
    rule: ViewRule

    def __repr__(self) -> str:
        return f"derived({dotted(self.view)!r}, {self.rule!r})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(view=frozenset({Claim(self.view)}), view_deps=frozenset(self.rule.reads))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        return nest(self.view, Deferred(self.rule.compute, at, self))

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        found = lookup(view, self.view)
        try:
            expected = self.rule.compute(ViewReader(ctx.view_root))
        except (NotReady, *USER_ERRORS):
            return new  # its inputs are invalid, and reported where they live
        if not equal_values(found, expected):
            ctx.fail(self, vat + self.view, f"{expected!r} ({self.rule.text})", found)
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield Row(dotted(vprefix + self.view), "", "derived", self.rule.text)


def derived(
    view: str | Path, compute: Callable[[ViewReader], Any], reads: Sequence[str], text: str
) -> Derived:
    return Derived(as_path(view), ViewRule(compute, tuple(reads), text), site=definition_site())


@frozen(repr=False)
class Constraint(Lens):
    """A relation between view fields that the format requires (``hidden_size`` divisible by
    the head count). Owns nothing; get reports a source that breaks it, put a view."""

    rule: ViewRule

    def __repr__(self) -> str:
        return f"constraint({self.rule.text!r})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(view_deps=frozenset(self.rule.reads))

    def _holds(self, view: Any) -> bool:
        try:
            return bool(self.rule.compute(ViewReader(view)))
        except (NotReady, *USER_ERRORS):
            return True  # its inputs are invalid, and reported where they live

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        def check(view: Any) -> None:
            if not self._holds(view):
                found = {dotted(path): lookup(view, path) for path in self.rule.reads}
                ctx.fail(self, at, self.rule.text, f"<{found}>")

        ctx.checks.append(check)
        return {}

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        if not self._holds(ctx.view_root):
            found = {dotted(path): lookup(ctx.view_root, path) for path in self.rule.reads}
            ctx.fail(self, self.rule.reads[0], self.rule.text, found)
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        reads = ", ".join(dotted(path) for path in self.rule.reads)
        yield Row(reads, "", "constraint", "", self.rule.text)


def constraint(
    predicate: Callable[[ViewReader], bool], reads: Sequence[str], text: str
) -> Constraint:
    """The format requires ``predicate`` of the view fields ``reads`` (``text`` says what)."""
    return Constraint(ViewRule(predicate, tuple(reads), text), site=definition_site())


@frozen(repr=False)
class Mirror(Derived):
    """A view subtree copied from another (see ``mirror``): it owns the whole subtree."""

    def __repr__(self) -> str:
        return f"mirror({dotted(self.view)!r}, {self.rule.text!r})"

    @property
    def footprint(self) -> Footprint:
        fp = super().footprint
        return attrs.evolve(fp, view=frozenset(Claim(c.path, subtree=True) for c in fp.view))


def mirror(view: str, of: str, text: str) -> Mirror:
    """View subtree ``view`` is a copy of the (absolute) view path ``of``: get copies it, put
    rejects a view where they differ. For a block that must equal another block except for
    what other lines own (the sliding block of a Qwen2 pattern)."""
    source = as_path(of)

    def compute(reader: Any) -> Any:
        return _copy_leaves(reader, source, reader(source))

    return Mirror(as_path(view), ViewRule(compute, (source,), text), site=definition_site())


def _copy_leaves(reader: Any, at: Path, value: Any) -> Any:
    # Each leaf goes through the reader, which refuses values still being derived; so a copy
    # waits until the subtree it copies is complete.
    if isinstance(value, dict):
        return {key: _copy_leaves(reader, (*at, key), item) for key, item in value.items()}
    return json_copy(reader(at))
