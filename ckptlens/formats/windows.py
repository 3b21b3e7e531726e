"""Which Qwen2 layers use a sliding window, as transformers 5.24 reads five config keys.

``Qwen2Config.__post_init__`` and ``Qwen2Attention``: the window in effect is ``sliding_window``
if ``use_sliding_window`` else none; ``layer_types`` (present and not null) names each layer's
kind, otherwise layers ``i >= max_window_layers`` slide when a window is in effect; a
``sliding_attention`` layer attends within that window (and fails without one). The
``layout_lens`` here shows that per-layer result in a native decoder and writes it back with
the fewest key changes, keeping values that have no effect (inert presentation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from attrs import frozen

from ckptlens.formats.blocks import ATTENTION, nothing, pin
from ckptlens.formats.decoders import LayerLayout
from ckptlens.formats.hf import COUNT, POSITIVE
from ckptlens.lenses import (
    ABSENT,
    Bad,
    Bool,
    Int,
    Lens,
    Nullable,
    Problem,
    ValueType,
    as_path,
    custom,
    lookup,
)

LAYOUT_KEYS = (
    "num_hidden_layers",
    "use_sliding_window",
    "sliding_window",
    "max_window_layers",
    "layer_types",
)
KIND_NAMES = {"full": "full_attention", "sliding": "sliding_attention"}
KINDS = {name: kind for kind, name in KIND_NAMES.items()}
DEFAULTS = {
    "num_hidden_layers": 32,
    "use_sliding_window": False,
    "sliding_window": 4096,
    "max_window_layers": 28,
}
TYPES: dict[str, ValueType] = {
    "num_hidden_layers": COUNT,
    "use_sliding_window": Bool(),
    "sliding_window": Nullable(POSITIVE),
    "max_window_layers": Int(minimum=0),
}


@frozen
class Layout:
    """Each layer's kind (``full`` or ``sliding``) and the window of the sliding ones."""

    kinds: tuple[str, ...]
    window: int | None

    @property
    def first_sliding(self) -> int:
        return self.kinds.index("sliding") if "sliding" in self.kinds else len(self.kinds)

    @property
    def by_max_window_layers(self) -> bool:
        """Whether ``max_window_layers`` alone can say it (full layers, then sliding ones)."""
        return all(kind == "sliding" for kind in self.kinds[self.first_sliding :])

    @property
    def layer_types(self) -> list[str]:
        return [KIND_NAMES[kind] for kind in self.kinds]

    @property
    def windows(self) -> tuple[int | None, ...]:
        """Each layer's attention window (``None``: full attention)."""
        return tuple(self.window if kind == "sliding" else None for kind in self.kinds)


def _value(src: Any, key: str) -> Any:
    raw = src.get(key, DEFAULTS[key])
    value = TYPES[key].read(raw)
    if isinstance(value, Bad):
        raise Problem(key, value.expected, raw)
    return value


def _in_effect(src: Any) -> int | None:
    return _value(src, "sliding_window") if _value(src, "use_sliding_window") else None


def read_layout(src: Any) -> Layout:
    """What transformers makes of the five keys (``Qwen2Config.__post_init__`` and the
    attention's per-layer window); raises ``Problem`` where it would fail or misread."""
    layers, window = _value(src, "num_hidden_layers"), _in_effect(src)
    types = src.get("layer_types")
    if types is None:
        first = _value(src, "max_window_layers")
        sliding = window is not None
        return Layout(
            tuple("sliding" if sliding and i >= first else "full" for i in range(layers)), window
        )
    if not isinstance(types, list) or any(kind not in KINDS for kind in types):
        raise Problem("layer_types", f"a list of {sorted(KINDS)}", types)
    if len(types) != layers:
        raise Problem("layer_types", f"{layers} entries (num_hidden_layers)", types)
    kinds = tuple(KINDS[kind] for kind in types)
    if "sliding" in kinds and window is None:
        raise Problem(
            "layer_types",
            "no sliding_attention layer while no window is in effect (use_sliding_window "
            "false or sliding_window null): transformers cannot build that mask",
            types,
        )
    return Layout(kinds, window)


def layout_kind(src: Any) -> str:
    """The decoder union's discriminator: ``pattern`` when layers differ."""
    try:
        kinds = set(read_layout(src).kinds) if isinstance(src, dict) else set()
    except Problem:
        return "fixed"  # the fixed branch's layout lens reports the problem
    return "pattern" if len(kinds) > 1 else "fixed"


def fresh_keys(layout: Layout) -> dict[str, Any]:
    """The five keys as ``Qwen2Config.to_dict()`` writes them."""
    sliding = layout.window is not None
    return {
        "num_hidden_layers": len(layout.kinds),
        "use_sliding_window": sliding,
        "sliding_window": layout.window,
        "max_window_layers": layout.first_sliding if sliding else DEFAULTS["max_window_layers"],
        "layer_types": layout.layer_types,
    }


