"""The table API formats are written in: block tables, decoder lenses, the model table."""

from __future__ import annotations

import pytest

from ckptlens.formats import mistral, qwen2
from ckptlens.formats.blocks import llama_block, pin, qkv_only_biases
from ckptlens.formats.decoders import fixed_decoder, mirror_block
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.tables import Place, hf_model
from ckptlens.lenses import Mirror, Pinned, SourceError, dotted


def test_a_misspelt_block_option_fails_where_the_block_is_declared() -> None:
    with pytest.raises(TypeError, match="windwo"):
        llama_block(windwo=pin("window", None, "typo"))


def test_a_default_for_a_key_the_table_lacks_names_the_key() -> None:
    with pytest.raises(TypeError, match="num_experts"):
        llama_block(defaults={"num_experts": 8})
    with pytest.raises(TypeError, match="rope_dim"):
        hf_model(
            "llama",
            ["LlamaForCausalLM"],
            decoder=fixed_decoder(llama_block()),
            metadata=metadata(METADATA_DEFAULTS),
            extra=generic_keys(),
            defaults={"rope_dim": 64},
        )


def test_but_replaces_only_the_named_options() -> None:
    block = llama_block(biases=qkv_only_biases, head_dim_key=None)
    causal = block.but(causal=pin("causal", False, "bidirectional"))
    assert causal.options == {**block.options, "causal": causal.options["causal"]}
    views = [
        (dotted(lens.view), lens.value)
        for lens in causal.lines(Place.absolute("b"))
        if isinstance(lens, Pinned)
    ]
    assert ("b.mixer.<attention>.causal", False) in views
    assert ("b.mixer.<attention>.query_bias", True) in views


def test_mirror_block_copies_every_field_the_block_has_but_the_differing_ones() -> None:
    extra = pin("softmax_scale", None, "a field only this test's block pins")
    block = llama_block(causal=extra)  # any pinned sub-piece: it must be mirrored too
    place = Place("blocks.full", "decoder.<pattern>.blocks.full")
    lines = block.lines(place)
    copies = mirror_block("blocks.other", place, lines, ["mixer.<attention>.window"], "as full")
    mirrored = {dotted(lens.view) for lens in copies if isinstance(lens, Mirror)}
    assert "blocks.other.mlp" in mirrored and "blocks.other.normalization" in mirrored
    assert "blocks.other.mixer.<attention>.heads" in mirrored
    assert "blocks.other.mixer.<attention>.rotary" in mirrored
    assert not any("window" in path for path in mirrored)
    assert [dotted(lens.view) for lens in copies if isinstance(lens, Pinned)] == [
        "blocks.other.mixer.type"
    ]


def test_the_pattern_blocks_of_qwen2_differ_only_in_the_window() -> None:
    source = {
        "model_type": "qwen2",
        "num_hidden_layers": 3,
        "use_sliding_window": True,
        "sliding_window": 64,
        "max_window_layers": 1,
    }
    blocks = qwen2.lens.get(source).decoder.blocks
    assert blocks["sliding"].mixer.window == 64 and blocks["full"].mixer.window is None
    full, sliding = blocks["full"], blocks["sliding"]
    assert full.mlp == sliding.mlp and full.normalization == sliding.normalization
    assert (full.mixer.heads, full.mixer.rotary) == (sliding.mixer.heads, sliding.mixer.rotary)


def test_errors_name_the_format_module_not_the_shared_builders() -> None:
    with pytest.raises(SourceError) as error:
        mistral.lens.get({"model_type": "mistral", "sliding_window": -1})
    assert "formats/mistral.py:" in str(error.value)
