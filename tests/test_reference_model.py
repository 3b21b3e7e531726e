"""The reference model's parts: masks, routing, multi-token prediction, tensor checks."""

from __future__ import annotations

import attrs
import pytest
import torch
from transformers import MixtralConfig, Qwen3MoeConfig
from transformers.masking_utils import causal_mask_function, sliding_window_causal_mask_function
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock
from transformers.models.qwen3_moe.modeling_qwen3_moe import Qwen3MoeSparseMoeBlock

from ckptlens.lenses.errors import SourceError
from ckptlens.native import names
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
    RMSNorm,
    Router,
)
from ckptlens.native.reference import ReferenceModel, attention_allowed, moe_forward

HIDDEN, VOCAB, SEQ_LEN = 16, 31, 10


def tiny_model(
    mixer: Attention | None = None,
    mlp: MLP | MoE | None = None,
    blocks: int = 1,
    prediction_heads: int = 1,
    tied: bool = False,
) -> Model:
    block = Block(
        mixer=mixer or Attention(heads=4, kv_heads=2, head_size=4, rotary=DefaultRotary(100.0)),
        mlp=mlp or MLP(intermediate_size=24),
        normalization=RMSNorm(1e-5),
    )
    return Model(
        hidden_size=HIDDEN,
        vocab_size=VOCAB,
        decoder=FixedDecoder(block, blocks),
        head=Head(RMSNorm(1e-5), prediction_heads=prediction_heads),
        tied_embeddings=tied,
    )


def random_tensors(model: Model, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor ``model`` needs, random (biases and norm weights too, so they all matter)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(shape, generator=generator) * 0.5
        for name, shape in names.model_tensors(model).items()
    }


def logits(model: Model, tensors: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    return ReferenceModel.build(model, tensors).forward(tokens)


def tokens(seed: int = 0, batch: int = 2) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, SEQ_LEN), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("window", [None, 1, 3, 20])
def test_causal_mask_matches_transformers(window: int | None) -> None:
    query, key = torch.arange(SEQ_LEN)[:, None], torch.arange(SEQ_LEN)[None, :]
    theirs = causal_mask_function if window is None else sliding_window_causal_mask_function(window)
    expected = theirs(0, 0, query, key).expand(SEQ_LEN, SEQ_LEN)
    assert torch.equal(attention_allowed(SEQ_LEN, causal=True, window=window), expected)


def changed_positions(model: Model, position: int) -> torch.Tensor:
    """Which output positions change when only the token at ``position`` changes."""
    tensors = random_tensors(model)
    before = tokens()
    after = before.clone()
    after[:, position] = (after[:, position] + 1) % VOCAB
    difference = (logits(model, tensors, before) - logits(model, tensors, after)).abs()
    return difference.amax(dim=(0, 1, 3)) > 0


def test_causal_attention_never_reads_the_future() -> None:
    changed = changed_positions(tiny_model(), position=5)
    assert not changed[:5].any() and changed[5:].all()


def test_non_causal_attention_reads_both_ways() -> None:
    mixer = Attention(heads=2, kv_heads=2, head_size=8, rotary=NoRotary(), causal=False)
    assert changed_positions(tiny_model(mixer), position=5).all()


def test_sliding_window_sees_itself_and_window_minus_one_tokens_back() -> None:
    window = 3
    mixer = Attention(heads=2, kv_heads=1, head_size=8, rotary=DefaultRotary(10.0), window=window)
    changed = changed_positions(tiny_model(mixer), position=2)  # one block: no indirect paths
    expected = torch.zeros(SEQ_LEN, dtype=torch.bool)
    expected[2 : 2 + window] = True
    assert torch.equal(changed, expected)


# ---------------------------------------------------------------- mixture of experts


def hf_moe_block(normalize_top_k: bool) -> torch.nn.Module:
    sizes = {"hidden_size": HIDDEN, "num_experts_per_tok": 2}
    if normalize_top_k:  # Mixtral always renormalises; Qwen3-MoE lets the config choose
        return MixtralSparseMoeBlock(
            MixtralConfig(num_local_experts=4, intermediate_size=12, **sizes)
        )
    config = Qwen3MoeConfig(num_experts=4, moe_intermediate_size=12, norm_topk_prob=False, **sizes)
    return Qwen3MoeSparseMoeBlock(config)


