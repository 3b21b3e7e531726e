"""Hypothesis strategies derived from lens declarations.

``sources(lens)`` walks the lens tree and draws a source the way people write them: every
defaulted key absent, present at its default, or present off it; every union branch; every
spelling (v4 and v5 rope, ``torch_dtype`` and ``dtype``); passthrough metadata present or
absent. ``views(lens)`` reads those sources, keeping the ones inside the domain, so views cover
everything the format can express. Nothing here is format-specific.
"""

from __future__ import annotations

import functools
from typing import Any

from attrs import frozen
from hypothesis import strategies as st

from ckptlens.lenses import (
    ABSENT,
    Bool,
    Enum,
    Field,
    Float,
    Int,
    Json,
    Lens,
    Nullable,
    Path,
    Share,
    Str,
    TokenIds,
    ValueType,
    as_path,
    data_path,
    lookup,
)

# Sizes a model config uses: mostly powers of two (so head counts divide and head sizes are
# even, as real models are), sometimes anything, to reach the domain's edges.
_NICE_INTS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


@functools.singledispatch
def value_strategy(value_type: ValueType) -> st.SearchStrategy[Any]:
    raise TypeError(f"no strategy for value type {value_type!r}")


@value_strategy.register
def _(value_type: Int) -> st.SearchStrategy[Any]:
    low = value_type.minimum if value_type.minimum is not None else -8
    nice = [n for n in _NICE_INTS if n >= low]
    anything = st.integers(low, low + 300)
    if not nice:
        return anything
    # Three to one for sizes that divide each other: most drawn configs should be valid.
    kinds = st.sampled_from(("nice", "nice", "nice", "any"))
    return kinds.flatmap(lambda kind: st.sampled_from(nice) if kind == "nice" else anything)


@value_strategy.register
def _(value_type: Float) -> st.SearchStrategy[Any]:
    low = 0.0 if (value_type.positive or value_type.nonnegative) else -1e6
    high = value_type.maximum if value_type.maximum is not None else 1e6
    finite = st.floats(low, high, allow_nan=False, allow_infinity=False)
    if value_type.positive:
        finite = finite.filter(lambda x: x > 0)
    nice_values = (1e-6, 1e-5, 0.02, 0.5, 1.0, 2.0, 4.0, 8.0, 1e4)
    nice = st.sampled_from([x for x in nice_values if low < x <= high])
    # Integers are valid spellings of floats in JSON configs (``"rope_theta": 100000``).
    return st.one_of(
        nice, finite, nice.map(int).filter(lambda x: x > low or not value_type.positive)
    )


@value_strategy.register
def _(value_type: Share) -> st.SearchStrategy[Any]:
    # Mostly the round shares configs use (so most drawn sizes stay valid), sometimes anything.
    common = st.sampled_from([0.25, 0.5, 0.75, 1.0, 1])
    return st.one_of(common, common, common, value_strategy.dispatch(Float)(value_type))


@value_strategy.register
def _(value_type: Bool) -> st.SearchStrategy[Any]:
    return st.booleans()


@value_strategy.register
def _(value_type: Str) -> st.SearchStrategy[Any]:
    return st.sampled_from(["float32", "bfloat16", "float16"]) | st.text(max_size=8)


@value_strategy.register
def _(value_type: Enum) -> st.SearchStrategy[Any]:
    return st.sampled_from([*value_type.names, *value_type.aliases])


@value_strategy.register
def _(value_type: Nullable) -> st.SearchStrategy[Any]:
    return st.none() | value_strategy(value_type.inner)


@value_strategy.register
def _(value_type: TokenIds) -> st.SearchStrategy[Any]:
    token = st.integers(0, 200_000)
    return token | st.lists(token, min_size=1, max_size=3)


JSON_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=6)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@value_strategy.register
def _(value_type: Json) -> st.SearchStrategy[Any]:
    return JSON_VALUES


@frozen
class SpellDerived:
    """Placeholder for "this key spelled out at its derived default", filled in once the rest
    of the source is drawn and its view can be read."""

    field: Field
    view_path: Path


Fragment = st.SearchStrategy[dict[str, Any]]
EMPTY: Fragment = st.just({})


def fragments(lens: Lens, vat: Path) -> Fragment:
    """Source fragments (the keys ``lens`` owns at its level) for a lens whose view sits at
    ``vat``: each lens class draws its own (``Lens._examples``), composing as lenses do."""
    return lens._examples(vat)


def all_of(parts: list[Fragment]) -> Fragment:
    """Fragments drawn from each of ``parts`` and merged (a record's)."""
    return st.tuples(*parts).map(_merged)


def _merged(parts: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        _merge(out, part)
    return out


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def tree_of(lens: Lens) -> Lens:
    """The part of ``lens`` whose view is a plain dict (before the attrs structuring)."""
    return lens.tree


def drawn_sources(lens: Lens) -> Fragment:
    """Sources drawn from the declarations of ``lens``, valid or not."""
    return fragments(lens, ()).map(lambda source: _spell_derived(lens, source))


def _spell_derived(lens: Lens, source: dict[str, Any]) -> dict[str, Any]:
    pending = list(_placeholders(source, ()))
    if not pending:
        return source
    for path, _ in pending:
        _remove(source, path)
    view = _tree_view(lens, source)
    for path, placeholder in pending:
        value = ABSENT if view is ABSENT else lookup(view, placeholder.view_path)
        if value is not ABSENT:
            _assign(source, path, placeholder.field.type.write(value))
    return source


def _placeholders(tree: Any, at: Path) -> Any:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if isinstance(value, SpellDerived):
                yield (*at, key), value
            else:
                yield from _placeholders(value, (*at, key))


def _remove(tree: dict[str, Any], path: Path) -> None:
    for key in path[:-1]:
        tree = tree[key]
    del tree[path[-1]]


def sources_and_views(lens: Lens) -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    """Sources inside the domain of ``lens`` with their views (each read once)."""

    def read(source: dict[str, Any]) -> tuple[dict[str, Any], Any] | None:
        view, problems = lens._get_checked(source)
        return None if problems else (source, view)

    # ``filter`` redraws a few times before giving up, where ``assume`` would throw away a
    # whole example (three sources) for one invalid draw.
    return drawn_sources(lens).map(read).filter(lambda pair: pair is not None)


def sources(lens: Lens) -> st.SearchStrategy[dict[str, Any]]:
    """Sources inside the domain of ``lens``, in every presentation its declarations allow."""
    return sources_and_views(lens).map(lambda pair: pair[0])


def views(lens: Lens) -> st.SearchStrategy[Any]:
    """Views inside the domain of ``lens``: what ``get`` makes of its sources."""
    return sources_and_views(lens).map(lambda pair: pair[1])


def _tree_view(lens: Lens, source: dict[str, Any]) -> Any:
    tree = tree_of(lens)
    view, problems = tree._get_checked(source)
    return ABSENT if problems else view


def _assign(tree: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def example_view(fmt: Any) -> Any:
    """One example view for a format (or lens), for the REPL."""
    from hypothesis import find

    lens = getattr(fmt, "lens", fmt)
    return find(views(lens), lambda _: True)


__all__ = ["as_path", "data_path", "example_view", "sources", "tree_of", "value_strategy", "views"]
