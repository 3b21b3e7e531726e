"""Field helpers every node family shares: the architecture/metadata marks, validators, the
native tensor ``Shape``, and ``union``, the one place a union of node types is declared.

Each field is marked as architecture (changes the function the model computes or the shape of
its tensors) or metadata (context length, token ids, dtype, training knobs): the mark lives in
the attrs field metadata under ``"kind"`` so coverage walkers can tell them apart.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterator
from typing import Any

import attrs

ARCHITECTURE = "architecture"
METADATA = "metadata"

Shape = tuple[int, ...]
Tensors = Iterator[tuple[str, Shape]]
"""What a node's ``tensors(prefix, ...)`` yields: each native tensor name with its shape."""

UNION_MEMBERS: dict[Any, tuple[type, ...]] = {}
"""Every union alias declared with ``union``, with its member classes in declaration order."""


def union(*members: type) -> Any:
    """The union alias of ``members`` (the class itself for one member), recorded in
    ``UNION_MEMBERS`` so the converter and the coverage walkers learn it from this line alone.
    The alias works with ``isinstance`` and as an annotation."""
    alias = functools.reduce(operator.or_, members)
    UNION_MEMBERS[alias] = members
    return alias


def arch(**kwargs: Any) -> Any:
    """An architecture field: it changes what the model computes or the shape of its tensors."""
    return attrs.field(metadata={"kind": ARCHITECTURE}, **kwargs)


def meta(**kwargs: Any) -> Any:
    """A metadata field: carried faithfully, but the forward pass does not depend on it."""
    return attrs.field(metadata={"kind": METADATA}, **kwargs)


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not int or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def positive_float(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{attribute.name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def optional(validator: Any) -> Any:
    return attrs.validators.optional(validator)


def share(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A share in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be a number in (0, 1], got {value!r}")


def finite_floats(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A non-empty tuple of finite positive numbers (per-pair factors)."""
    if not isinstance(value, tuple) or not value:
        raise ValueError(f"{attribute.name} must be a non-empty tuple, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, float) or not 0 < item < math.inf:
            raise ValueError(f"{attribute.name} must hold finite numbers > 0, got {item!r}")


def boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if type(value) is not bool:
        raise ValueError(f"{attribute.name} must be a boolean, got {value!r}")


def one_of(alias: Any, name: str) -> Any:
    """A validator: the value is a member of the union ``alias``."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, alias):
            raise ValueError(f"{attribute.name} must be one of the {name} classes, got {value!r}")

    return check
