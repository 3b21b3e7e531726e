"""Qwen2 (``Qwen2ForCausalLM``): Llama's keys with q/k/v-only biases, no ``head_dim`` key, and
per-layer sliding windows.

Which layers slide is what transformers 5.24 makes of five keys: the window in effect is
``sliding_window`` if ``use_sliding_window`` else none; ``layer_types`` (when present, not null)
names each layer's kind, otherwise layers ``i >= max_window_layers`` slide when a window is in
effect; a ``sliding_attention`` layer attends within that window. The view shows the result:
a ``FixedDecoder`` when every layer is alike, else a ``PatternDecoder`` with the blocks
``full`` and ``sliding`` (identical but for the window) and the expanded pattern. Values the
five keys hold without effect (``sliding_window: 32768`` next to ``use_sliding_window: false``,
the real Qwen configs) are presentation: put keeps them, the view does not show them.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen
from hypothesis import strategies as st

from ckptlens.formats.base import Format
from ckptlens.formats.hf import (
    EPSILON,
    POSITIVE,
    Problem,
    generic_keys,
    metadata,
    mirror,
    sampled_custom,
)
from ckptlens.formats.llama import (
    BLOCK_LINES,
    FINAL_NORM,
    METADATA_DEFAULTS,
    Line,
    block_lines,
    flat,
    llama_tree,
    mixer_of,
    mlp_of,
)
from ckptlens.lenses import (
    ABSENT,
    Bool,
    Int,
    Nullable,
    at,
    constant,
    derived,
    field,
    pinned,
    record,
    structure,
    tag,
    union,
)
from ckptlens.lenses.paths import as_path, lookup
from ckptlens.lenses.values import Bad, ValueType
from ckptlens.native.config import Attention, Model
from ckptlens.native.converter import converter

FIXED_BLOCK = "decoder.<fixed>.block"
FULL_BLOCK = "decoder.<pattern>.blocks.full"
QWEN2_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 32768,
    "bos_token_id": None,
    "eos_token_id": None,
}
QWEN2_DEFAULTS = {"intermediate_size": 22016, "kv_heads": 32}

# ---------------------------------------------------------------- the block


def _whole_heads(reads: str) -> Any:
    heads = f"{mixer_of(reads)}.heads"

    def compute(view: Any) -> int:
        return view("hidden_size") // view(heads)

    return compute, ["hidden_size", heads]


def head_size(block: str, reads: str | None = None) -> Line:
    """No ``head_dim`` key: the modeling code uses ``hidden_size // num_attention_heads``."""
    compute, reads_paths = _whole_heads(reads or block)
    return derived(
        f"{mixer_of(block)}.head_size", compute, reads_paths, "hidden_size // num_attention_heads"
    )


def qkv_biases(block: str) -> Line:
    """q/k/v projections always have biases, the output projection never (hard-wired)."""
    mixer = mixer_of(block)
    return [
        pinned(f"{mixer}.query_bias", True, "q_proj always has a bias"),
        pinned(f"{mixer}.key_value_bias", True, "k_proj and v_proj always have biases"),
        pinned(f"{mixer}.dense_bias", False, "o_proj never has a bias"),
    ]


def no_mlp_biases(block: str) -> Line:
    mlp = mlp_of(block)
    return [
        pinned(f"{mlp}.{name}", False, "no MLP biases in this format")
        for name in ("layer_1_bias", "layer_2_bias")
    ]


def qwen2_block(block: str, reads: str, **overrides: Line) -> dict[str, Line]:
    """Llama's block lines with Qwen2's biases, head size and defaults."""
    return block_lines(
        block,
        reads,
        defaults=QWEN2_DEFAULTS,
        head_size=head_size(block, reads),
        attention_bias=qkv_biases(block),
        mlp_bias=no_mlp_biases(block),
        **overrides,
    )


def block_epsilon(block: str) -> Line:
    """One key, ``rms_norm_eps``, sets every norm; it is read into the final norm."""
    return mirror(
        f"{block}.normalization.<rms_norm>.epsilon",
        f"{FINAL_NORM}.epsilon",
        "rms_norm_eps (the final norm's epsilon)",
    )


