"""Paths into JSON-shaped trees, and the sentinels that mark absence.

A path is a tuple of keys. Footprints may also contain two markers that never occur in data:
``Member(tag)``, which says "inside the union member ``tag``", and ``ANY_KEY``, which says
"under every entry of this dict".
"""

from __future__ import annotations

import copy
import functools
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
    return _parsed(spec)


@functools.lru_cache(maxsize=4096)
def _parsed(spec: str) -> Path:
    """Derived defaults look up their view paths by name on every read: parse each once."""
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
    return tuple(part for part in path if type(part) is not Member)


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
        if type(key) is Member:  # exact types: this walk runs for every field of every put
            if not isinstance(tree, dict):
                return ABSENT, False
            if tree.get(TAG_KEY) != key.tag:
                return ABSENT, True
            continue
        if type(tree) is not dict and not isinstance(tree, dict):
            return ABSENT, False
        tree = tree.get(key, ABSENT)
        if tree is ABSENT:
            return ABSENT, False
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
    for key in reversed(path):
        if type(key) is not Member:
            value = {key: value}
    return value


def place(tree: dict, path: Path, value: Any) -> None:
    """``deep_merge(tree, nest(path, value))`` without building the nested fragment: records
    assemble their views this way, one field at a time."""
    last = len(path) - 1
    for index, key in enumerate(path):
        if type(key) is Member:
            continue
        if index == last:
            break
        node = tree.get(key)
        if not isinstance(node, dict):
            tree[key] = nest(path[index + 1 :], value)
            return
        tree = node
    else:  # the path ended with a member marker (or was empty): merge at this level
        if isinstance(value, dict):
            deep_merge(tree, value)
        return
    mine = tree.get(key)
    if isinstance(value, dict) and isinstance(mine, dict):
        deep_merge(mine, value)
    else:
        tree[key] = value


def deep_merge(into: dict, other: dict) -> dict:
    """Merge ``other`` into ``into`` in place (dict subtrees merge, other values overwrite)."""
    for key, value in other.items():
        if isinstance(value, dict):
            mine = into.get(key)
            if isinstance(mine, dict):
                deep_merge(mine, value)
                continue
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


_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts and lists copied, scalars shared)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return copy.copy(value) if not isinstance(value, str | int | float | bool) else value


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
    kind = type(a)
    if kind is type(b) and (kind is int or kind is str or kind is bool or a is None):
        return a == b  # the common case: two scalars of one exact type
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
