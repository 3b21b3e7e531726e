"""The Llama pilot: real configs, transformers' LlamaConfig as the peer, and the law suite."""

from __future__ import annotations

import copy
import json
import math
import warnings

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptlens import laws
from ckptlens.formats import detect, llama
from ckptlens.laws.profiles import law_examples
from ckptlens.lenses import LensError, SourceError, ViewError, same
from ckptlens.native.config import DefaultRotary, Llama3Rotary, MoE, YarnRotary
from conftest import load_real_config, real_config_names

LLAMA_CONFIGS = real_config_names("llama")


def peer(source: dict) -> dict:
    from transformers import LlamaConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LlamaConfig.from_dict(copy.deepcopy(source)).to_dict()


def test_the_shared_real_configs_are_all_read() -> None:
    shared = real_config_names("llama")
    assert len(shared) == 7
    assert set(shared) <= set(LLAMA_CONFIGS)


@pytest.mark.parametrize("name", LLAMA_CONFIGS)
def test_real_config_reads_with_exact_get_put(name: str) -> None:
    source = load_real_config(name)
    frozen = copy.deepcopy(source)
    assert detect(source) is llama.FORMAT
    view = llama.lens.get(source)
    assert same(llama.lens.put(view, source), source)  # same keys, values, types and order
    assert json.dumps(llama.lens.put(view, source)) == json.dumps(source)
    assert source == frozen


@pytest.mark.parametrize("name", LLAMA_CONFIGS)
def test_real_config_reads_as_transformers_reads_it(name: str) -> None:
    source = load_real_config(name)
    assert llama.lens.get(peer(source)) == llama.lens.get(source)


@pytest.mark.parametrize("generation", ["v5", "v4"])
@pytest.mark.parametrize("name", LLAMA_CONFIGS)
def test_create_loads_in_llama_config_and_reads_back(name: str, generation: str) -> None:
    view = llama.lens.get(load_real_config(name))
    created = llama.lens.create(view, generation=generation)
    if generation == "v5":
        assert ("rope_parameters" in created and "dtype" in created) or view.metadata.dtype is None
        assert "rope_theta" not in created and "torch_dtype" not in created
    else:
        assert "rope_theta" in created and "rope_parameters" not in created
    assert llama.lens.get(peer(created)) == view


def test_llama31_view() -> None:
    view = llama.lens.get(load_real_config("meta-llama__Meta-Llama-3.1-8B.json"))
    attention = view.decoder.block.mixer
    assert (attention.heads, attention.kv_heads, attention.head_size) == (32, 8, 128)
    assert attention.rotary == Llama3Rotary(500000.0, 8.0, 1.0, 4.0, 8192)
    assert view.metadata.context_length == 131072 and view.metadata.dtype == "bfloat16"
    smol = llama.lens.get(load_real_config("HuggingFaceTB__SmolLM2-135M.json"))
    assert smol.tied_embeddings and smol.decoder.block.mixer.rotary == DefaultRotary(100000.0)


def test_v4_and_v5_spellings_read_the_same() -> None:
    v4 = {
        "model_type": "llama",
        "rope_theta": 5e5,
        "rope_scaling": {"type": "yarn", "factor": 4.0},
        "torch_dtype": "float16",
    }
    v5 = {
        "model_type": "llama",
        "rope_parameters": {"rope_type": "yarn", "rope_theta": 5e5, "factor": 4.0},
        "dtype": "float16",
    }
    assert llama.lens.get(v4) == llama.lens.get(v5)
    rotary = llama.lens.get(v4).decoder.block.mixer.rotary
    assert rotary == YarnRotary(500000.0, 4.0, 2048)  # original length from max_position_embeddings


def test_unknown_keys_and_unsupported_rope_are_named() -> None:
    source = dict(
        load_real_config("meta-llama__Meta-Llama-3-8B.json"), sliding_window=4096, mystery={}
    )
    source["rope_scaling"] = {"rope_type": "longrope", "factor": 2.0}
    with pytest.raises(SourceError) as raised:
        llama.lens.get(source)
    text = str(raised.value)
    assert "$.sliding_window" in text and "$.mystery" in text and "longrope" in text


