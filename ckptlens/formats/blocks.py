"""Block tables of the Llama family: attention, the dense and mixture-of-experts feed-forward,
and ``llama_block``, whose keyword parameters are what formats of the family change.

A parameter is a piece: a function from where the node sits to its lines. The ``SubPiece``
parameters of ``llama_block`` take the attention node's view path (``…mixer.<attention>``) or
the MLP node's, so a format writes ``window=sliding_window(4096)`` without knowing where the
decoder puts the block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ckptlens.formats.hf import ACTIVATION, COUNT, POSITIVE
from ckptlens.formats.rope import rope
from ckptlens.formats.tables import (
    FINAL_EPSILON,
    Block,
    Line,
    Piece,
    Place,
    flat,
    norm_scale_reason,
)
from ckptlens.lenses import (
    Bool,
    Lens,
    Nullable,
    ViewRule,
    constraint,
    derived,
    field,
    pinned,
    table_builder,
    tag,
)
from ckptlens.native.config import Router
from ckptlens.native.nodes.attention import PER_HEAD

# Lenses built here report the site of the format that called the builder.
table_builder(__file__)

SubPiece = Callable[[str], Line]
"""Lines for one part of a node, given the node's view path."""

ATTENTION = "mixer.<attention>"


def pin(name: str, value: Any, reason: str) -> SubPiece:
    """The node field ``name`` is always ``value`` in this format (``reason`` says why)."""
    return lambda node: pinned(f"{node}.{name}", value, reason)


def nothing(node: str) -> Line:
    """No lines: another lens (a decoder's layout) owns this part."""
    return []


# ---------------------------------------------------------------- attention


def kv_heads_default(block: str) -> ViewRule:
    """``num_key_value_heads`` defaults to the query heads of the block at ``block``."""
    heads = f"{block}.{ATTENTION}.heads"
    return ViewRule(lambda view: view(heads), [heads], "num_attention_heads")


def head_size_default(block: str) -> ViewRule:
    """``head_dim`` defaults to ``hidden_size // num_attention_heads``."""
    heads = f"{block}.{ATTENTION}.heads"
    return ViewRule(
        lambda view: view("hidden_size") // view(heads),
        ["hidden_size", heads],
        "hidden_size // num_attention_heads",
    )


def heads_divide_hidden(block: str) -> Line:
    """transformers refuses a config whose heads do not divide ``hidden_size``, even with an
    explicit ``head_dim``; so what this format writes must keep to that."""
    heads = f"{block}.{ATTENTION}.heads"
    return constraint(
        lambda view: view("hidden_size") % view(heads) == 0,
        ["hidden_size", heads],
        "hidden_size divisible by num_attention_heads",
    )


def head_size(place: Place, key: str | None) -> Line:
    """The head size from ``key`` (default ``hidden_size // heads``), or always that when the
    format has no key (Qwen2's modeling code computes it)."""
    view, rule = place.path(f"{ATTENTION}.head_size"), head_size_default(place.reads)
    if key is None:
        return derived(view, rule.compute, list(rule.reads), rule.text)
    return field(view, key, POSITIVE, default=rule, null_means_default=True)


def attention_bias_key(mixer: str) -> Line:
    """One key, ``attention_bias``, for the q/k/v and output projections."""
    views = [f"{mixer}.{name}" for name in ("query_bias", "key_value_bias", "dense_bias")]
    return field(views, "attention_bias", Bool(), default=False)


def no_attention_biases(mixer: str) -> Line:
    """Every projection is built with ``bias=False`` and no key says otherwise."""
    return [
        pinned(f"{mixer}.{name}", False, "no attention biases in this format")
        for name in ("query_bias", "key_value_bias", "dense_bias")
    ]


def qkv_only_biases(mixer: str) -> Line:
    """q/k/v projections always have biases, the output projection never (hard-wired)."""
    return [
        pinned(f"{mixer}.query_bias", True, "q_proj always has a bias"),
        pinned(f"{mixer}.key_value_bias", True, "k_proj and v_proj always have biases"),
        pinned(f"{mixer}.dense_bias", False, "o_proj never has a bias"),
    ]


