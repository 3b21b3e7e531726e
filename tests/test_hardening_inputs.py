"""Bad configs from issue 8 that escaped as something other than a ``LensError`` (or hung):
huge integers, deep nesting, huge layer counts, errors whose own reporting failed, broken
native configs, and a remote-code flat ``rope_theta`` that put silently replaced."""

from __future__ import annotations

import json
import math
import time

import pytest

from ckptlens.demo import tiny_llama
from ckptlens.formats import diffusion_llama, dream, llama, mixtral, mtp_llama, qwen2
from ckptlens.lenses.errors import LensError, SourceError, ViewError, Violation, quote
from ckptlens.native.checkpoint import model_from_native_config, native_config_dict
from ckptlens.native.config import FixedDecoder
from conftest import load_real_config
from hardening_support import tiny_source

LLAMA = "meta-llama__Meta-Llama-3.1-8B.json"
MIXTRAL = "mistralai__Mixtral-8x7B-v0.1.json"
HUGE = 10**400  # valid JSON; float() of it raises OverflowError


def nested(depth: int, leaf: object = 1) -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "edit",
    [
        {"rope_theta": HUGE},
        {"initializer_range": HUGE},
        {"rope_scaling": {**load_real_config(LLAMA)["rope_scaling"], "factor": HUGE}},
        {"rms_norm_eps": -HUGE},
    ],
    ids=["rope_theta", "initializer_range", "rope_scaling.factor", "rms_norm_eps"],
)
def test_a_401_digit_integer_where_a_float_is_expected_is_a_violation(edit):
    source = {**load_real_config(LLAMA), **edit}
    with pytest.raises(SourceError) as caught:
        llama.lens.get(source)
    key = next(iter(edit))
    assert any(v.path.startswith(f"$.{key}") for v in caught.value.violations)
    assert "about 401 digits" in str(caught.value)


def test_a_passthrough_value_nested_600_deep_is_refused_on_get_and_put():
    source = load_real_config(LLAMA)
    deep = {**source, "transformers_version": nested(600)}
    with pytest.raises(SourceError, match="at most 100 levels deep"):
        llama.lens.get(deep)
    with pytest.raises(ViewError, match="at most 100 levels deep"):
        llama.lens.put(llama.lens.get(source), deep)


@pytest.mark.parametrize("fmt", [llama, qwen2, mtp_llama])
@pytest.mark.parametrize("layers", [10**21, 2**53 + 1, 10**12, 100_000])
def test_huge_layer_counts_are_violations_at_once(fmt, layers):
    source = tiny_source(fmt.FORMAT.name)
    started = time.perf_counter()
    with pytest.raises(SourceError) as caught:
        fmt.lens.get({**source, "num_hidden_layers": layers})
    assert time.perf_counter() - started < 2
    assert [v.path for v in caught.value.violations] == ["$.num_hidden_layers"]
    assert "<= 10000" in caught.value.violations[0].expected


def test_a_huge_expert_count_is_a_violation():
    source = load_real_config(MIXTRAL)
    with pytest.raises(SourceError, match=r"\$\.num_local_experts"):
        mixtral.lens.get({**source, "num_local_experts": 10**12})


def test_a_view_with_a_huge_layer_count_cannot_be_built():
    block = tiny_llama().decoder.block
    for count in (2**53 + 1, 10**12):
        with pytest.raises(ValueError, match="from 1 to 10000"):
            FixedDecoder(block, count)


def test_a_huge_layer_count_in_a_native_config_is_a_violation():
    document = native_config_dict(tiny_llama())
    document["model"]["decoder"]["num_blocks"] = 10**12
    with pytest.raises(SourceError, match="num_blocks must be an integer from 1 to 10000"):
        model_from_native_config(document)


def test_repeated_violations_are_grouped_and_the_listing_is_capped():
    repeated = [
        Violation(f"decoder.{i}.mixer.query.weight", "a tensor", "none") for i in range(900)
    ]
    distinct = [Violation(f"key_{i}", "nothing", "something") for i in range(100)]
    text = str(SourceError(repeated + distinct))
    lines = text.splitlines()
    assert lines[0] == "1000 source violations"
    assert "decoder.*.mixer.query.weight (900 times: decoder.0" in lines[1]
    assert lines[-1] == "  ... and 61 more violations not listed"
    assert len(lines) < 50


