"""Hypothesis strategies derived from lens declarations.

``sources(lens)`` walks the lens tree and draws a source the way people write them: every
defaulted key absent, present at its default, or present off it; every union branch; every
spelling (v4 and v5 rope, ``torch_dtype`` and ``dtype``); passthrough metadata present or
absent. ``views(lens)`` reads those sources, keeping the ones inside the domain, so views cover
everything the format can express. Nothing here is format-specific.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from ckptlens.lenses.core import At, Compose, Lens, Record
from ckptlens.lenses.fields import (
    Constraint,
    REQUIRED,
    Constant,
    Custom,
    Derive,
    Derived,
    Field,
    Passthrough,
    Pinned,
)
from ckptlens.lenses.paths import ABSENT, Path, as_path, data_path, lookup
from ckptlens.lenses.structure import DictOf, Spelling, Structured, Under, Union
from ckptlens.lenses.values import (
    Bool,
    Enum,
    Float,
    Int,
    Json,
    Nullable,
    Str,
    TokenIds,
    ValueType,
)

# Sizes a model config uses: mostly powers of two (so head counts divide and head sizes are
# even, as real models are), sometimes anything, to reach the domain's edges.
_NICE_INTS = (1, 2, 4, 8, 16, 32, 64, 128)


@functools.singledispatch
def value_strategy(value_type: ValueType) -> st.SearchStrategy[Any]:
    raise TypeError(f"no strategy for value type {value_type!r}")


@value_strategy.register
def _(value_type: Int) -> st.SearchStrategy[Any]:
    low = value_type.minimum if value_type.minimum is not None else -8
    nice = [n for n in _NICE_INTS if n >= low]
    return (
        st.one_of(st.sampled_from(nice), st.integers(low, low + 300))
        if nice
        else st.integers(low, low + 300)
    )


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


# A draw produces the source fragment at one dict level, plus "spell it at its default
# later" requests for derived defaults, which need the rest of the source first.
Pending = list[tuple[Path, Field, Path]]
Draw = Callable[[st.DataObject, Path, Path, Pending], dict[str, Any]]


@functools.singledispatch
def drawer(lens: Lens) -> Draw:
    raise TypeError(f"no source strategy for {type(lens).__name__}; give it an examples hook")


@drawer.register
def _(lens: Record) -> Draw:
    parts = [drawer(part) for part in lens.parts]

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for part in parts:
            _merge(out, part(data, at, vat, pending))
        return out

    return draw


@drawer.register
def _(lens: At) -> Draw:
    inner = drawer(lens.inner)
    return lambda data, at, vat, pending: inner(data, at, vat + lens.prefix, pending)


@drawer.register
def _(lens: Compose) -> Draw:
    return drawer(lens.first)


@drawer.register
def _(lens: Field) -> Draw:
    values = value_strategy(lens.type)

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        choices = ["off"] if lens.default is REQUIRED else ["absent", "default", "off"]
        if lens.null_means_default:
            choices.append("null")
        choice = data.draw(st.sampled_from(choices))
        if choice == "absent":
            return {}
        if choice == "null":
            return {lens.key: None}
        if choice == "default" and isinstance(lens.default, Derive):
            pending.append(((*at, lens.key), lens, vat + lens.views[0]))
            return {}
        if choice == "default":
            return {lens.key: lens.type.write(lens.default)}
        return {lens.key: data.draw(values)}

    return draw


@drawer.register
def _(lens: Constant) -> Draw:
    spellings = [(key,) for key in lens.keys] + ([lens.keys] if len(lens.keys) > 1 else [])

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        if not lens.required and data.draw(st.booleans()):
            return {}
        keys = data.draw(st.sampled_from(spellings))
        if len(keys) == 1:
            return {keys[0]: data.draw(st.sampled_from([lens.value, *lens.accept]))}
        return dict.fromkeys(keys, lens.value)

    return draw


@drawer.register
def _(lens: Passthrough) -> Draw:
    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        chosen = data.draw(st.lists(st.sampled_from(lens.keys), max_size=3, unique=True))
        return {key: data.draw(JSON_SCALARS) for key in chosen}

    return draw


@drawer.register(Pinned)
@drawer.register(Constraint)
@drawer.register(Derived)
@drawer.register(Structured)
def _(lens: Lens) -> Draw:
    return lambda data, at, vat, pending: {}


@drawer.register
def _(lens: Custom) -> Draw:
    examples = getattr(lens, "examples", None)
    if examples is None:
        raise TypeError(f"{lens!r} is custom: give it examples=<strategy of source dicts>")
    return lambda data, at, vat, pending: data.draw(examples)


@drawer.register
def _(lens: Under) -> Draw:
    inner = drawer(lens.inner)

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        sub = inner(data, (*at, lens.key), vat, pending)
        if not sub and lens.optional:
            return data.draw(st.sampled_from([{}, {lens.key: None}, {lens.key: {}}]))
        return {lens.key: sub}

    return draw


@drawer.register
def _(lens: Union) -> Draw:
    branches = {tag: drawer(branch) for tag, branch in lens.branches.items()}

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        tag = data.draw(st.sampled_from(sorted(branches)))
        return branches[tag](data, at, vat, pending)

    return draw


@drawer.register
def _(lens: Spelling) -> Draw:
    spellings = {name: drawer(inner) for name, inner in lens.spellings.items()}

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        name = data.draw(st.sampled_from(sorted(spellings)))
        return spellings[name](data, at, vat, pending)

    return draw


@drawer.register
def _(lens: DictOf) -> Draw:
    entry = drawer(lens.entry)

    def draw(data: st.DataObject, at: Path, vat: Path, pending: Pending) -> dict[str, Any]:
        names = data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True))
        return {name: entry(data, (*at, name), (*vat, name), pending) for name in names}

    return draw


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def tree_of(lens: Lens) -> Lens:
    """The part of ``lens`` whose view is a plain dict (before the attrs structuring)."""
    return lens.first if isinstance(lens, Compose) and getattr(lens.second, "iso", False) else lens


@st.composite
def sources(draw: st.DrawFn, lens: Lens, *, valid: bool = True) -> dict[str, Any]:
    """A source for ``lens`` drawn from its declarations; ``valid``: inside get's domain."""
    data = draw(st.data())
    pending: Pending = []
    source = drawer(lens)(data, (), (), pending)
    if pending:
        view = _tree_view(lens, source)
        if view is not ABSENT:
            for path, field, vpath in pending:
                value = lookup(view, vpath)
                if value is not ABSENT:
                    _assign(source, path, field.type.write(value))
    if valid:
        from hypothesis import assume

        assume(not lens.check_source(source))
    return source


def _tree_view(lens: Lens, source: dict[str, Any]) -> Any:
    tree = tree_of(lens)
    view, problems = tree._get_checked(source)
    return ABSENT if problems else view


def _assign(tree: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def views(lens: Lens) -> st.SearchStrategy[Any]:
    """Views inside the domain of ``lens``: what ``get`` makes of its sources."""
    return sources(lens).map(lens.get)


def example_view(fmt: Any) -> Any:
    """One example view for a format (or lens), for the REPL."""
    from hypothesis import find

    lens = getattr(fmt, "lens", fmt)
    return find(views(lens), lambda _: True)


__all__ = ["as_path", "data_path", "example_view", "sources", "tree_of", "value_strategy", "views"]
