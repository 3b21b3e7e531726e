"""Phi-3 end to end against transformers' own ``Phi3ForCausalLM`` on the CPU: fused
``qkv_proj``/``gate_up_proj`` split into native tensors, partial rotary (the interleaving applied
to the rotated features only), LongRoPE with a sequence longer than the original context
(transformers switches to the long factors), grouped key/value heads and a sliding window.

Each feature has a sabotage that the logits catch by a wide margin.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from transformers import Phi3Config, Phi3ForCausalLM

from ckptlens.formats.phi3 import PHI3_WEIGHTS
from ckptlens.laws.model_equiv import to_native
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    FixedDecoder,
    Head,
    LongRopeRotary,
    Model,
    RMSNorm,
)
from ckptlens.native.reference import ReferenceModel
from ckptlens.weights.ops import RotaryPermute

HEADS, KV_HEADS, HIDDEN, LAYERS, VOCAB = 4, 2, 64, 2, 53
HEAD_SIZE = HIDDEN // HEADS  # Phi-3 has no head_dim key
FRACTION = 0.5  # 8 of 16 features rotate: 4 pairs
ORIGINAL, MAX_POSITIONS, WINDOW = 8, 32, 6
SHORT = [1.0, 1.3, 1.9, 2.6]
LONG = [1.5, 3.0, 7.0, 11.0]
THETA, EPSILON = 10_000.0, 1e-5
# Measured: about 5e-7 against transformers in float32; every sabotage below moves the logits
# by more than 1e-2.
TOLERANCE = 1e-4


def hf_model() -> Phi3ForCausalLM:
    config = Phi3Config(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=40,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        original_max_position_embeddings=ORIGINAL,
        rms_norm_eps=EPSILON,
        rope_scaling={"type": "longrope", "short_factor": SHORT, "long_factor": LONG},
        rope_theta=THETA,
        partial_rotary_factor=FRACTION,
        sliding_window=WINDOW,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = Phi3ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model


ROTARY = LongRopeRotary(
    THETA,
    tuple(SHORT),
    tuple(LONG),
    ORIGINAL,
    factor=MAX_POSITIONS / ORIGINAL,
    fraction=FRACTION,
)


def native_model(rotary: LongRopeRotary = ROTARY) -> Model:
    norm = RMSNorm(EPSILON)
    mixer = Attention(HEADS, KV_HEADS, HEAD_SIZE, rotary, window=WINDOW)
    block = Block(mixer, MLP(40), norm)
    return Model(HIDDEN, VOCAB, FixedDecoder(block, LAYERS), Head(norm))


@pytest.fixture(scope="module")
def converted() -> tuple[Phi3ForCausalLM, dict[str, torch.Tensor]]:
    model = hf_model()
    return model, to_native(PHI3_WEIGHTS.lens(native_model()), dict(model.state_dict()))


def _difference(model: Phi3ForCausalLM, config: Model, native: dict, length: int) -> float:
    tokens = torch.randint(0, VOCAB, (2, length), generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        expected = model(tokens).logits
        ours = ReferenceModel.build(config, native).forward(tokens)[0]
    return float((ours - expected).abs().max())


@pytest.mark.parametrize("length", [ORIGINAL - 2, ORIGINAL, ORIGINAL + 1, 3 * ORIGINAL])
def test_phi3_matches_transformers_within_and_beyond_the_original_context(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]], length: int
) -> None:
    model, native = converted
    assert _difference(model, native_model(), native, length) < TOLERANCE


def test_weights_round_trip_bit_exactly(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]],
) -> None:
    model, native = converted
    lens = PHI3_WEIGHTS.lens(native_model())
    back: dict[str, np.ndarray] = {}
    for mapping in lens.mappings:
        arrays = [native[name].numpy() for name in mapping.native]
        for name, array in zip(mapping.external, mapping.op.inverse().apply(arrays), strict=True):
            back[name] = array
    original = {name: tensor.numpy() for name, tensor in model.state_dict().items()}
    assert sorted(back) == sorted(original)
    assert all(np.array_equal(back[name], original[name]) for name in original)


LONG_LENGTH = 3 * ORIGINAL


def test_short_and_long_factors_swapped_are_caught(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]],
) -> None:
    model, native = converted
    swapped = attrs.evolve(ROTARY, short_factor=ROTARY.long_factor, long_factor=ROTARY.short_factor)
    for length in (ORIGINAL - 2, LONG_LENGTH):
        assert _difference(model, native_model(swapped), native, length) > 100 * TOLERANCE


def test_attention_factor_from_the_context_ratio_is_needed(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]],
) -> None:
    model, native = converted
    unscaled = attrs.evolve(ROTARY, factor=1.0)
    assert _difference(model, native_model(unscaled), native, LONG_LENGTH) > 100 * TOLERANCE


def test_fused_rows_split_in_the_wrong_order_are_caught(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]],
) -> None:
    model, native = converted
    swapped = dict(native)
    for name in [n for n in native if n.endswith("key_value.weight")]:
        keys, values = native[name].chunk(2, dim=0)
        swapped[name] = torch.cat((values, keys))  # value rows read as keys
    assert _difference(model, native_model(), swapped, LONG_LENGTH) > 100 * TOLERANCE
    # gate and up halves exchanged
    for name in [n for n in native if n.endswith("layer_1.weight")]:
        gate, up = native[name].chunk(2, dim=0)
        swapped = {**native, name: torch.cat((up, gate))}
    assert _difference(model, native_model(), swapped, LONG_LENGTH) > 100 * TOLERANCE


def test_partial_rotary_applied_to_the_whole_head_is_caught(
    converted: tuple[Phi3ForCausalLM, dict[str, torch.Tensor]],
) -> None:
    model, native = converted
    # the rows permuted over the whole head instead of the rotated features only
    whole = dict(native)
    hf_tensors = dict(model.state_dict())
    for i in range(LAYERS):
        qkv = hf_tensors[f"model.layers.{i}.self_attn.qkv_proj.weight"].numpy()
        query = qkv[: HEADS * HEAD_SIZE]
        whole[f"decoder.{i}.mixer.query.weight"] = torch.from_numpy(
            RotaryPermute(HEADS, HEAD_SIZE).apply([query])[0].copy()
        )
    assert _difference(model, native_model(), whole, LONG_LENGTH) > 100 * TOLERANCE
    # the whole head rotated (factors extended to every pair)
    everywhere = attrs.evolve(
        ROTARY, short_factor=tuple(SHORT * 2), long_factor=tuple(LONG * 2), fraction=1.0
    )
    assert _difference(model, native_model(everywhere), native, LONG_LENGTH) > 100 * TOLERANCE
