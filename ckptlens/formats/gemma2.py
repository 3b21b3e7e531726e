"""Gemma 2 (``Gemma2ForCausalLM``): Llama's tables with norms around both sublayers, RMSNorm
scaling by ``1 + weight``, embeddings scaled by ``sqrt(hidden_size)``, attention-logit and
final-logit soft-capping, ``query_pre_attn_scalar ** -0.5`` as the softmax scale, and layers
that alternate sliding and global attention (``gemma_layers``).

``hidden_activation`` is the MLP's activation (``Gemma2MLP`` reads only it); published configs
also carry ``hidden_act``, which transformers 5.24 stores and never reads: presentation, kept.
"""

from __future__ import annotations

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.blocks import dense_mlp, llama_block, no_mlp_biases, rms_norm
from ckptlens.formats.decoders import layer_windows
from ckptlens.formats.gemma_layers import gemma_rules
from ckptlens.formats.hf import EPSILON, generic_keys, metadata
from ckptlens.formats.llama import METADATA_DEFAULTS
from ckptlens.formats.tables import Line, Place, hf_model, rms_head
from ckptlens.lenses import InverseSqrt, Nullable, constant, field, pinned

GEMMA2_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 8192,
    "bos_token_id": 2,
    "eos_token_id": 1,
    "pad_token_id": 0,
}


def both_norms(place: Place) -> Line:
    """Gemma's placement: a norm on each sublayer's input and on its output."""
    return [
        pinned(place.path("pre_norms"), True, "input_layernorm and pre_feedforward_layernorm"),
        pinned(place.path("post_norms"), True, "post_attention/post_feedforward_layernorm"),
    ]


def query_pre_attn_scalar(mixer: str) -> Line:
    """The softmax scale is ``query_pre_attn_scalar ** -0.5``, not ``head_dim ** -0.5``."""
    return field(
        f"{mixer}.softmax_scale", "query_pre_attn_scalar", InverseSqrt(), default=256**-0.5
    )


def attention_softcap(mixer: str) -> Line:
    return field(
        f"{mixer}.logit_softcap", "attn_logit_softcapping", Nullable(EPSILON), default=50.0
    )


GEMMA_MLP = dense_mlp(
    biases=no_mlp_biases("Gemma's MLP projections have no biases"),
    activation_key="hidden_activation",
    activation_default="gelu_tanh",
)

GEMMA2_BLOCK = llama_block(
    mlp=GEMMA_MLP,
    norm_placement=both_norms,
    norm=rms_norm(unit_offset=True),
    scale=query_pre_attn_scalar,
    softcap=attention_softcap,
    defaults={
        "intermediate_size": 9216,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
    },
    # Gemma2Config types these ``int``: a null is refused, not read as Llama's default.
    not_null=("num_key_value_heads", "head_dim"),
)
GEMMA2_LAYERS = gemma_rules(layers=26, window=4096, period=2).layer_layout()

GEMMA_HEAD = rms_head(
    unit_offset=True,
    softcap=field("head.logit_softcap", "final_logit_softcapping", Nullable(EPSILON), default=30.0),
)
GEMMA_EXTRA: Line = [
    # ``hidden_act``: stored by the config class, read by no Gemma 2 module (see above).
    # ``cache_implementation``: a generation default ("hybrid") of the published configs.
    # ``sliding_window_size``: an early spelling beside ``sliding_window`` in published 9b/27b
    # configs that transformers 5.24 stores and never reads (``sliding_window`` decides).
    generic_keys("hidden_act", "cache_implementation", "sliding_window_size"),
    # Bidirectional attention is Gemma's encoder use; this format is the causal LM.
    constant("use_bidirectional_attention", None, accept=[False]),
]

tree = hf_model(
    "gemma2",
    ["Gemma2ForCausalLM"],
    decoder=layer_windows(GEMMA2_BLOCK, GEMMA2_LAYERS),
    head=GEMMA_HEAD,
    scale_embeddings=pinned("scale_embeddings", True, "embeddings times sqrt(hidden_size)"),
    metadata=metadata(GEMMA2_METADATA),
    extra=GEMMA_EXTRA,
    defaults={"vocab_size": 256000, "hidden_size": 2304, "tie_word_embeddings": True},
)
GEMMA2_WEIGHTS = hf.decoder(
    "model.layers.{i}",
    mixer=hf.attention("self_attn"),
    norm_1=hf.norm("input_layernorm"),
    post_norm_1=hf.norm("post_attention_layernorm"),
    norm_2=hf.norm("pre_feedforward_layernorm"),
    post_norm_2=hf.norm("post_feedforward_layernorm"),
)
FORMAT = declare(
    "gemma2",
    tree,
    ("Gemma2ForCausalLM",),
    weights=GEMMA2_WEIGHTS,
    peer="Gemma2Config",
    peer_model="Gemma2ForCausalLM",
)
lens = FORMAT.lens
