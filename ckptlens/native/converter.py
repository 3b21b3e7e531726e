"""The cattrs converter between native attrs objects and plain JSON-shaped dicts.

It is strict where cattrs is lenient by default: no string-to-int coercion, no bools passing
as ints, no unknown keys. Every class with a ``tag`` is written with a ``"type"`` key first,
whether or not it currently sits in a union, so that a native dict names what each subtree is
and a union can grow members without changing the files already written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from ckptlens.lenses.paths import TAG_KEY
from ckptlens.native import config as schema


def _strict_int(value: Any, _: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, found {value!r}")
    return value


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, found {value!r}")
    return float(value)


def _strict_bool(value: Any, _: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, found {value!r}")
    return value


def _strict_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, found {value!r}")
    return value


def _token_ids(value: Any, _: Any) -> schema.TokenIds:
    if value is None or type(value) is int:
        return value
    if isinstance(value, list | tuple) and all(type(v) is int for v in value):
        return tuple(value)
    raise TypeError(f"expected a token id, a list of token ids or null, found {value!r}")


def _has_tag(cls: Any) -> bool:
    return isinstance(cls, type) and attrs.has(cls) and isinstance(getattr(cls, "tag", None), str)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(
        forbid_extra_keys=True, unstruct_collection_overrides={tuple: list}
    )
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(schema.TokenIds, _token_ids)

    def unstructure_tagged(cls: type) -> Callable[[Any], dict[str, Any]]:
        fields = make_dict_unstructure_fn(cls, converter)

        def unstructure(obj: Any) -> dict[str, Any]:
            return {TAG_KEY: cls.tag, **fields(obj)}

        return unstructure

    def structure_tagged(cls: type) -> Callable[[Any, Any], Any]:
        fields = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)

        def structure(data: Any, _: Any) -> Any:
            if not isinstance(data, dict):
                raise TypeError(f"expected an object for {cls.__name__}, found {data!r}")
            if data.get(TAG_KEY) != cls.tag:
                raise ValueError(f"expected {TAG_KEY} {cls.tag!r}, found {data.get(TAG_KEY)!r}")
            return fields({k: v for k, v in data.items() if k != TAG_KEY}, cls)

        return structure

    converter.register_unstructure_hook_factory(_has_tag, unstructure_tagged)
    converter.register_structure_hook_factory(_has_tag, structure_tagged)

    for union, members in schema.UNION_MEMBERS.items():
        if members == (union,):  # a one-member union is its class: the tagged hook serves it
            continue
        converter.register_structure_hook(union, _union_hook(converter, members))
        converter.register_unstructure_hook(union, converter.unstructure)
    return converter


def _union_hook(converter: cattrs.Converter, members: tuple[type, ...]) -> Callable:
    by_tag = {member.tag: member for member in members}

    def structure(data: Any, _: Any) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object with a {TAG_KEY!r} key, found {data!r}")
        member = by_tag.get(data.get(TAG_KEY))
        if member is None:
            raise ValueError(f"unknown {TAG_KEY} {data.get(TAG_KEY)!r}; known: {sorted(by_tag)}")
        return converter.structure(data, member)

    return structure


converter = _make_converter()


def unstructure(obj: Any) -> Any:
    """A native object as a plain JSON-shaped value."""
    return converter.unstructure(obj)


def structure(data: Any, cls: Any) -> Any:
    """A plain JSON-shaped value as a native object of ``cls`` (raises cattrs errors)."""
    return converter.structure(data, cls)
