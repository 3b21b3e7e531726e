"""DeepSeek's layer layout: the first ``first_k_dense_replace`` layers have a dense MLP, the
rest a mixture of experts (transformers 5.24's ``DeepseekV3DecoderLayer``; the remote code's
``moe_layer_freq`` must be 1, see ``deepseek_v3``).

A ``FixedDecoder`` of MoE blocks when no layer is dense (``intermediate_size`` is then inert
presentation, kept by put); otherwise a ``PatternDecoder`` with the blocks ``moe`` (from the
table) and ``dense`` (the same but for its MLP) and the pattern ``dense * k + moe * (L - k)``.
A model whose layers are all dense is not represented (refused naming the key).
"""

from __future__ import annotations

from typing import Any

from ckptlens.formats.decoders import LayerLayout
from ckptlens.formats.hf import COUNT
from ckptlens.formats.latent_blocks import dense_after, read_key, spelled
from ckptlens.formats.tables import Place, flat
from ckptlens.lenses import ABSENT, Int, Lens, Problem, custom, record

LAYERS, FIRST_DENSE = "num_hidden_layers", "first_k_dense_replace"
DEFAULTS = {LAYERS: 61, FIRST_DENSE: 3}
TYPES = {LAYERS: COUNT, FIRST_DENSE: Int(minimum=0)}


def _counts(src: Any) -> tuple[int, int]:
    return (
        read_key(src, LAYERS, COUNT, DEFAULTS[LAYERS]),
        read_key(src, FIRST_DENSE, TYPES[FIRST_DENSE], DEFAULTS[FIRST_DENSE]),
    )


def _write(layers: int, dense: int, old: Any) -> dict[str, Any]:
    return {
        key: spelled(key, value, DEFAULTS[key], TYPES[key], old)
        for key, value in [(LAYERS, layers), (FIRST_DENSE, dense)]
    }


def layout_kind(src: Any) -> str:
    if isinstance(src, dict) and src.get(FIRST_DENSE, DEFAULTS[FIRST_DENSE]) == 0:
        return "fixed"
    return "pattern"


def _fixed_read(src: Any) -> dict[str, Any]:
    layers, _ = _counts(src)
    return {"num_blocks": layers}


def _fixed_write(view: Any, old: Any) -> dict[str, Any]:
    return _write(view["num_blocks"], 0, old)


def _pattern_read(src: Any) -> dict[str, Any]:
    layers, dense = _counts(src)
    if dense >= layers:
        expected = f"fewer than num_hidden_layers ({layers}): a model of dense layers only"
        raise Problem(FIRST_DENSE, f"{expected} is not represented", dense)
    return {"pattern": ["dense"] * dense + ["moe"] * (layers - dense)}


def _pattern_write(view: Any, old: Any) -> dict[str, Any]:
    pattern = list(view["pattern"])
    dense = next((i for i, name in enumerate(pattern) if name != "dense"), len(pattern))
    if not 0 < dense < len(pattern) or pattern[dense:] != ["moe"] * (len(pattern) - dense):
        raise ValueError(f"'dense' layers first, then 'moe' layers, both present: {pattern}")
    return _write(len(pattern), dense, old)


def _examples(fixed: bool) -> Any:
    from hypothesis import strategies as st

    if fixed:
        return st.fixed_dictionaries(
            {LAYERS: st.integers(1, 6), FIRST_DENSE: st.just(0)},
            optional={"intermediate_size": st.integers(1, 64)},
        )
    layers = st.integers(2, 6)
    return layers.flatmap(
        lambda count: (
            st.fixed_dictionaries({LAYERS: st.just(count)}, optional={})
            .map(lambda src: src)
            .flatmap(
                lambda src: (
                    st.integers(1, count - 1).map(lambda k: {**src, FIRST_DENSE: k})
                    | (st.just(src) if count > 3 else st.nothing())
                )
            )
        )
    )


def _inert_read(src: Any) -> dict[str, Any]:
    return {}


def _inert_write(view: Any, old: Any) -> dict[str, Any]:
    """Kept as it was; the normal form (a fresh source) has no such key."""
    return {"intermediate_size": ABSENT} if old is ABSENT else {}


def dense_prefix_layout() -> LayerLayout:
    dense = Place("blocks.dense", "decoder.<pattern>.blocks.dense")
    moe = Place("blocks.moe", "decoder.<pattern>.blocks.moe")
    fixed = custom(
        "layer counts",
        _fixed_read,
        _fixed_write,
        keys=(LAYERS, FIRST_DENSE),
        views=("num_blocks",),
        where=FIRST_DENSE,
        examples=lambda: _examples(True),
    )
    # With no dense layer ``intermediate_size`` has no effect: kept, not shown.
    inert = custom(
        "unused dense width",
        _inert_read,
        _inert_write,
        keys=("intermediate_size",),
        views=(),
        examples=lambda: _examples(True),
    )
    pattern: Lens = custom(
        "dense layers first",
        _pattern_read,
        _pattern_write,
        keys=(LAYERS, FIRST_DENSE),
        views=("pattern",),
        where=FIRST_DENSE,
        examples=lambda: _examples(False),
    )
    return LayerLayout(
        kind=layout_kind,
        fixed=record(fixed, inert),
        pattern=record(*flat(dense_after(dense, moe)), pattern),
        names=("moe", "dense"),
        differs=("mlp",),
        first={},
        fixed_options={},
        where=FIRST_DENSE,
    )


DENSE_PREFIX = dense_prefix_layout()