# ---------------------------------------------------------------- which layers slide

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
    "num_hidden_layers": POSITIVE,
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
    """The keys ``old`` must change to say ``layout``; the rest of its presentation stays."""
    updates: dict[str, Any] = {"num_hidden_layers": len(layout.kinds)}
    listed = old.get("layer_types") is not None
    if layout.window is not None:
        updates["use_sliding_window"] = True
        updates["sliding_window"] = layout.window
        if listed or not layout.by_max_window_layers:
            updates["layer_types"] = layout.layer_types
        elif _value(old, "max_window_layers") != layout.first_sliding:
            updates["max_window_layers"] = layout.first_sliding
    elif listed:
        updates["layer_types"] = layout.layer_types
    elif "sliding" in read_layout(old).kinds:
        updates["use_sliding_window"] = False
    return {key: _keep_spelling(key, value, old) for key, value in updates.items()}


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
    return lookup(view, as_path(f"{mixer_of(block)}.window"))


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
    kinds = st.lists(st.sampled_from(list(KINDS)), min_size=src["num_hidden_layers"])
    listed = kinds.map(lambda types: {**src, "layer_types": types[: src["num_hidden_layers"]]})
    return st.just(src) | listed


def layout_lens(views: list[str], read: Any, write: Any) -> Line:
    return sampled_custom(
        "layer windows",
        read,
        write,
        keys=LAYOUT_KEYS,
        views=views,
        where="layer_types",
        examples=_sources(),
    )


# ---------------------------------------------------------------- the decoder union

ATTENTION_FIELDS = [a.name for a in Attention.__attrs_attrs__ if a.name != "window"]


def sliding_copy() -> list[Line]:
    """The ``sliding`` block is the ``full`` block with a window: every other field copies."""
    mixer = mixer_of("blocks.sliding")
    return [
        *(
            mirror(f"blocks.sliding.{part}", f"{FULL_BLOCK}.{part}", "as in the 'full' block")
            for part in ("mlp", "normalization")
        ),
        tag("blocks.sliding.mixer", "attention"),
        *(
            mirror(f"{mixer}.{name}", f"{mixer_of(FULL_BLOCK)}.{name}", "as in the 'full' block")
            for name in ATTENTION_FIELDS
        ),
    ]


FIXED = record(
    *flat(
        *qwen2_block("block", FIXED_BLOCK, window=[]).values(),
        block_epsilon("block"),
        layout_lens(["num_blocks", "block.mixer.<attention>.window"], _fixed_view, _fixed_write),
    )
)
PATTERN = record(
    *flat(
        *qwen2_block(
            "blocks.full",
            FULL_BLOCK,
            window=pinned(f"{mixer_of('blocks.full')}.window", None, "full-attention layers"),
        ).values(),
        block_epsilon("blocks.full"),
        *sliding_copy(),
        layout_lens(
            ["pattern", "blocks.sliding.mixer.<attention>.window"], _pattern_view, _pattern_write
        ),
    )
)
DECODER = at(
    "decoder",
    union("decoder layout", layout_kind, where="layer_types", fixed=FIXED, pattern=PATTERN),
)

tree = llama_tree(
    "qwen2",
    ["Qwen2ForCausalLM"],
    defaults={"vocab_size": 151936},
    decoder=DECODER,
    layers=[],
    **{name: [] for name in BLOCK_LINES},  # the decoder union holds the block
    epsilon=field(f"{FINAL_NORM}.epsilon", "rms_norm_eps", EPSILON, default=1e-6),
    metadata=metadata(QWEN2_METADATA),
    extra=generic_keys(),
    # Qwen2-VL's multimodal rotary: a different position scheme this format does not run.
    rope_interleaved=constant("use_mrope", False, create=False),
)
lens = tree >> structure(Model, converter)

FORMAT = Format(
    name="qwen2",
    model_type="qwen2",
    architectures=("Qwen2ForCausalLM",),
    lens=lens,
    weight_naming="qwen2",
    peer="Qwen2Config",
)
