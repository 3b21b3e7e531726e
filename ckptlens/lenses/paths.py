"""Paths into JSON-shaped trees, and the sentinels that mark absence.

A path is a tuple of keys. Footprints may also contain two markers that never occur in data:
``Member(tag)``, which says "inside the union member ``tag``", and ``ANY_KEY``, which says
"under every entry of this dict".
"""

from __future__ import annotations

import copy
import math
from typing import Any, Final

from attrs import frozen


class Sentinel:
    """A marker value that never occurs in JSON data; falsy, compared by identity, and
    pickled by name (so a sentinel survives a trip to a worker process)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False


ABSENT: Final[Sentinel] = Sentinel("ABSENT")
"""A key that is not in the source (distinct from a key whose value is ``null``)."""

INVALID: Final[Sentinel] = Sentinel("INVALID")
"""A value that failed to read; its violation is already recorded."""


@frozen
class Member:
    """Footprint marker: the paths after it are inside the union member ``tag``."""

    tag: str

    def __str__(self) -> str:
        return f"<{self.tag}>"


@frozen
class _AnyKey:
    def __str__(self) -> str:
        return "*"


ANY_KEY = _AnyKey()

Key = Any
Path = tuple[Key, ...]


TAG_KEY = "type"


def as_path(spec: str | Path) -> Path:
    """``"a.b"`` and ``("a", "b")`` both give ``("a", "b")``; ``""`` gives the root.
    A part spelled ``<tag>`` is a ``Member(tag)`` marker: ``"rotary.<yarn>.factor"``."""
    if isinstance(spec, tuple):
        return spec
    return tuple(
        Member(part[1:-1]) if part.startswith("<") and part.endswith(">") else part
        for part in spec.split(".")
        if part
    )


def dotted(path: Path) -> str:
    """``("a", Member("x"), "b")`` as ``"a.<x>.b"``, the spelling ``as_path`` reads back."""
    return ".".join(str(part) for part in path) or "(root)"


def data_path(path: Path) -> Path:
    """``path`` without its member markers: where the value sits in the data."""
    return tuple(part for part in path if not isinstance(part, Member))


def jsonpath(path: Path) -> str:
    out = "$"
    for key in data_path(path):
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(key, str) and key.isidentifier():
            out += f".{key}"
        elif isinstance(key, str):
            out += f"[{key!r}]"
        else:
            out += f".{key}"
    return out


def _follow(tree: Any, path: Path) -> tuple[Any, bool]:
    """Walk ``path``: the value found (or ``ABSENT``), and whether the walk stopped at a member
    marker that the data's ``type`` contradicts."""
    for key in path:
        if isinstance(key, Member):
            if not isinstance(tree, dict):
                return ABSENT, False
            if tree.get(TAG_KEY) != key.tag:
                return ABSENT, True
            continue
        if not isinstance(tree, dict) or key not in tree:
            return ABSENT, False
        tree = tree[key]
    return tree, False


def lookup(tree: Any, path: Path) -> Any:
    """The value at ``path``, or ``ABSENT`` when a step is missing, not a dict, or a member
    marker names another member than the data's ``type``."""
    return _follow(tree, path)[0]


def other_member(tree: Any, path: Path) -> bool:
    """Whether ``path`` runs through a member marker that the data's ``type`` contradicts
    (so the field is not missing: the whole member is, and its tag lens reports that)."""
    return _follow(tree, path)[1]


def nest(path: Path, value: Any) -> Any:
    """``value`` wrapped in dicts along ``path`` (member markers take no room)."""
    for key in reversed(data_path(path)):
        value = {key: value}
    return value


def deep_merge(into: dict, other: dict) -> dict:
    """Merge ``other`` into ``into`` in place (dict subtrees merge, other values overwrite)."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        else:
            into[key] = value
    return into


# Real configs nest a few levels; recursion over a value nested thousands deep (valid JSON)
# would raise ``RecursionError`` somewhere far from the input. Deeper sources are refused.
MAX_DEPTH = 100


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests dicts and lists more than ``limit`` deep (checked iteratively)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts and lists copied, scalars shared)."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return (
        copy.copy(value) if not isinstance(value, str | int | float | bool | type(None)) else value
    )


def same(a: Any, b: Any) -> bool:
    """Exact equality for JSON-shaped values: types, key order and NaN-aware floats.

    ``1 == 1.0 == True`` in Python, but they are three different spellings in a config file.
    """
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def equal_values(a: Any, b: Any) -> bool:
    """Value equality for view values: NaN equals NaN, ``1 == 1.0``, but ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal_values(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(equal_values(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


def is_prefix(short: Path, long: Path) -> bool:
    return len(short) <= len(long) and long[: len(short)] == short
