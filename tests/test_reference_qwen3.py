"""The per-head query/key norm (Qwen3), end to end: the native node's tensors, the HF naming
piece that converts ``q_norm``/``k_norm`` into the native interleaved order, and the reference
forward, against transformers' own ``Qwen3ForCausalLM`` on the CPU.

The tensors are named by the ``qwen3`` format's own declaration (the Llama pieces, whose
attention piece names ``q_norm``/``k_norm`` wherever the node has them).
"""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from ckptlens import formats
from ckptlens.laws.model_equiv import to_native
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    Model,
    NoRotary,
    RMSNorm,
)
from ckptlens.native.reference import ReferenceModel
from ckptlens.weights.ops import Identity

HEADS, KV_HEADS, HEAD_SIZE, HIDDEN, LAYERS, VOCAB, SEQ_LEN = 4, 2, 8, 24, 2, 41, 12
THETA, EPSILON = 10_000.0, 1e-6
# Measured: about 7e-7 against transformers; norm weights left in HF's half-split order
# move the logits by about 0.27.
TOLERANCE = 1e-4
QWEN3_WEIGHTS = formats.get("qwen3").weight_naming


def hf_model() -> Qwen3ForCausalLM:
    config = Qwen3Config(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_SIZE,
        rms_norm_eps=EPSILON,
        rope_parameters={"rope_type": "default", "rope_theta": THETA},
        tie_word_embeddings=False,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)  # norm weights away from 1, so their order matters
    return model


ROTARY = DefaultRotary(THETA)


def native_model(rotary: DefaultRotary | NoRotary = ROTARY) -> Model:
    norm = RMSNorm(EPSILON)
    mixer = Attention(HEADS, KV_HEADS, HEAD_SIZE, rotary, query_key_norm=norm)
    block = Block(mixer, MLP(32), norm)
    return Model(HIDDEN, VOCAB, FixedDecoder(block, LAYERS), Head(norm))


def test_native_tensors_and_hf_names_of_the_query_key_norm() -> None:
    model = native_model()
    tensors = dict(model.tensors())
    assert tensors["decoder.0.mixer.query_norm.weight"] == (HEAD_SIZE,)
    assert tensors["decoder.0.mixer.key_norm.weight"] == (HEAD_SIZE,)
    by_native = QWEN3_WEIGHTS.lens(model).by_native()
    assert by_native["decoder.1.mixer.key_norm.weight"].external == (
        "model.layers.1.self_attn.k_norm.weight",
    )
    without_rotary = QWEN3_WEIGHTS.lens(native_model(NoRotary())).by_native()
    assert without_rotary["decoder.0.mixer.query_norm.weight"].op == Identity()


def test_query_key_norm_matches_transformers_qwen3() -> None:
    model = hf_model()
    hf_tensors = dict(model.state_dict())
    native = to_native(QWEN3_WEIGHTS.lens(native_model()), hf_tensors)
    tokens = torch.randint(0, VOCAB, (2, SEQ_LEN), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(tokens).logits
    ours = ReferenceModel.build(native_model(), native).forward(tokens)[0]
    assert (ours - expected).abs().max() < TOLERANCE

    # The check can fail: the norm weights left in HF's half-split order are caught.
    unpermuted = dict(native)
    for name in [n for n in native if n.endswith(("query_norm.weight", "key_norm.weight"))]:
        unpermuted[name] = hf_tensors[_hf_name(name)]
    wrong = ReferenceModel.build(native_model(), unpermuted).forward(tokens)[0]
    assert (wrong - expected).abs().max() > 100 * TOLERANCE


def _hf_name(native: str) -> str:
    _, index, _, norm, _ = native.split(".")
    hf_norm = {"query_norm": "q_norm", "key_norm": "k_norm"}[norm]
    return f"model.layers.{index}.self_attn.{hf_norm}.weight"


@pytest.mark.parametrize("dtype", [torch.float64])
def test_reference_computes_in_the_callers_dtype(dtype: torch.dtype) -> None:
    model = hf_model()
    native = to_native(QWEN3_WEIGHTS.lens(native_model()), dict(model.state_dict()))
    tokens = torch.randint(0, VOCAB, (1, SEQ_LEN), generator=torch.Generator().manual_seed(2))
    single = ReferenceModel.build(native_model(), native).forward(tokens)
    double = ReferenceModel.build(native_model(), native, dtype=dtype).forward(tokens)
    assert double.dtype == dtype and single.dtype == torch.float32
    assert (double - single.to(dtype)).abs().max() < TOLERANCE
