"""Value isos: how one JSON value is checked, read into a view value, and written back.

``read`` returns the view value or a ``Bad`` with what was expected. ``write`` returns the
canonical spelling, unless the old spelling reads back to the same view value and the caller
asked to keep it: ``10000`` stays ``10000`` rather than becoming ``10000.0``, ``"swish"`` stays
``"swish"``. That is what makes GetPut exact without the view knowing about spellings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs
from attrs import frozen

from ckptlens.lenses.paths import ABSENT, equal_values


@frozen
class Bad:
    """A value outside the type's domain: ``expected`` says what would have been accepted."""

    expected: str


@frozen
class ValueType:
    """Base of value isos. Subclasses override ``_read`` and, if needed, ``_write``."""

    def read(self, raw: Any) -> Any:
        return self._read(raw)

    def write(self, value: Any, old_raw: Any = ABSENT) -> Any:
        if old_raw is not ABSENT:
            old_value = self._read(old_raw)
            if not isinstance(old_value, Bad) and equal_values(old_value, value):
                return old_raw
        return self._write(value)

    def check(self, value: Any) -> Bad | None:
        """``Bad`` if ``value`` cannot be written (the view side of the domain)."""
        written = self._write(value) if not isinstance(value, Bad) else value
        if isinstance(written, Bad):
            return written
        back = self._read(written)
        if isinstance(back, Bad) or not equal_values(back, value):
            return Bad(self.describe())
        return None

    def _read(self, raw: Any) -> Any:
        raise NotImplementedError

    def _write(self, value: Any) -> Any:
        return value

    def describe(self) -> str:
        return repr(self)


@frozen(repr=False)
class Int(ValueType):
    """An integer; ``maximum`` bounds counts that code allocates by (layers, experts) so that
    nothing grows with a number read from a file before the number is checked."""

    minimum: int | None = None
    maximum: int | None = None

    def _read(self, raw: Any) -> Any:
        if type(raw) is not int:
            return Bad(self.describe())
        if self.minimum is not None and raw < self.minimum:
            return Bad(self.describe())
        if self.maximum is not None and raw > self.maximum:
            return Bad(self.describe())
        return raw

    def describe(self) -> str:
        bounds = [
            *([f">= {self.minimum}"] if self.minimum is not None else []),
            *([f"<= {self.maximum}"] if self.maximum is not None else []),
        ]
        return "an integer" + (" " + " and ".join(bounds) if bounds else "")

    def __repr__(self) -> str:
        bounds = [
            *([f"minimum={self.minimum}"] if self.minimum is not None else []),
            *([f"maximum={self.maximum}"] if self.maximum is not None else []),
        ]
        return f"Int({', '.join(bounds)})"


@frozen(repr=False)
class Float(ValueType):
    """A finite number; ints are accepted and read as floats (JSON does not distinguish)."""

    positive: bool = False
    nonnegative: bool = False
    maximum: float | None = None

    def _read(self, raw: Any) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return Bad(self.describe())
        if isinstance(raw, float) and not math.isfinite(raw):
            return Bad(self.describe())
        value = _as_float(raw)
        if value is None:
            return Bad(self.describe())
        if (self.positive and value <= 0) or (self.nonnegative and value < 0):
            return Bad(self.describe())
        if self.maximum is not None and value > self.maximum:
            return Bad(self.describe())
        return value

    def _write(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Bad(self.describe())
        written = _as_float(value)
        return Bad(self.describe()) if written is None else written

    def describe(self) -> str:
        bound = " > 0" if self.positive else " >= 0" if self.nonnegative else ""
        upper = f" and <= {self.maximum}" if self.maximum is not None else ""
        return f"a finite number{bound}{upper}"

    def __repr__(self) -> str:
        flags = [
            *(["positive=True"] if self.positive else []),
            *(["nonnegative=True"] if self.nonnegative else []),
            *([f"maximum={self.maximum}"] if self.maximum is not None else []),
        ]
        return f"Float({', '.join(flags)})"


@frozen(repr=False)
class Share(Float):
    """A share of a whole: a finite number in (0, 1] (a fraction of a head, a ratio)."""

    positive: bool = True
    maximum: float | None = 1.0

    def __repr__(self) -> str:
        return "Share()"


def _as_float(number: int | float) -> float | None:
    """``float(number)``, or ``None`` for an integer too large for a finite float (JSON allows
    a 401-digit integer; ``float`` raises ``OverflowError`` on it)."""
    try:
        value = float(number)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


@frozen(repr=False)
class Bool(ValueType):
    def _read(self, raw: Any) -> Any:
        return raw if type(raw) is bool else Bad("a boolean")

    def describe(self) -> str:
        return "a boolean"

    def __repr__(self) -> str:
        return "Bool()"


@frozen(repr=False)
class Str(ValueType):
    def _read(self, raw: Any) -> Any:
        return raw if type(raw) is str else Bad("a string")

    def describe(self) -> str:
        return "a string"

    def __repr__(self) -> str:
        return "Str()"


@frozen(repr=False)
class Enum(ValueType):
    """Source spellings to view values. ``names`` maps each canonical source spelling to its
    view value; ``aliases`` are further accepted spellings, kept by put when unchanged."""

    names: Mapping[str, Any] = attrs.field(converter=dict)
    aliases: Mapping[str, str] = attrs.field(factory=dict, converter=dict)

    def _read(self, raw: Any) -> Any:
        if type(raw) is not str:
            return Bad(self.describe())
        spelled = self.aliases.get(raw, raw)
        return self.names[spelled] if spelled in self.names else Bad(self.describe())

    def _write(self, value: Any) -> Any:
        for spelling, named in self.names.items():
            if equal_values(named, value):
                return spelling
        return Bad(f"one of {list(self.names.values())}")

    def describe(self) -> str:
        return f"one of {sorted([*self.names, *self.aliases])}"

    def __repr__(self) -> str:
        return f"Enum({list(self.names)})"


@frozen(repr=False)
class Nullable(ValueType):
    """``null`` reads as ``None``; anything else goes through ``inner``."""

    inner: ValueType

    def _read(self, raw: Any) -> Any:
        return None if raw is None else self.inner._read(raw)

    def _write(self, value: Any) -> Any:
        return None if value is None else self.inner._write(value)

    def describe(self) -> str:
        return f"null or {self.inner.describe()}"

    def __repr__(self) -> str:
        return f"Nullable({self.inner!r})"


@frozen(repr=False)
class TokenIds(ValueType):
    """A token id or a list of them (HF allows both for ``eos_token_id``); lists read as tuples."""

    def _read(self, raw: Any) -> Any:
        if type(raw) is int and raw >= 0:
            return raw
        if isinstance(raw, list) and all(type(item) is int and item >= 0 for item in raw):
            return tuple(raw)
        return Bad(self.describe())

    def _write(self, value: Any) -> Any:
        if isinstance(value, tuple | list):
            return list(value)
        return value

    def describe(self) -> str:
        return "a token id >= 0 or a list of them"

    def __repr__(self) -> str:
        return "TokenIds()"


@frozen(repr=False)
class Json(ValueType):
    """Any JSON value, owned whole (an opaque subtree)."""

    def _read(self, raw: Any) -> Any:
        return raw

    def describe(self) -> str:
        return "any JSON value"

    def __repr__(self) -> str:
        return "Json()"
