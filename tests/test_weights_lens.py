"""The Llama-family weight lenses: names and shapes from the format facts, bit-exact round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ckptlens.formats import get
from ckptlens.formats.hf_weights import FUSED, PER_EXPERT
from ckptlens.lenses.errors import DefinitionError, ViewError
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    DefaultRotary,
    FixedDecoder,
    Head,
    LayerNorm,
    Model,
    MoE,
    NoRotary,
    PatternDecoder,
    RMSNorm,
)
from ckptlens.native.names import model_tensors
from ckptlens.weights.lens import TensorMapping, WeightLens, native_weights
from ckptlens.weights.ops import Concat, Identity
from test_weights_support import LLAMA_FAMILY

llama_family_weights = LLAMA_FAMILY.lens
MTP_WEIGHTS = get("mtp_llama").weight_naming


@st.composite
def models(draw, moe: bool | None = None, prediction_heads: int = 1) -> Model:
    kv_heads = draw(st.integers(1, 3))
    heads = kv_heads * draw(st.integers(1, 3))
    head_size = 2 * draw(st.integers(1, 3))
    hidden = draw(st.integers(2, 12))
    bias = draw(st.booleans())
    attention = Attention(
        heads,
        kv_heads,
        head_size,
        draw(st.sampled_from([DefaultRotary(10000.0), NoRotary()])),
        query_bias=bias,
        key_value_bias=bias,
        dense_bias=draw(st.booleans()) and bias,
    )
    mlp = MLP(
        draw(st.integers(1, 9)), layer_1_bias=draw(st.booleans()), layer_2_bias=draw(st.booleans())
    )
    if moe if moe is not None else draw(st.booleans()):
        experts = draw(st.integers(1, 4))
        mlp = MoE(experts, draw(st.integers(1, experts)), MLP(draw(st.integers(1, 9))))
    block = Block(attention, mlp, RMSNorm(1e-5))
    decoder = FixedDecoder(block, draw(st.integers(1, 3)))
    return Model(
        hidden,
        draw(st.integers(1, 20)),
        decoder,
        Head(RMSNorm(1e-5), prediction_heads),
        draw(st.booleans()),
    )


def hf_shapes(model: Model, moe_layout: str = PER_EXPERT) -> dict[str, tuple[int, ...]]:
    """The HF names and shapes as the format facts tabulate them (an independent oracle)."""
    block = model.decoder.blocks_in_order[0]
    a, hidden = block.mixer, model.hidden_size
    q, kv = a.heads * a.head_size, a.kv_heads * a.head_size
    shapes = {
        "model.embed_tokens.weight": (model.vocab_size, hidden),
        "model.norm.weight": (hidden,),
    }
    for i in range(model.decoder.num_blocks):
        p = f"model.layers.{i}"
        shapes |= {
            f"{p}.input_layernorm.weight": (hidden,),
            f"{p}.post_attention_layernorm.weight": (hidden,),
        }
        shapes |= {
            f"{p}.self_attn.q_proj.weight": (q, hidden),
            f"{p}.self_attn.o_proj.weight": (hidden, q),
        }
        shapes |= {
            f"{p}.self_attn.k_proj.weight": (kv, hidden),
            f"{p}.self_attn.v_proj.weight": (kv, hidden),
        }
        if a.query_bias:
            shapes |= {f"{p}.self_attn.q_proj.bias": (q,)}
        if a.key_value_bias:
            shapes |= {f"{p}.self_attn.k_proj.bias": (kv,), f"{p}.self_attn.v_proj.bias": (kv,)}
        if a.dense_bias:
            shapes |= {f"{p}.self_attn.o_proj.bias": (hidden,)}
        shapes |= _mlp_shapes(p, block.mlp, hidden, moe_layout)
    if not model.tied_embeddings:
        shapes["lm_head.weight"] = (model.vocab_size, hidden)
    return shapes


def _mlp_shapes(p: str, mlp: MLP | MoE, hidden: int, moe_layout: str) -> dict[str, tuple[int, ...]]:
    if isinstance(mlp, MoE):
        e, i = mlp.experts, mlp.expert.intermediate_size
        if moe_layout == FUSED:
            return {
                f"{p}.mlp.gate.weight": (e, hidden),
                f"{p}.mlp.experts.gate_up_proj": (e, 2 * i, hidden),
                f"{p}.mlp.experts.down_proj": (e, hidden, i),
            }
        shapes = {f"{p}.block_sparse_moe.gate.weight": (e, hidden)}
        for j in range(e):
            x = f"{p}.block_sparse_moe.experts.{j}"
            shapes |= {
                f"{x}.w1.weight": (i, hidden),
                f"{x}.w3.weight": (i, hidden),
                f"{x}.w2.weight": (hidden, i),
            }
        return shapes
    i = mlp.intermediate_size
    shapes = {f"{p}.mlp.{n}_proj.weight": (i, hidden) for n in ("gate", "up")}
    shapes[f"{p}.mlp.down_proj.weight"] = (hidden, i)
    if mlp.layer_1_bias:
        shapes |= {f"{p}.mlp.gate_proj.bias": (i,), f"{p}.mlp.up_proj.bias": (i,)}
    if mlp.layer_2_bias:
        shapes[f"{p}.mlp.down_proj.bias"] = (hidden,)
    return shapes


def round_trip_every_mapping(lens: WeightLens, seed: int) -> None:
    """external -> native -> external, bit-exact, for random data of the declared shapes."""
    rng = np.random.default_rng(seed)
    external, native = lens.external_shapes(), lens.native_shapes()
    for mapping in lens.mappings:
        arrays = [
            rng.integers(0, 2**16, size=external[n], dtype=np.uint16) for n in mapping.external
        ]
        produced = mapping.op.apply(arrays)
        assert [a.shape for a in produced] == [native[n] for n in mapping.native]
        back = mapping.op.inverse().apply(produced)
        assert all(np.array_equal(x, y) for x, y in zip(arrays, back, strict=True))


@settings(max_examples=60, deadline=None)
@given(model=models(), layout=st.sampled_from([PER_EXPERT, FUSED]), seed=st.integers(0, 1000))
def test_hf_names_shapes_and_round_trip(model, layout, seed):
    lens = llama_family_weights(model, moe_layout=layout)
    assert lens.external_shapes() == hf_shapes(model, layout)
    assert set(lens.native_shapes()) == {n for m in lens.mappings for n in m.native}
    round_trip_every_mapping(lens, seed)


@settings(max_examples=20, deadline=None)
@given(model=models(moe=False, prediction_heads=3), seed=st.integers(0, 1000))
def test_mtp_names(model, seed):
    lens = get("mtp_llama").weights(model)
    names = set(lens.external_shapes())
    assert "model.norm.weight" not in names
    assert {
        "model.mtp_norms.0.weight",
        "model.mtp_norms.1.weight",
        "model.mtp_norms.2.weight",
    } <= names
    assert "model.mtp_heads.1.self_attn.q_proj.weight" in names
    assert "model.mtp_heads.2.self_attn.q_proj.weight" not in names
    by_native = lens.by_native()
    assert by_native["head.prediction.1.final_norm.weight"].external == (
        "model.mtp_norms.1.weight",
    )
    assert by_native["head.prediction.2.block.mixer.dense.weight"].external == (
        "model.mtp_heads.1.self_attn.o_proj.weight",
    )
    round_trip_every_mapping(lens, seed)


def test_unrepresentable_features_are_all_listed():
    expert = MLP(4, gated=False, layer_1_bias=True)
    block = Block(
        Attention(2, 1, 4, DefaultRotary(1e4)),
        MoE(2, 1, expert, shared_expert=MLP(3)),
        RMSNorm(1e-5),
    )
    model = Model(8, 10, FixedDecoder(block, 1), Head(RMSNorm(1e-5), 2))
    with pytest.raises(ViewError) as caught:
        llama_family_weights(model, moe_layout="sideways")
    paths = {v.path for v in caught.value.violations}
    assert paths == {
        "$.moe_layout",
        "$.head.prediction_heads",
        "$.decoder.blocks[0].mlp.shared_expert",
        "$.decoder.blocks[0].mlp.expert",
        "$.decoder.blocks[0].mlp.expert.gated",
    }


def test_pattern_decoder_and_layer_norm_follow_each_block():
    small = Block(Attention(2, 2, 2, NoRotary()), MLP(3), LayerNorm(1e-5))
    large = Block(Attention(4, 2, 2, DefaultRotary(1e4)), MLP(5), RMSNorm(1e-5))
    decoder = PatternDecoder({"s": small, "l": large}, ("l", "s", "l"))
    model = Model(4, 6, decoder, Head(RMSNorm(1e-5)), tied_embeddings=True)
    shapes = llama_family_weights(model).external_shapes()
    assert shapes["model.layers.1.mlp.up_proj.weight"] == (3, 4)
    assert shapes["model.layers.2.mlp.up_proj.weight"] == (5, 4)
    assert "model.layers.1.input_layernorm.bias" in shapes
    assert "model.layers.0.input_layernorm.bias" not in shapes
    assert "lm_head.weight" not in shapes
    assert llama_family_weights(model).by_native()["decoder.1.mixer.query.weight"].op == Identity()


def test_mtp_naming_model_tensors_agree():
    block = Block(Attention(2, 1, 4, DefaultRotary(1e4)), MLP(3), RMSNorm(1e-5))
    model = Model(8, 10, FixedDecoder(block, 2), Head(RMSNorm(1e-5), 2))
    lens = MTP_WEIGHTS.lens(model)
    assert set(lens.native_shapes()) == set(model_tensors(model))


def test_weight_lens_rejects_incomplete_or_duplicate_coverage():
    block = Block(Attention(2, 1, 4, NoRotary()), MLP(3), RMSNorm(1e-5))
    model = Model(8, 10, FixedDecoder(block, 1), Head(RMSNorm(1e-5)), tied_embeddings=True)
    mappings = list(native_weights(model).mappings)
    with pytest.raises(DefinitionError, match="no mapping produces it"):
        WeightLens("broken", model, mappings[1:])
    with pytest.raises(DefinitionError, match="produced 2 times"):
        WeightLens("broken", model, [*mappings, TensorMapping(("x",), (mappings[0].native[0],))])
    with pytest.raises(DefinitionError, match="arity"):
        TensorMapping(("a",), ("b",), Concat(0, (1, 1)))


def test_detect_moe_layout():
    detect = get("mixtral").weight_options
    per_expert = detect(["model.layers.0.block_sparse_moe.experts.0.w1.weight"])
    assert per_expert["moe_layout"] == PER_EXPERT
    assert detect(["model.layers.0.mlp.experts.gate_up_proj"])["moe_layout"] == FUSED
    assert "moe_layout" not in detect(["model.layers.0.mlp.up_proj.weight"])
