"""The escape hatch: a get/put pair written by hand, with declared leaf footprints.

The laws harness checks a custom lens like any other (its footprint honesty included), and
draws its keys from the ``examples`` it is given, since it cannot guess what the lens accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from attrs import frozen

from ckptlens.lenses.context import ReadContext, WriteContext
from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import USER_ERRORS, definition_site, quote
from ckptlens.lenses.footprints import Claim, Footprint
from ckptlens.lenses.paths import ABSENT, Path, as_path, dotted


class Problem(ValueError):
    """Raised by a custom ``read`` to report a source problem at ``key`` (expected vs found)."""

    def __init__(self, key: str, expected: str, found: Any) -> None:
        super().__init__(f"{key}: expected {expected}, found {quote(found)}")
        self.key, self.expected, self.found = key, expected, found


@frozen(repr=False)
class Custom(Lens):
    """``read(src) -> view fragment``; ``write(view, old) -> {key: value or ABSENT}`` for the
    declared ``keys`` only (``old`` is ``ABSENT`` for a fresh or normal-form source).

    ``read`` may raise ``Problem`` to name the key at fault, ``write`` ``ValueError`` for a view
    it cannot write. ``reads``: source paths it reads but other lenses own. ``where``: the path
    an unexpected error is reported at. ``examples``: a Hypothesis strategy of source fragments,
    or a function returning one (so importing a format need not import Hypothesis).
    """

    label: str
    read: Callable[[Mapping[str, Any]], dict[str, Any]]
    write: Callable[[Any, Any], dict[str, Any]]
    keys: tuple[str, ...]
    views: tuple[Path, ...]
    examples: Any = attrs.field(default=None, eq=False)
    where: Path = ()
    reads: tuple[Path, ...] = ()

    def __repr__(self) -> str:
        return f"custom({self.label!r})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(
            claims=frozenset(Claim((key,)) for key in self.keys),
            deps=frozenset(self.reads),
            view=frozenset(Claim(v) for v in self.views),
        )

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if not isinstance(src, dict):
            return {}
        for key in self.keys:
            if key in src:
                ctx.claim((*at, key), self)
        try:
            return self.read(src)
        except Problem as problem:
            return ctx.fail(self, (*at, problem.key), problem.expected, problem.found)
        except USER_ERRORS as error:
            return ctx.fail(
                self, (*at, *self.where), f"a source {self.label} accepts", f"<{error}>"
            )

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        # The normal form is what a fresh source would say: what the old source held only as
        # presentation is not carried into it.
        fresh = ctx.fresh or ctx.style.normal
        try:
            updates = self.write(view, ABSENT if fresh else old)
        except USER_ERRORS as error:
            ctx.fail(self, vat, f"a view {self.label} can write", f"<{error}>")
            return new
        for key, value in updates.items():
            if value is ABSENT:
                new.pop(key, None)
            else:
                new[key] = value
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        views = ", ".join(dotted(vprefix + view) for view in self.views)
        for key in self.keys:
            yield Row(views, dotted((*sprefix, key)), f"custom {self.label}")

    def _examples(self, vat: Path) -> Any:
        """The Hypothesis strategy of source fragments its definition gives."""
        if self.examples is None:
            raise TypeError(f"{self!r} is custom: give it examples=<strategy of source dicts>")
        return self.examples() if callable(self.examples) else self.examples


def custom(
    label: str,
    read: Callable[[Mapping[str, Any]], dict[str, Any]],
    write: Callable[[Any, Any], dict[str, Any]],
    *,
    keys: Sequence[str],
    views: Sequence[str | Path],
    examples: Any = None,
    where: str = "",
    reads: Sequence[str] = (),
) -> Custom:
    """A hand-written lens over ``keys`` showing ``views`` (see ``Custom``)."""
    return Custom(
        label,
        read,
        write,
        tuple(keys),
        tuple(as_path(v) for v in views),
        examples,
        as_path(where),
        tuple(as_path(path) for path in reads),
        site=definition_site(),
    )
