"""``describe()`` and ``explain()``: a lens as a table a person can read at the REPL."""

from __future__ import annotations

from typing import Any

from attrs import frozen

from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import quote
from ckptlens.lenses.paths import ABSENT, ANY_KEY, as_path, lookup

COLUMNS = ("view", "source", "primitive", "default", "domain")


@frozen
class Table:
    """Rows with named columns; ``str()`` aligns them, and the REPL shows the same."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __str__(self) -> str:
        widths = [
            min(52 if i == 0 else 36, max([len(col), *(len(row[i]) for row in self.rows)]))
            for i, col in enumerate(self.columns)
        ]
        lines = ["  ".join(col.ljust(w) for col, w in zip(self.columns, widths, strict=True))]
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            cells = [_clip(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

    __repr__ = __str__

    def render(self, width: int = 80) -> str:
        """The aligned table when it fits in ``width`` columns; otherwise one block per row
        (the first cell, then the others indented, each clipped to the width), which a
        narrow terminal shows without wrapping lines into each other."""
        aligned = str(self)
        if max(map(len, aligned.splitlines()), default=0) <= width:
            return aligned
        blocks = []
        for row in self.rows:
            # a row without a first cell (a constant has no view field) is headed by the next
            first = next((i for i, cell in enumerate(row) if cell), 0)
            head = row[first] if first == 0 else f"({self.columns[first]}) {row[first]}"
            lines = [_clip(head, width)]
            for name, cell in zip(self.columns[first + 1 :], row[first + 1 :], strict=True):
                if cell:
                    lines.append(_clip(f"    {name}: {cell}", width))
            blocks.append("\n".join(lines))
        return "\n".join(blocks)

    def column(self, name: str) -> list[str]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def compact(view: str) -> str:
    """A view path for people: ``decoder.<fixed>.block.mixer.<attention>.heads`` reads as
    ``decoder.block.mixer.heads [attention]`` (the innermost union member in brackets)."""
    if not view:
        return ""
    parts = view.split(".")
    members = [p[1:-1] for p in parts if p.startswith("<") and p.endswith(">")]
    plain = ".".join(p for p in parts if not (p.startswith("<") and p.endswith(">")))
    return f"{plain} [{members[-1]}]" if members else plain


def _cells(row: Row) -> tuple[str, ...]:
    return (compact(row.view), row.source, row.primitive, row.default, row.domain)


def describe(lens: Lens) -> Table:
    return Table(COLUMNS, tuple(_cells(row) for row in lens._rows((), ())))


def explain(lens: Lens, source: Any) -> Table:
    """Each row the source actually uses, with the value it read and the view value."""
    tree = lens.tree
    view = tree.get(source)
    rows = []
    for row in tree._live_rows(source, (), ()):
        view_value = _view_value(view, row.view) if row.view else ABSENT
        source_value = lookup(source, as_path(row.source)) if row.source else ABSENT
        shown_source = _show(source_value) if row.source else ""
        if row.source and source_value is ABSENT:
            shown_source = "(absent: default)"
        rows.append((compact(row.view), _show(view_value), row.source, shown_source, row.primitive))
    return Table(("view", "value", "source", "source value", "lens"), tuple(rows))


def _view_value(view: Any, dotted: str) -> Any:
    node = view
    for part in dotted.split("."):
        if part.startswith("<") and part.endswith(">"):
            if not isinstance(node, dict) or node.get("type") != part[1:-1]:
                return ABSENT
            continue
        if part == str(ANY_KEY) or not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node


def _show(value: Any) -> str:
    return "" if value is ABSENT else quote(value)