def test_a_view_llama_cannot_hold_is_rejected_naming_each_field() -> None:
    view = llama.lens.get(load_real_config("meta-llama__Meta-Llama-3-8B.json"))
    mixer = attrs.evolve(view.decoder.block.mixer, query_bias=True, window=128, causal=False)
    moe = MoE(experts=4, experts_per_token=2, expert=view.decoder.block.mlp)
    block = attrs.evolve(view.decoder.block, mixer=mixer, mlp=moe)
    bad = attrs.evolve(view, decoder=attrs.evolve(view.decoder, block=block))
    problems = llama.lens.check_view(bad)
    paths = [p.path for p in problems]
    assert paths == [
        "$.decoder.block.mixer.key_value_bias",
        "$.decoder.block.mixer.dense_bias",
        "$.decoder.block.mixer.causal",
        "$.decoder.block.mixer.window",
        "$.decoder.block.mlp.type",
    ]
    with pytest.raises(ViewError) as raised:
        llama.lens.create(bad)
    assert list(raised.value.violations) == problems


def test_llama_laws_at_the_ci_profile() -> None:
    report = laws.check(llama.FORMAT, profile="ci")
    assert report.ok and not report.not_run(), str(report)
    for result in report.results:
        assert result.examples >= law_examples(result.law, "ci"), str(report)
    # ModelEquiv builds at least 25 transformers models at the ci profile.
    assert next(r for r in report.results if r.law == "model_equiv").examples >= 25


# ---------------------------------------------------------------- fuzzing get


GARBAGE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.text(max_size=3),
        st.recursive(
            st.integers() | st.none(),
            lambda x: st.lists(x, max_size=2) | st.dictionaries(st.text(max_size=2), x, max_size=2),
            max_leaves=4,
        ),
        max_size=3,
    ),
)


@st.composite
def mutated_sources(draw: st.DrawFn) -> dict:
    source = copy.deepcopy(draw(laws.sources(llama.lens)))
    for _ in range(draw(st.integers(1, 4))):
        keys = list(source)
        action = draw(st.sampled_from(["retype", "drop", "add", "nan", "range", "nest"]))
        key = draw(st.sampled_from(keys)) if keys else "hidden_size"
        if action == "retype":
            source[key] = draw(GARBAGE)
        elif action == "drop":
            source.pop(key, None)
        elif action == "add":
            source[draw(st.text(min_size=1, max_size=8))] = draw(GARBAGE)
        elif action == "nan":
            source[key] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        elif action == "range":
            source[key] = draw(st.sampled_from([0, -1, 10**30, -(10**30), 1e308]))
        else:
            source[key] = {
                "rope_type": draw(GARBAGE),
                "factor": draw(GARBAGE),
                key: [draw(GARBAGE)],
            }
    return source


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(mutated_sources())
def test_fuzzed_sources_read_lawfully_or_raise_lens_error(source: dict) -> None:
    try:
        view = llama.lens.get(source)
    except LensError as error:
        assert error.violations and all(v.path.startswith("$") for v in error.violations)
        assert llama.lens.check_source(source) == list(error.violations)
        return
    assert same(llama.lens.put(view, source), source)
    assert llama.lens.get(llama.lens.create(view)) == view


VIEWS_OR_GARBAGE = st.one_of(laws.views(llama.lens), GARBAGE, st.builds(dict))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VIEWS_OR_GARBAGE, st.one_of(laws.sources(llama.lens), GARBAGE))
def test_put_and_create_raise_only_lens_errors(view: object, source: object) -> None:
    for attempt in (lambda: llama.lens.put(view, source), lambda: llama.lens.create(view)):
        try:
            attempt()
        except LensError as error:
            assert error.violations
