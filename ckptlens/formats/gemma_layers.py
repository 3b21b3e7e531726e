"""Which Gemma 2/3 layers slide, as transformers 5.24 reads ``layer_types`` and ``sliding_window``.

``Gemma2Config.__post_init__``: without ``layer_types`` (absent or null) layer i slides when
``i`` is even (``(i + 1) % 2``); Gemma 3 (``Gemma3TextConfig``) slides every layer but each
``sliding_window_pattern``-th. A ``sliding_attention`` layer attends within ``sliding_window``
(and cannot be built without one). When no layer slides, ``sliding_window`` has no effect: put
keeps it (inert presentation).
"""

from __future__ import annotations

from typing import Any

from ckptlens.formats.hf import COUNT, POSITIVE
from ckptlens.formats.windows import KINDS, Layout, Rules
from ckptlens.lenses import ABSENT, Bad, Nullable, Problem

WINDOW = Nullable(POSITIVE)


def _layers(src: Any, default: int) -> int:
    raw = src.get("num_hidden_layers", default)
    value = COUNT.read(raw)
    if isinstance(value, Bad):
        raise Problem("num_hidden_layers", value.expected, raw)
    return int(value)


def _window(src: Any, default: int) -> int | None:
    raw = src.get("sliding_window", default)
    value = WINDOW.read(raw)
    if isinstance(value, Bad):
        raise Problem("sliding_window", value.expected, raw)
    return value  # type: ignore[no-any-return]


def _types(layout: Layout) -> dict[str, Any]:
    return {"layer_types": layout.layer_types}


def _spelled(old: Any, key: str, value: int, default: int) -> Any:
    """An implicit default stays implicit."""
    return ABSENT if key not in old and value == default else value


def gemma_rules(*, layers: int, window: int, period: int) -> Rules:
    """The layout keys of a Gemma config class: ``layers`` and ``window`` are its defaults of
    ``num_hidden_layers`` and ``sliding_window``; every ``period``-th layer is global when
    ``layer_types`` is not given."""

    def default_kinds(count: int) -> tuple[str, ...]:
        return tuple("full" if (i + 1) % period == 0 else "sliding" for i in range(count))

    def read(src: Any) -> Layout:
        count, size = _layers(src, layers), _window(src, window)
        types = src.get("layer_types")
        if types is None:
            kinds = default_kinds(count)
        elif not isinstance(types, list) or any(kind not in KINDS for kind in types):
            raise Problem("layer_types", f"a list of {sorted(KINDS)}", types)
        elif len(types) != count:
            raise Problem("layer_types", f"{count} entries (num_hidden_layers)", types)
        else:
            kinds = tuple(KINDS[kind] for kind in types)
        if "sliding" in kinds and size is None:
            raise Problem(
                "sliding_window",
                "a window: some layers are sliding_attention, and transformers cannot build "
                "their mask without one",
                None,
            )
        return Layout(kinds, size)

    def write(layout: Layout, old: Any) -> dict[str, Any]:
        count = len(layout.kinds)
        if old is ABSENT:  # as the config class's ``to_dict`` writes them
            size = window if layout.window is None else layout.window
            return {"num_hidden_layers": count, "sliding_window": size, **_types(layout)}
        keys: dict[str, Any] = {
            "num_hidden_layers": _spelled(old, "num_hidden_layers", count, layers)
        }
        if layout.window is not None:  # else the window is inert: the old value stays
            keys["sliding_window"] = _spelled(old, "sliding_window", layout.window, window)
        if old.get("layer_types") is not None or layout.kinds != default_kinds(count):
            keys |= _types(layout)
        return keys

    def examples() -> Any:
        from hypothesis import strategies as st

        base = st.fixed_dictionaries(
            {"num_hidden_layers": st.integers(1, 6)},
            optional={"sliding_window": st.integers(1, 8192)},
        )

        def with_types(src: dict[str, Any]) -> Any:
            kinds = st.lists(
                st.sampled_from(list(KINDS)),
                min_size=src["num_hidden_layers"],
                max_size=src["num_hidden_layers"],
            )
            return st.just(src) | kinds.map(lambda types: {**src, "layer_types": types})

        return base.flatmap(with_types)

    keys = ("num_hidden_layers", "sliding_window", "layer_types")
    return Rules(read, write, keys, examples)