CAUSAL = pin("causal", True, "causal language model")
NO_WINDOW = pin("window", None, "no sliding window")


def no_query_key_norm(mixer: str) -> Line:
    """No norm on queries and keys (the scope is then ``head``, the schema's one spelling)."""
    return [
        pinned(f"{mixer}.query_key_norm", None, "no q/k norm"),
        pinned(f"{mixer}.query_key_norm_scope", PER_HEAD, "no q/k norm"),
    ]


NO_QUERY_KEY_NORM = no_query_key_norm


def query_key_rms_norm(scope: str, reason: str) -> SubPiece:
    """An RMSNorm on queries and on keys (``q_norm``/``k_norm``) over ``scope`` (``head``:
    Qwen3; ``projection``: OLMo 2), whose epsilon is the model's one epsilon key (read from
    the final norm, which that key sets). Reused by every format with this norm."""

    def lines(mixer: str) -> Line:
        return [
            derived(
                f"{mixer}.query_key_norm",
                lambda view: {
                    "type": "rms_norm",
                    "epsilon": view(FINAL_EPSILON),
                    "unit_offset": False,
                },
                [FINAL_EPSILON],
                "an RMSNorm with rms_norm_eps",
            ),
            pinned(f"{mixer}.query_key_norm_scope", scope, reason),
        ]

    return lines


PER_HEAD_QUERY_KEY_NORM = query_key_rms_norm(PER_HEAD, "q_norm and k_norm are head_dim wide")
"""Qwen3's q/k norm (``Qwen3RMSNorm(head_dim)``), also Qwen3-MoE's."""
NO_SOFTCAP = pin("logit_softcap", None, "no attention logit soft-capping")
HEAD_DIM_SCALE = pin("softmax_scale", None, "scale is head_dim ** -0.5")


def sliding_window(default: int | None, key: str = "sliding_window") -> SubPiece:
    """``key`` is every layer's attention window; ``null`` means full attention."""
    return lambda mixer: field(f"{mixer}.window", key, Nullable(POSITIVE), default=default)


def attention_lines(
    place: Place,
    *,
    biases: SubPiece = attention_bias_key,
    head_dim_key: str | None = "head_dim",
    causal: SubPiece = CAUSAL,
    window: SubPiece = NO_WINDOW,
    rotary: SubPiece = rope,
    query_key_norm: SubPiece = NO_QUERY_KEY_NORM,
    scale: SubPiece = HEAD_DIM_SCALE,
    softcap: SubPiece = NO_SOFTCAP,
) -> list[Lens]:
    """Llama's grouped-query attention as the block at ``place``'s mixer; ``rotary`` gets the
    view path of the rotary field."""
    mixer = place.path(ATTENTION)
    return flat(
        tag(place.path("mixer"), "attention"),
        field(f"{mixer}.heads", "num_attention_heads", POSITIVE, default=32),
        heads_divide_hidden(place.reads),
        field(
            f"{mixer}.kv_heads",
            "num_key_value_heads",
            POSITIVE,
            default=kv_heads_default(place.reads),
            null_means_default=True,
        ),
        head_size(place, head_dim_key),
        biases(mixer),
        causal(mixer),
        window(mixer),
        scale(mixer),
        softcap(mixer),
        query_key_norm(mixer),
        rotary(f"{mixer}.rotary"),
    )


# ---------------------------------------------------------------- feed-forward


def mlp_bias_key(mlp: str) -> Line:
    return field([f"{mlp}.layer_1_bias", f"{mlp}.layer_2_bias"], "mlp_bias", Bool(), default=False)


def no_mlp_biases(reason: str = "no MLP biases in this format") -> SubPiece:
    """For formats whose MLP projections are built with ``bias=False`` and no key says so."""
    return lambda mlp: [
        pinned(f"{mlp}.{name}", False, reason) for name in ("layer_1_bias", "layer_2_bias")
    ]


