"""One error family for everything a lens can reject.

A ``LensError`` carries *every* violation found, not the first: a user fixing a config wants
the whole list in one go. Each violation names where (a JSONPath), what was expected, what was
found, and which lens said so, with the file:line where that lens was defined.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from attrs import frozen

_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__))


# What a user-supplied function inside a lens (a derived default, a discriminator, a custom
# get/put) may raise on input it does not expect; the kernel turns these into violations.
USER_ERRORS: tuple[type[Exception], ...] = (
    ArithmeticError,
    AttributeError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
)


@frozen
class Violation:
    """One problem: ``path`` is a JSONPath such as ``$.rope_scaling.factor``."""

    path: str
    expected: str
    found: str
    lens: str = ""
    site: str = ""

    def __str__(self) -> str:
        by = f"  [{self.lens}{' @ ' + self.site if self.site else ''}]" if self.lens else ""
        return f"{self.path}: expected {self.expected}, found {self.found}{by}"


# How much an error report shows: a config with 100,000 layers can have 900,000 problems, and
# a found value can be a 5,000-digit integer or a list nested 5,000 deep (whose ``repr``
# raises). The report stays readable and can always be built.
MAX_LISTED = 40
MAX_QUOTE = 120
MAX_QUOTE_DEPTH = 8
MAX_INT_DIGITS = 30
_INDEX = re.compile(r"(?<=[.\[])\d+(?=[.\]]|$)")


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)`` for an error message, safe and short: a huge integer is described by
    its size, a deeply nested value is cut at a few levels, a long text is truncated."""
    text = _quote(value, MAX_QUOTE_DEPTH, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(value: Any, depth: int, limit: int) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        digits = int(abs(value).bit_length() * 0.30103) + 1
        return repr(value) if digits <= MAX_INT_DIGITS else f"<an integer of about {digits} digits>"
    if isinstance(value, str | float | bytes):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 4] + "...'"
    if isinstance(value, dict | list | tuple):
        if depth <= 0:
            return "{...}" if isinstance(value, dict) else "[...]"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        parts, size = [], 0
        for key, item in items:
            part = _quote(item, depth - 1, limit)
            if isinstance(value, dict):
                part = f"{_quote(key, 0, limit)}: {part}"
            parts.append(part)
            size += len(part) + 2
            if size > limit:
                parts.append("...")
                break
        body = ", ".join(parts)
        if isinstance(value, dict):
            return "{" + body + "}"
        return (
            f"({body}{',' if len(parts) == 1 else ''})" if isinstance(value, tuple) else f"[{body}]"
        )
    try:
        text = repr(value)
    except Exception:  # a hostile or broken object: say what it is, never fail the report
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LensError(Exception):
    """Base of every error ckptlens raises about configs, views, tensors or lens definitions."""

    side = "lens"

    def __init__(self, violations: Iterable[Violation] | str, context: str = "") -> None:
        if isinstance(violations, str):
            violations = [Violation("$", "a valid input", violations)]
        self.violations: tuple[Violation, ...] = tuple(violations)
        self.context = context  # what was being done, in the user's terms ("qwen2 -> llama")
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.violations)
        head = f"{count} {self.side} violation{'s' if count != 1 else ''}"
        head = f"{self.context}: {head}" if self.context else head
        return "\n".join([head, *(f"  {line}" for line in render_grouped(self.violations))])

    def __reduce__(self) -> tuple:
        return (type(self), (list(self.violations), self.context))


def render_grouped(violations: Sequence[Violation], limit: int = MAX_LISTED) -> list[str]:
    """One line per violation, except that violations differing only in the numbers of their
    paths (the same problem in every layer) share one line with a count; at most ``limit``
    lines, then how many more there are."""
    groups: dict[tuple[str, ...], list[Violation]] = {}
    for violation in violations:
        pattern = _INDEX.sub("*", violation.path)
        key = (pattern, violation.expected, violation.found, violation.lens, violation.site)
        groups.setdefault(key, []).append(violation)
    lines = []
    for (pattern, *_), members in groups.items():
        first = members[0]
        if len(members) == 1:
            lines.append(str(first))
        else:
            paths = f"{pattern} ({len(members)} times: {members[0].path} ... {members[-1].path})"
            lines.append(str(Violation(paths, first.expected, first.found, first.lens, first.site)))
    if len(lines) > limit:
        hidden = sum(len(m) for m in list(groups.values())[limit:])
        lines = [*lines[:limit], f"... and {hidden} more violations not listed"]
    return lines


class SourceError(LensError):
    """The source (an HF config, a checkpoint, a file) is outside the lens's domain."""

    side = "source"


class ViewError(LensError):
    """The view (a native config) is outside the domain: the target cannot represent it."""

    side = "view"


class ArgumentError(LensError):
    """A command-line or API argument is not one of the accepted values (not the input's fault)."""

    side = "argument"


class DefinitionError(LensError):
    """A lens was defined wrongly (overlapping footprints, a bad declaration)."""

    side = "definition"


_TABLE_BUILDERS: list[str] = []


def table_builder(module_file: str) -> None:
    """Lenses built in ``module_file`` (a table builder such as ``llama_block``) are reported
    at the line that called into it: the format that declared them, not the shared builder."""
    _TABLE_BUILDERS.append(os.path.abspath(module_file))


def definition_site(skip: Sequence[str] = ()) -> str:
    """file:line of the first caller outside the lens kernel and the table builders (where a
    lens was declared)."""
    frame = sys._getframe(1)
    skipped = (_KERNEL_DIR, *_TABLE_BUILDERS, *skip)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if (
            not filename.startswith(skipped)
            and "/attr/" not in filename
            and "<attrs" not in filename
        ):
            return f"{_short(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _short(filename: str) -> str:
    cwd = os.getcwd()
    if filename.startswith(cwd + os.sep):
        return os.path.relpath(filename, cwd)
    marker = f"{os.sep}ckptlens{os.sep}"
    index = filename.rfind(marker)
    return filename[index + 1 :] if index >= 0 else filename
