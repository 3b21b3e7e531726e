"""One error family for everything a lens can reject.

A ``LensError`` carries *every* violation found, not the first: a user fixing a config wants
the whole list in one go. Each violation names where (a JSONPath), what was expected, what was
found, and which lens said so, with the file:line where that lens was defined.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

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


class LensError(Exception):
    """Base of every error ckptlens raises about configs, views, tensors or lens definitions."""

    side = "lens"

    def __init__(self, violations: Iterable[Violation] | str) -> None:
        if isinstance(violations, str):
            violations = [Violation("$", "a valid input", violations)]
        self.violations: tuple[Violation, ...] = tuple(violations)
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.violations)
        head = f"{count} {self.side} violation{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {v}" for v in self.violations)])

    def __reduce__(self) -> tuple:
        return (type(self), (list(self.violations),))


class SourceError(LensError):
    """The source (an HF config, a checkpoint, a file) is outside the lens's domain."""

    side = "source"


class ViewError(LensError):
    """The view (a native config) is outside the domain: the target cannot represent it."""

    side = "view"


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
