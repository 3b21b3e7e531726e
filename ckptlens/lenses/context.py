"""The state a read or a write carries: violations found, paths claimed, derived values still
to compute, and the style a fresh source is written in."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from attrs import define, frozen

from ckptlens.lenses.errors import USER_ERRORS, Violation, quote
from ckptlens.lenses.paths import ABSENT, INVALID, Path, as_path, jsonpath, lookup

if TYPE_CHECKING:
    from ckptlens.lenses.core import Lens


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
            raise NotReady(path)
        return value


class NotReady(Exception):
    """A ``ViewReader`` was asked for a view field that is missing, invalid or still being
    derived: the rule reading it waits (on get) or defers to where that field is reported."""


@define
class ReadContext:
    root: Any
    violations: list[Violation] = attrs.Factory(list)
    claims: list[tuple[Path, str, Lens]] = attrs.Factory(list)
    # Whole-view checks (constraints between fields), run once derived values are resolved.
    checks: list[Callable[[Any], None]] = attrs.Factory(list)

    def fail(self, lens: Lens, path: Path, expected: str, found: Any) -> Any:
        found_text = found if isinstance(found, str) and found.startswith("<") else quote(found)
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
        found_text = found if isinstance(found, str) and found.startswith("<") else quote(found)
        if found is ABSENT:
            found_text = "nothing (field absent)"
        self.violations.append(
            Violation(jsonpath(vpath), expected, found_text, lens.name, lens.site)
        )


def resolve_deferred(view: Any, ctx: ReadContext) -> Any:
    """Compute derived defaults in dependency order, report those that cannot be computed,
    then run the whole-view checks."""
    pending = collect_deferred(view, ())
    while pending:
        progressed = False
        for path, item in list(pending):
            try:
                value = item.compute(ViewReader(view))
            except NotReady:
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
