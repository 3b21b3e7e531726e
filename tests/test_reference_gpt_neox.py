"""LayerNorm, plain MLPs, every activation, all-bias attention and non-causal attention,
checked against transformers' GPT-NeoX (sequential residual), the one transformers model whose
block is a native block with those options.

GPT-NeoX is not a ckptlens format, so its tensors are mapped to native names here, as a test
oracle only: per head, its fused projection holds that head's query, key and value rows.
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    LayerNorm,
    Model,
)
from ckptlens.native.reference import ReferenceModel
from ckptlens.weights.ops import RotaryPermute

HEADS, HEAD_SIZE, LAYERS, VOCAB, SEQ_LEN, THETA = 4, 8, 2, 53, 24, 10_000.0
HIDDEN = HEADS * HEAD_SIZE
# Measured differences are about 3e-7 of the logit scale; exact GELU against its tanh
# approximation differs by about 1e-4, which this tolerance must still catch.
TOLERANCE = 1e-5
ACTIVATIONS = {"gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu", "silu": "silu"}


def hf_model(activation: str) -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_hidden_layers=LAYERS,
        intermediate_size=48,
        hidden_act=activation,
        rope_parameters={"rope_type": "default", "rope_theta": THETA, "partial_rotary_factor": 1.0},
        use_parallel_residual=False,
        attention_bias=True,
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)  # biases and norm weights away from 0 and 1 too
    return model


def native_model(activation: str, causal: bool) -> Model:
    mixer = Attention(
        HEADS,
        HEADS,
        HEAD_SIZE,
        DefaultRotary(THETA),
        query_bias=True,
        key_value_bias=True,
        dense_bias=True,
        causal=causal,
    )
    mlp = MLP(48, gated=False, activation=activation, layer_1_bias=True, layer_2_bias=True)
    block = Block(mixer, mlp, LayerNorm(1e-5))
    return Model(HIDDEN, VOCAB, FixedDecoder(block, LAYERS), Head(LayerNorm(1e-5)))


def to_interleaved(rows: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(RotaryPermute(HEADS, HEAD_SIZE).apply([rows.numpy()])[0])


def split_fused(fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-head ``[q; k; v]`` rows -> query, key and value rows, heads in order."""
    per_head = fused.reshape(HEADS, 3, HEAD_SIZE, *fused.shape[1:])
    query, key, value = (per_head[:, part].reshape(HIDDEN, *fused.shape[1:]) for part in range(3))
    return query, key, value


def native_tensors(model: GPTNeoXForCausalLM) -> dict[str, torch.Tensor]:
    hf = {name: tensor.detach() for name, tensor in model.state_dict().items()}
    tensors = {
        "embeddings.word.weight": hf["gpt_neox.embed_in.weight"],
        "head.output.weight": hf["lm_head.weight"],
    }
    renames = {
        "input_layernorm": "norm_1",
        "post_attention_layernorm": "norm_2",
        "attention.dense": "mixer.dense",
        "mlp.dense_h_to_4h": "mlp.layer_1",
        "mlp.dense_4h_to_h": "mlp.layer_2",
    }
    for index in range(LAYERS):
        source, target = f"gpt_neox.layers.{index}", f"decoder.{index}"
        for suffix in ("weight", "bias"):
            for old, new in renames.items():
                tensors[f"{target}.{new}.{suffix}"] = hf[f"{source}.{old}.{suffix}"]
            query, key, value = split_fused(hf[f"{source}.attention.query_key_value.{suffix}"])
            tensors[f"{target}.mixer.query.{suffix}"] = to_interleaved(query)
            tensors[f"{target}.mixer.key_value.{suffix}"] = torch.cat([to_interleaved(key), value])
    for suffix in ("weight", "bias"):
        tensors[f"head.final_norm.{suffix}"] = hf[f"gpt_neox.final_layer_norm.{suffix}"]
    return tensors


def compare(activation: str, hf_causal: bool, native_causal: bool) -> tuple[float, float]:
    """Largest logit difference between transformers and the reference, and largest logit."""
    model = hf_model(activation)
    tokens = torch.randint(0, VOCAB, (2, SEQ_LEN), generator=torch.Generator().manual_seed(1))
    # A 4-D additive mask is used as given: all zeros is full bidirectional attention.
    mask = None if hf_causal else torch.zeros(2, 1, SEQ_LEN, SEQ_LEN)
    with torch.no_grad():
        expected = model(input_ids=tokens, attention_mask=mask).logits
    native = native_model(ACTIVATIONS[activation], native_causal)
    reference = ReferenceModel.build(native, native_tensors(model))
    difference = (reference.forward(tokens)[0] - expected).abs().max()
    return float(difference), float(expected.abs().max())


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_layer_norm_plain_mlp_and_biases_match_transformers(activation: str) -> None:
    difference, scale = compare(activation, hf_causal=True, native_causal=True)
    assert difference < TOLERANCE * scale


def test_non_causal_attention_matches_transformers_with_a_full_mask() -> None:
    difference, scale = compare("gelu", hf_causal=False, native_causal=False)
    assert difference < TOLERANCE * scale
    causal_difference, _ = compare("gelu", hf_causal=False, native_causal=True)
    assert causal_difference > 1e-2 * scale  # the mask matters: a causal reference fails
