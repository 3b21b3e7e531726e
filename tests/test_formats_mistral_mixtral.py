"""Mistral and Mixtral: no biases, the sliding window, head_dim, the MoE and its router knobs."""

from __future__ import annotations

import warnings

import attrs
import pytest

from ckptlens import formats
from ckptlens.lenses import ViewError, same

MISTRAL = formats.get("mistral")
MIXTRAL = formats.get("mixtral")
# Mistral-NeMo: head_dim 128 although hidden_size / heads = 160.
NEMO = {
    "architectures": ["MistralForCausalLM"],
    "model_type": "mistral",
    "hidden_size": 5120,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "sliding_window": None,
    "vocab_size": 131072,
}


def peer(fmt: formats.Format, source: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fmt.canonical(source)


def test_head_dim_present_derived_or_null() -> None:
    assert MISTRAL.lens.get(NEMO).decoder.block.mixer.head_size == 128
    derived = {key: value for key, value in NEMO.items() if key != "head_dim"}
    assert MISTRAL.lens.get(derived).decoder.block.mixer.head_size == 160
    assert MISTRAL.lens.get({**NEMO, "head_dim": None}).decoder.block.mixer.head_size == 160
    for source in (NEMO, derived, {**NEMO, "head_dim": None}):
        assert MISTRAL.lens.get(peer(MISTRAL, source)) == MISTRAL.lens.get(source)
        assert same(MISTRAL.lens.put(MISTRAL.lens.get(source), source), source)


def test_sliding_window_is_the_attention_window() -> None:
    assert MISTRAL.lens.get(NEMO).decoder.block.mixer.window is None
    absent = {key: value for key, value in NEMO.items() if key != "sliding_window"}
    assert MISTRAL.lens.get(absent).decoder.block.mixer.window == 4096  # MistralConfig default
    assert MIXTRAL.lens.get({"model_type": "mixtral"}).decoder.block.mixer.window is None


def test_biases_are_refused_naming_each_field() -> None:
    view = MISTRAL.lens.get(NEMO)
    block = view.decoder.block
    biased = attrs.evolve(
        view,
        decoder=attrs.evolve(
            view.decoder,
            block=attrs.evolve(
                block,
                mixer=attrs.evolve(block.mixer, query_bias=True, dense_bias=True),
                mlp=attrs.evolve(block.mlp, layer_2_bias=True),
            ),
        ),
    )
    with pytest.raises(ViewError) as raised:
        MISTRAL.lens.create(biased)
    assert [v.path for v in raised.value.violations] == [
        "$.decoder.block.mixer.query_bias",
        "$.decoder.block.mixer.dense_bias",
        "$.decoder.block.mlp.layer_2_bias",
    ]


def test_mixtral_is_a_renormalising_top_k_mixture() -> None:
    view = MIXTRAL.lens.get({"model_type": "mixtral", "num_local_experts": 4})
    moe = view.decoder.block.mlp
    assert (moe.experts, moe.experts_per_token, moe.expert.intermediate_size) == (4, 2, 14336)
    assert moe.router.normalize_top_k is True and moe.router.bias is False
    assert view.decoder.block.mixer.rotary.theta == 1_000_000.0  # MixtralConfig.default_theta
    assert view == MIXTRAL.lens.get(
        peer(MIXTRAL, {"model_type": "mixtral", "num_local_experts": 4})
    )


def test_router_knobs_are_metadata_kept_by_put_and_create() -> None:
    source = {
        "model_type": "mixtral",
        "router_aux_loss_coef": 0.02,
        "router_jitter_noise": 0.1,
        "output_router_logits": True,
    }
    view = MIXTRAL.lens.get(source)
    knobs = (view.metadata.router_aux_loss_coef, view.metadata.router_jitter_noise)
    assert knobs == (0.02, 0.1) and view.metadata.output_router_logits is True
    created = MIXTRAL.lens.create(view)
    assert (created["router_aux_loss_coef"], created["router_jitter_noise"]) == (0.02, 0.1)
    assert MIXTRAL.lens.get(peer(MIXTRAL, created)) == view
