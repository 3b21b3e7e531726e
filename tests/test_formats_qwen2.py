"""Qwen2: q/k/v-only biases, the derived head size, and which layers slide — checked against
what transformers' ``Qwen2Config`` and its attention make of the same keys."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptlens import formats
from ckptlens.lenses import SourceError, ViewError, same
from ckptlens.native.config import FixedDecoder, PatternDecoder

QWEN2 = formats.get("qwen2")
BASE = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 256,
}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def transformers_windows(source: dict) -> list[int | None]:
    """Each layer's window as transformers 5.24 runs it (``Qwen2Attention.sliding_window``)."""
    from transformers import Qwen2Config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = Qwen2Config.from_dict(dict(source))
    return [
        config.sliding_window if kind == "sliding_attention" else None
        for kind in config.layer_types
    ]


def view_windows(view) -> list[int | None]:
    return [block.mixer.window for block in view.decoder.blocks_in_order]


window_keys = st.fixed_dictionaries(
    {"num_hidden_layers": st.integers(1, 6)},
    optional={
        "use_sliding_window": st.booleans(),
        "sliding_window": st.none() | st.integers(1, 64),
        "max_window_layers": st.integers(0, 8),
    },
)


@st.composite
def window_sources(draw: st.DrawFn) -> dict:
    keys = draw(window_keys)
    if draw(st.booleans()):
        kinds = st.sampled_from(["full_attention", "sliding_attention"])
        keys["layer_types"] = draw(
            st.lists(kinds, min_size=keys["num_hidden_layers"], max_size=keys["num_hidden_layers"])
        )
    return {**BASE, **keys}


@FAST
@given(window_sources())
def test_layer_windows_mean_what_transformers_runs(source: dict) -> None:
    problems = QWEN2.lens.check_source(source)
    in_effect = source.get("sliding_window", 4096) if source.get("use_sliding_window") else None
    named_sliding = "sliding_attention" in source.get("layer_types", [])
    if named_sliding and in_effect is None:
        # transformers builds that model and then fails on the first forward (no window).
        assert [p.path for p in problems] == ["$.layer_types"]
        return
    assert problems == []
    view = QWEN2.lens.get(source)
    assert view_windows(view) == transformers_windows(source)
    uniform = len(set(view_windows(view))) == 1
    assert isinstance(view.decoder, FixedDecoder if uniform else PatternDecoder)
    assert same(QWEN2.lens.put(view, source), source)
    for generation in ("v5", "v4"):
        created = QWEN2.lens.create(view, generation=generation)
        assert QWEN2.lens.get(created) == view
        assert view_windows(QWEN2.lens.get(QWEN2.canonical(created))) == view_windows(view)


def test_a_pattern_view_names_full_and_sliding_blocks() -> None:
    source = {**BASE, "num_hidden_layers": 4, "use_sliding_window": True, "sliding_window": 16}
    source["max_window_layers"] = 2
    view = QWEN2.lens.get(source)
    assert view.decoder.pattern == ("full", "full", "sliding", "sliding")
    assert view.decoder.blocks["full"].mixer.window is None
    assert view.decoder.blocks["sliding"].mixer.window == 16
    assert view.decoder.blocks["full"].mlp == view.decoder.blocks["sliding"].mlp


def test_a_pattern_not_expressible_by_max_window_layers_writes_layer_types() -> None:
    source = {**BASE, "num_hidden_layers": 4, "use_sliding_window": True, "sliding_window": 16}
    source["max_window_layers"] = 2
    view = QWEN2.lens.get(source)
    alternating = PatternDecoder(view.decoder.blocks, ("sliding", "full") * 2)
    written = QWEN2.lens.put(view_with(view, decoder=alternating), source)
    assert written["layer_types"] == ["sliding_attention", "full_attention"] * 2
    assert transformers_windows(written) == [16, None, 16, None]


def test_blocks_that_differ_beyond_the_window_are_rejected() -> None:
    source = {**BASE, "num_hidden_layers": 2, "use_sliding_window": True, "sliding_window": 16}
    source["max_window_layers"] = 1
    view = QWEN2.lens.get(source)
    sliding = view.decoder.blocks["sliding"]
    wider = view_with(sliding, mlp=view_with(sliding.mlp, intermediate_size=256))
    blocks = {**view.decoder.blocks, "sliding": wider}
    bad = view_with(view, decoder=PatternDecoder(blocks, view.decoder.pattern))
    with pytest.raises(ViewError) as raised:
        QWEN2.lens.create(bad)
    assert [v.path for v in raised.value.violations] == ["$.decoder.blocks.sliding.mlp"]
    assert QWEN2.lens.check_view(bad) == list(raised.value.violations)


def test_biases_are_qkv_only_and_head_size_is_derived() -> None:
    view = QWEN2.lens.get({**BASE, "num_hidden_layers": 1})
    mixer = view.decoder.block.mixer
    assert (mixer.query_bias, mixer.key_value_bias, mixer.dense_bias) == (True, True, False)
    assert mixer.head_size == 16
    llama_like = view_with(
        view,
        decoder=view_with(
            view.decoder,
            block=view_with(
                view.decoder.block, mixer=view_with(mixer, dense_bias=True, head_size=32)
            ),
        ),
    )
    paths = [v.path for v in QWEN2.lens.check_view(llama_like)]
    assert "$.decoder.block.mixer.dense_bias" in paths
    assert "$.decoder.block.mixer.head_size" in paths
    with pytest.raises(SourceError, match="head_dim"):
        QWEN2.lens.get({**BASE, "head_dim": 16})


def test_mrope_is_rejected_and_use_mrope_false_reads() -> None:
    assert QWEN2.lens.check_source({**BASE, "use_mrope": False}) == []
    with pytest.raises(SourceError, match="use_mrope"):
        QWEN2.lens.get({**BASE, "use_mrope": True})
    mrope = {"type": "mrope", "mrope_section": [16, 24, 24]}
    with pytest.raises(SourceError, match="mrope"):
        QWEN2.lens.get({**BASE, "rope_scaling": mrope})


def view_with(obj, **changes):
    import attrs

    return attrs.evolve(obj, **changes)


def test_growing_an_all_full_decoder_keeps_every_layer_full() -> None:
    # max_window_layers 4 with 4 layers: nothing slides; 8 layers under the same keys would.
    source = {**BASE, "num_hidden_layers": 4, "use_sliding_window": True, "sliding_window": 16}
    source["max_window_layers"] = 4
    view = QWEN2.lens.get(source)
    grown = view_with(view, decoder=view_with(view.decoder, num_blocks=8))
    written = QWEN2.lens.put(grown, source)
    assert transformers_windows(written) == [None] * 8
    assert QWEN2.lens.get(written) == grown


def readable(source: dict) -> bool:
    return not QWEN2.lens.check_source(source)


@FAST
@given(window_sources().filter(readable), window_sources().filter(readable))
def test_put_writes_windows_transformers_runs(old: dict, new: dict) -> None:
    view = QWEN2.lens.get(new)
    written = QWEN2.lens.put(view, old)
    assert transformers_windows(written) == view_windows(view)
    assert QWEN2.lens.get(written) == view