@pytest.mark.parametrize("normalize_top_k", [True, False])
def test_moe_routing_matches_transformers(normalize_top_k: bool) -> None:
    torch.manual_seed(0)
    block = hf_moe_block(normalize_top_k).eval()
    for parameter in block.parameters():
        torch.nn.init.normal_(parameter, std=0.5)
    # transformers 5 keeps experts stacked in memory like the native layout: gate rows, then up.
    native = {
        "mlp.router.weight": block.gate.weight.detach(),
        "mlp.experts.layer_1.weight": block.experts.gate_up_proj.detach(),
        "mlp.experts.layer_2.weight": block.experts.down_proj.detach(),
    }
    moe = MoE(4, 2, MLP(12), Router(normalize_top_k=normalize_top_k))
    x = torch.randn(2, SEQ_LEN, HIDDEN)
    with torch.no_grad():
        expected = block(x)
    torch.testing.assert_close(moe_forward(x, moe, native, "mlp"), expected)


def test_shared_expert_is_added_to_the_routed_experts() -> None:
    moe = MoE(4, 1, MLP(8), shared_expert=MLP(8, gated=False, activation="gelu"))
    model = tiny_model(mlp=moe)
    tensors = random_tensors(model)
    without_shared = {**tensors, "decoder.0.mlp.shared.layer_2.weight": torch.zeros(HIDDEN, 8)}
    assert not torch.equal(
        logits(model, tensors, tokens()), logits(model, without_shared, tokens())
    )


# ---------------------------------------------------------------- heads


def test_prediction_heads_are_the_last_block_copied_onto_the_trunk() -> None:
    """Head k of a 2-head model is a plain model whose last block and final norm are head k's."""
    heads = tiny_model(blocks=3, prediction_heads=2)
    plain = attrs.evolve(heads, head=Head(RMSNorm(1e-5)))
    tensors = random_tensors(heads)
    prediction = {name for name in tensors if name.startswith("head.prediction.")}
    head_0 = {name: tensors[name] for name in tensors.keys() - prediction}
    head_1 = {**head_0}
    for name in prediction:
        plain_name = name.replace("head.prediction.1.block", "decoder.2").replace(
            "head.prediction.1.final_norm", names.FINAL_NORM
        )
        head_1[plain_name] = tensors[name]
    both = logits(heads, tensors, tokens())
    assert both.shape == (2, 2, SEQ_LEN, VOCAB)
    torch.testing.assert_close(both[0], logits(plain, head_0, tokens())[0])
    torch.testing.assert_close(both[1], logits(plain, head_1, tokens())[0])


def test_tied_embeddings_project_with_the_embedding_matrix() -> None:
    untied = tiny_model()
    tensors = random_tensors(untied)
    tied_tensors = {name: t for name, t in tensors.items() if name != names.OUTPUT}
    same_output = {**tensors, names.OUTPUT: tensors[names.EMBEDDINGS]}
    tied = attrs.evolve(untied, tied_embeddings=True)
    torch.testing.assert_close(
        logits(tied, tied_tensors, tokens()), logits(untied, same_output, tokens())
    )


def test_layer_norm_bias_and_plain_mlp_biases_are_used() -> None:
    mlp = MLP(24, gated=False, activation="gelu_tanh", layer_1_bias=True, layer_2_bias=True)
    model = attrs.evolve(
        tiny_model(mlp=mlp),
        head=Head(LayerNorm(1e-5)),
    )
    tensors = random_tensors(model)
    reference = logits(model, tensors, tokens())
    for name in (
        "decoder.0.mlp.layer_1.bias",
        "decoder.0.mlp.layer_2.bias",
        "head.final_norm.bias",
    ):
        zeroed = {**tensors, name: torch.zeros_like(tensors[name])}
        assert not torch.allclose(reference, logits(model, zeroed, tokens())), name


# ---------------------------------------------------------------- tensor checks


def test_every_tensor_problem_is_reported_at_once() -> None:
    model = tiny_model()
    tensors = random_tensors(model)
    del tensors["decoder.0.norm_1.weight"]
    tensors["decoder.0.mixer.dense.weight"] = torch.zeros(HIDDEN, HIDDEN + 1)
    tensors["decoder.0.stray.weight"] = torch.zeros(1)
    with pytest.raises(SourceError) as raised:
        ReferenceModel.build(model, tensors)
    paths = {violation.path for violation in raised.value.violations}
    assert paths == {
        "$['decoder.0.norm_1.weight']",
        "$['decoder.0.mixer.dense.weight']",
        "$['decoder.0.stray.weight']",
    }