def dense_mlp(
    *,
    at: str = "mlp",
    biases: SubPiece = mlp_bias_key,
    gated: str = "gate_proj is always there",
    activation_key: str = "hidden_act",
    activation_default: str = "silu",
) -> Piece:
    """The gated MLP at node ``at`` of the block (``expert`` inside a mixture); its activation
    is read from ``activation_key``."""

    def lines(place: Place) -> Line:
        mlp = place.path(f"{at}.<mlp>")
        return flat(
            tag(place.path(at), "mlp"),
            field(f"{mlp}.intermediate_size", "intermediate_size", POSITIVE, default=11008),
            pinned(f"{mlp}.gated", True, gated),
            field(f"{mlp}.activation", activation_key, ACTIVATION, default=activation_default),
            biases(mlp),
        )

    return lines


def mixture_of_experts(*, expert: Piece, router: Mapping[str, Any], reason: str) -> Piece:
    """Top-k routed experts, each an ``expert`` MLP at node ``expert``; ``router`` is the native
    router the format hard-wires (``Router`` fields; the others keep their defaults, ``reason``
    names it), no shared expert."""

    def lines(place: Place) -> Line:
        moe = place.path("mlp.<moe>")
        return flat(
            tag(place.path("mlp"), "moe"),
            field(f"{moe}.experts", "num_local_experts", COUNT, default=8),
            field(f"{moe}.experts_per_token", "num_experts_per_tok", POSITIVE, default=2),
            pinned(f"{moe}.router", attrs.asdict(Router(**router)), reason),
            pinned(f"{moe}.shared_expert", None, "no shared expert"),
            expert(place.inside("mlp.<moe>")),
        )

    return lines


def rms_norm(*, unit_offset: bool = False) -> Piece:
    """The block's RMSNorm, scaling by ``weight`` or (``unit_offset``) ``1 + weight``; its
    epsilon is the model's one epsilon key (see ``Block``)."""
    reason = norm_scale_reason(unit_offset)

    def lines(place: Place) -> Line:
        norm = place.path("normalization")
        return [
            tag(norm, "rms_norm"),
            pinned(f"{norm}.<rms_norm>.unit_offset", unit_offset, reason),
        ]

    return lines


RMS_NORM = rms_norm()


def pre_norms_only(place: Place) -> Line:
    """Llama's placement: a norm on each sublayer's input, none on its output."""
    return [
        pinned(place.path("pre_norms"), True, "input_layernorm and post_attention_layernorm"),
        pinned(place.path("post_norms"), False, "no norm on the sublayer outputs"),
    ]


def post_norms_only(place: Place) -> Line:
    """OLMo 2's placement: a norm on each sublayer's output, none on its input."""
    return [
        pinned(place.path("pre_norms"), False, "no norm on the sublayer inputs"),
        pinned(place.path("post_norms"), True, "a norm on each sublayer's output only"),
    ]


# ---------------------------------------------------------------- the Llama block


def llama_lines(
    place: Place,
    *,
    mlp: Piece | None = None,
    mlp_biases: SubPiece = mlp_bias_key,
    norm_placement: Piece = pre_norms_only,
    norm: Piece = RMS_NORM,
    **attention: Any,
) -> list[Lens]:
    """Llama's decoder block at ``place``: attention (``attention`` are the keyword options of
    ``attention_lines``), a gated MLP with the bias line ``mlp_biases`` (or another
    feed-forward piece ``mlp``, e.g. a mixture of experts), an RMSNorm placed by
    ``norm_placement`` (``norm``: plain or ``(1 + weight)`` scale)."""
    return flat(
        attention_lines(place, **attention),
        (mlp or dense_mlp(biases=mlp_biases))(place),
        norm(place),
        norm_placement(place),
    )


def llama_block(
    *,
    defaults: Mapping[str, Any] | None = None,
    not_null: tuple[str, ...] = (),
    **options: Any,
) -> Block:
    """The Llama block table with ``options`` (see ``llama_lines``), field ``defaults`` by HF
    key, and the keys whose ``null`` is refused (``not_null``):
    ``llama_block(biases=qkv_only_biases, head_dim_key=None)``."""
    return Block(llama_lines, options, dict(defaults or {}), not_null=not_null)