def updated_keys(layout: Layout, old: dict[str, Any]) -> dict[str, Any]:
    """The fewest keys ``old`` must change to say ``layout``; its other presentation stays
    (inert values included)."""
    for updates in _candidates(layout):
        spelled = {key: _keep_spelling(key, value, old) for key, value in updates.items()}
        merged = {key: value for key, value in {**old, **spelled}.items() if value is not ABSENT}
        try:
            if read_layout(merged).windows == layout.windows:
                return spelled
        except Problem:
            continue
    return spelled  # the last candidate lists every layer, which always says it


def _candidates(layout: Layout) -> Iterator[dict[str, Any]]:
    base: dict[str, Any] = {"num_hidden_layers": len(layout.kinds)}
    if layout.window is not None:
        base |= {"use_sliding_window": True, "sliding_window": layout.window}
        yield base
        yield {**base, "max_window_layers": layout.first_sliding}
    else:
        yield base
        yield {**base, "use_sliding_window": False}
    yield {**base, "layer_types": layout.layer_types}


def _keep_spelling(key: str, value: Any, old: dict[str, Any]) -> Any:
    """An implicit default stays implicit; a spelled value keeps its spelling."""
    if key == "layer_types":
        return value
    if key not in old and value == DEFAULTS[key] and type(value) is type(DEFAULTS[key]):
        return ABSENT
    return TYPES[key].write(value, old.get(key, ABSENT))


def write_layout(layout: Layout, old: Any) -> dict[str, Any]:
    return fresh_keys(layout) if old is ABSENT else updated_keys(layout, old)


def _window_at(view: Any, block: str) -> Any:
    return lookup(view, as_path(f"{block}.{ATTENTION}.window"))


def _fixed_view(src: Any) -> dict[str, Any]:
    layout = read_layout(src)
    window = layout.window if "sliding" in layout.kinds else None
    return {"num_blocks": len(layout.kinds), "block": {"mixer": {"window": window}}}


def _fixed_write(view: Any, old: Any) -> dict[str, Any]:
    window = _window_at(view, "block")
    kind = "full" if window is None else "sliding"
    return write_layout(Layout((kind,) * view["num_blocks"], window), old)


def _pattern_view(src: Any) -> dict[str, Any]:
    layout = read_layout(src)
    return {
        "pattern": list(layout.kinds),
        "blocks": {"sliding": {"mixer": {"window": layout.window}}},
    }


def _pattern_write(view: Any, old: Any) -> dict[str, Any]:
    names = sorted(view.get("blocks", {}))
    if names != ["full", "sliding"] or set(view.get("pattern", ())) != {"full", "sliding"}:
        raise ValueError(
            f"blocks named 'full' and 'sliding', both used (found {names}); a decoder whose "
            "layers are all alike is a FixedDecoder here"
        )
    window = _window_at(view, "blocks.sliding")
    if window is None:
        raise ValueError("a window on the 'sliding' block")
    return write_layout(Layout(tuple(view["pattern"]), window), old)


def _sources() -> Any:
    from hypothesis import strategies as st

    layers = st.integers(1, 6)
    return st.fixed_dictionaries(
        {"num_hidden_layers": layers},
        optional={
            "use_sliding_window": st.booleans(),
            "sliding_window": st.none() | st.integers(1, 8192),
            "max_window_layers": st.integers(0, 8),
        },
    ).flatmap(_with_layer_types)


def _with_layer_types(src: dict[str, Any]) -> Any:
    from hypothesis import strategies as st

    kinds = st.lists(st.sampled_from(list(KINDS)), min_size=src["num_hidden_layers"])
    listed = kinds.map(lambda types: {**src, "layer_types": types[: src["num_hidden_layers"]]})
    return st.just(src) | listed


def fixed_layout() -> Lens:
    """In a ``FixedDecoder``: the layer count and the one window (or none) of every layer."""
    return layout_lens(["num_blocks", "block.mixer.<attention>.window"], _fixed_view, _fixed_write)


def pattern_layout() -> Lens:
    """In a ``PatternDecoder``: the expanded pattern and the ``sliding`` block's window."""
    views = ["pattern", "blocks.sliding.mixer.<attention>.window"]
    return layout_lens(views, _pattern_view, _pattern_write)


def layout_lens(views: list[str], read: Any, write: Any) -> Lens:
    return custom(
        "layer windows",
        read,
        write,
        keys=LAYOUT_KEYS,
        views=views,
        where="layer_types",
        examples=_sources,
    )


QWEN2_LAYERS = LayerLayout(
    kind=layout_kind,
    fixed=fixed_layout(),
    pattern=pattern_layout(),
    names=("full", "sliding"),
    differs=(f"{ATTENTION}.window",),
    first={"window": pin("window", None, "full-attention layers")},
    fixed_options={"window": nothing},
)
"""Qwen2's layers: ``full`` and ``sliding`` blocks, alike but for the window."""