def test_an_error_can_always_quote_what_it_found():
    hostile = [10**5000, nested(5000), "x" * 100_000, {"k": nested(3000)}]
    for value in hostile:
        text = quote(value)
        assert len(text) <= 120
    assert quote(10**5000) == "<an integer of about 5001 digits>"
    error = SourceError([Violation("$.x", "a number", quote(nested(5000)))])
    assert "[[[" in str(error)


def test_errors_quote_huge_and_deep_values_from_a_config():
    source = load_real_config(LLAMA)
    with pytest.raises(SourceError) as caught:
        llama.lens.get({**source, "hidden_size": 10**5000, "vocab_size": nested(5000)})
    text = str(caught.value)
    assert "about 5001 digits" in text or "levels deep" in text


def test_a_native_config_whose_model_is_a_list_is_a_violation():
    document = {**native_config_dict(tiny_llama()), "model": [1, 2]}
    with pytest.raises(SourceError, match=r"\$\.model: expected a JSON object, found \[1, 2\]"):
        model_from_native_config(document)


def test_a_native_config_with_nan_epsilon_and_infinite_theta_says_which_and_why():
    document = native_config_dict(tiny_llama())
    block = document["model"]["decoder"]["block"]
    block["normalization"]["epsilon"] = math.nan
    block["mixer"]["rotary"]["theta"] = math.inf
    with pytest.raises(SourceError) as caught:
        model_from_native_config(document)
    text = str(caught.value)
    assert "epsilon must be a finite number > 0, got nan" in text
    assert "theta must be a finite number > 0, got inf" in text
    assert "invalid value" not in text


@pytest.mark.parametrize("fmt", [mtp_llama, diffusion_llama, dream])
@pytest.mark.parametrize("flat", [{"nested": 1}, "10000", math.nan, None, 0, -5.0], ids=repr)
def test_a_remote_code_flat_rope_theta_that_is_not_a_number_is_refused(fmt, flat):
    """GetPut broke: put(get(s), s) replaced it with 10000.0, losing it."""
    source = tiny_source(fmt.FORMAT.name)
    assert "rope_parameters" in source  # the v5 spelling, with its flat rope_theta
    bad = {**source, "rope_theta": flat}
    with pytest.raises(SourceError) as caught:
        fmt.lens.get(bad)
    assert [v.path for v in caught.value.violations] == ["$.rope_theta"]


def test_every_lens_error_survives_pickling_with_its_context():
    import pickle

    error = ViewError([Violation("$.a", "b", "c")], context="qwen2 -> llama")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.context == "qwen2 -> llama"


def test_json_documents_nested_100000_deep_are_source_errors(tmp_path):
    from ckptlens.files import read_json_object

    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SourceError, match="levels deep"):
        read_json_object(path)
    path.write_text(json.dumps({"a": nested(500)}))
    with pytest.raises(SourceError, match="levels deep"):
        read_json_object(path)
    path.write_text("1" * 5000)
    with pytest.raises(SourceError, match=r"config\.json"):
        read_json_object(path)


def test_lens_errors_are_the_only_errors_on_these_inputs():
    """The same inputs as above, through every format: nothing but LensError."""
    for fmt in (llama, qwen2, mtp_llama, diffusion_llama, dream, mixtral):
        source = tiny_source(fmt.FORMAT.name)
        for key in ("rope_theta", "num_hidden_layers", "initializer_range"):
            for value in (HUGE, nested(700), 10**21, math.inf):
                try:
                    fmt.lens.get({**source, key: value})
                except LensError:
                    continue


def test_an_unknown_top_level_key_in_a_native_config_is_a_violation():
    """A stray ``num_hidden_layers`` beside ``model`` was silently ignored (found by fuzzing)."""
    document = {**native_config_dict(tiny_llama()), "num_hidden_layers": 10**12}
    with pytest.raises(SourceError, match=r"\$\.num_hidden_layers: expected a known key"):
        model_from_native_config(document)
