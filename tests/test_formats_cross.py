"""Conversion between formats through the native view: every ordered pair either converts and
reads back to the same view, or raises exactly the violations ``check_view`` predicts."""

from __future__ import annotations

import warnings

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ckptlens import formats
from ckptlens.laws.strategies import views
from ckptlens.lenses import ViewError
from conftest import load_real_config

NAMES = sorted(formats.FORMATS)
MATRIX = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def convert_or_explain(view, target: formats.Format) -> None:
    predicted = target.lens.check_view(view)
    if not predicted:
        for generation in ("v5", "v4"):
            created = target.lens.create(view, generation=generation)
            assert target.lens.get(created) == view
            if target.peer is not None:  # transformers loads it and means the same
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    assert target.lens.get(target.canonical(created)) == view
        return
    with pytest.raises(ViewError) as raised:
        target.lens.create(view)
    assert list(raised.value.violations) == predicted


@pytest.mark.parametrize("source_name", NAMES)
def test_every_ordered_pair(source_name: str) -> None:
    source = formats.get(source_name)

    @MATRIX
    @given(views(source.lens), st.sampled_from(NAMES))
    def each(view, target_name: str) -> None:
        convert_or_explain(view, formats.get(target_name))

    each()


def real(name: str) -> dict:
    return load_real_config(name)


def violations(view, target: str) -> dict[str, str]:
    return {v.path: v.expected for v in formats.get(target).lens.check_view(view)}


def test_qwen2_biases_do_not_fit_llama_or_mistral() -> None:
    view = formats.get("qwen2").lens.get(real("Qwen__Qwen2.5-0.5B.json"))
    into_llama = violations(view, "llama")
    assert "$.decoder.block.mixer.dense_bias" in into_llama  # attention_bias sets all three
    into_mistral = violations(view, "mistral")
    assert {"$.decoder.block.mixer.query_bias", "$.decoder.block.mixer.key_value_bias"} <= set(
        into_mistral
    )


def test_moe_and_window_do_not_fit_llama() -> None:
    mixtral = formats.get("mixtral").lens.get(real("mistralai__Mixtral-8x7B-v0.1.json"))
    assert "$.decoder.block.mlp.type" in violations(mixtral, "llama")
    mistral = formats.get("mistral").lens.get(real("mistralai__Mistral-7B-v0.1.json"))
    assert "$.decoder.block.mixer.window" in violations(mistral, "llama")


def test_causal_models_do_not_become_diffusion_models() -> None:
    llama = formats.get("llama").lens.get(real("meta-llama__Llama-2-7b-hf.json"))
    assert "$.decoder.block.mixer.causal" in violations(llama, "diffusion_llama")
    qwen = formats.get("qwen2").lens.get(real("Qwen__Qwen2.5-0.5B.json"))
    assert "$.decoder.block.mixer.causal" in violations(qwen, "dream")


def test_metadata_survives_where_the_target_holds_it() -> None:
    view = formats.get("llama").lens.get(real("meta-llama__Llama-3.2-1B-Instruct.json"))
    for target in ("mistral", "mtp_llama"):
        fmt = formats.get(target)
        back = fmt.lens.get(fmt.lens.create(view))
        assert back.metadata == view.metadata
        assert back.metadata.eos_token_id == (128001, 128008, 128009)
        assert back.metadata.context_length == 131072


def test_router_knobs_are_refused_rather_than_dropped() -> None:
    mixtral = formats.get("mixtral").lens.get(real("mistralai__Mixtral-8x7B-v0.1.json"))
    assert mixtral.metadata.router_aux_loss_coef == 0.02
    assert "$.metadata.router_aux_loss_coef" in violations(mixtral, "mistral")
    dense = attrs.evolve(
        mixtral, metadata=attrs.evolve(mixtral.metadata, router_aux_loss_coef=None)
    )
    assert "$.metadata.router_aux_loss_coef" not in violations(dense, "mistral")


def test_the_mask_token_is_refused_by_formats_without_one() -> None:
    view = formats.get("diffusion_llama").lens.get({"model_type": "diffusion_llama"})
    assert view.metadata.mask_token_id == 131072
    causal = attrs.evolve(view, decoder=_causal(view.decoder))
    assert set(violations(causal, "llama")) == {"$.metadata.mask_token_id"}
    back = formats.get("diffusion_llama").lens.get(formats.get("diffusion_llama").lens.create(view))
    assert back.metadata == view.metadata


def _causal(decoder):
    block = decoder.block
    return attrs.evolve(
        decoder, block=attrs.evolve(block, mixer=attrs.evolve(block.mixer, causal=True))
    )


def test_gemma2_and_llama_refuse_each_others_features() -> None:
    gemma = formats.get("gemma2").lens.get(real("google__gemma-2-2b.json"))
    into_llama = set(violations(gemma, "llama"))
    pattern = "$.decoder.blocks"
    assert "$.decoder.type" in into_llama  # alternating sliding/global layers
    gemma_only = {
        "$.scale_embeddings",
        "$.head.logit_softcap",
        "$.head.final_norm.unit_offset",
    }
    assert gemma_only <= into_llama, into_llama
    llama = formats.get("llama").lens.get(real("meta-llama__Llama-2-7b-hf.json"))
    into_gemma = violations(llama, "gemma2")
    # No final soft-cap is a Gemma 2 view too (``final_logit_softcapping: null``).
    assert gemma_only - {"$.head.logit_softcap"} <= set(into_gemma), into_gemma
    for field in ("post_norms", "normalization.unit_offset", "mixer.softmax_scale"):
        assert f"$.decoder.block.{field}" in into_gemma, (field, into_gemma)
    assert not any(path.startswith(pattern) for path in into_llama)
