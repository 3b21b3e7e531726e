"""Block tables of the DeepSeek family: multi-head latent attention and the mixture of experts
with sigmoid scoring, a selection-only correction bias, grouped top-k and a shared expert.

The pieces take the block's ``Place`` like the Llama pieces (``blocks.py``); ``DEEPSEEK_BLOCK``
is the block table of ``deepseek_v3``. Keys that transformers derives and writes anyway
(``head_dim = qk_rope_head_dim``, ``qk_head_dim = nope + rope``) and ``num_key_value_heads``
(MLA has no grouped heads: transformers fails unless it equals the head count) are read,
checked against what they must be, and written back; the view does not show them.
"""

from __future__ import annotations

from typing import Any

from ckptlens.formats.blocks import RMS_NORM, pre_norms_only
from ckptlens.formats.hf import ACTIVATION, COUNT, POSITIVE
from ckptlens.formats.rope import rope
from ckptlens.formats.tables import Block, Line, Piece, Place, flat
from ckptlens.lenses import (
    ABSENT,
    TAG_KEY,
    Bad,
    Bool,
    Float,
    Lens,
    Member,
    Nullable,
    Problem,
    ValueType,
    as_path,
    constant,
    custom,
    derived,
    field,
    lookup,
    pinned,
    table_builder,
    tag,
)

# Lenses built here report the site of the format that called the builder.
table_builder(__file__)

LATENT = "mixer.<latent_attention>"
MOE = "mlp.<moe>"
# transformers builds both latent norms as ``DeepseekV3RMSNorm(rank)``: that class's default
# epsilon, whatever ``rms_norm_eps`` says.
LATENT_EPSILON = 1e-6


def nest(path: str, value: Any) -> dict[str, Any]:
    """The view fragment holding ``value`` at ``path`` (union members are not dict levels)."""
    for part in reversed([part for part in as_path(path) if not isinstance(part, Member)]):
        value = {part: value}
    return value  # type: ignore[no-any-return]


def merge(*fragments: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for fragment in fragments:
        for key, value in fragment.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def read_key(src: Any, key: str, kind: ValueType, default: Any) -> Any:
    """``src[key]`` read by ``kind`` (``default`` when absent); a ``Problem`` when malformed."""
    raw = src.get(key, default)
    value = kind.read(raw)
    if isinstance(value, Bad):
        raise Problem(key, value.expected, raw)
    return value


def spelled(key: str, value: Any, default: Any, kind: ValueType, old: Any) -> Any:
    """What to write for ``key``: absent stays absent at its default, a spelling is kept."""
    if old is ABSENT:
        return kind.write(value, ABSENT)
    if key not in old and value == default:
        return ABSENT
    return kind.write(value, old.get(key, ABSENT))


# ---------------------------------------------------------------- latent attention


def _head_sizes(mixer: str) -> Lens:
    """``qk_nope_head_dim`` and ``qk_rope_head_dim``, with the derived ``head_dim`` and
    ``qk_head_dim`` (``DeepseekV3Config.__post_init__`` overwrites them; a file value that
    disagrees is refused rather than silently replaced)."""
    nope_view, rope_view = f"{mixer}.nope_head_size", f"{mixer}.rope_head_size"
    defaults = {"qk_nope_head_dim": 128, "qk_rope_head_dim": 64}

    def read(src: Any) -> dict[str, Any]:
        nope = read_key(src, "qk_nope_head_dim", POSITIVE, 128)
        rope_size = read_key(src, "qk_rope_head_dim", POSITIVE, 64)
        for key, value in [("head_dim", rope_size), ("qk_head_dim", nope + rope_size)]:
            if key in src and src[key] != value:
                raise Problem(key, f"{value} (transformers derives it)", src[key])
        return merge(nest(nope_view, nope), nest(rope_view, rope_size))

    def write(view: Any, old: Any) -> dict[str, Any]:
        nope, rope_size = lookup(view, as_path(nope_view)), lookup(view, as_path(rope_view))
        values = {"qk_nope_head_dim": nope, "qk_rope_head_dim": rope_size}
        updates = {key: spelled(key, v, defaults[key], POSITIVE, old) for key, v in values.items()}
        for key, value in [("head_dim", rope_size), ("qk_head_dim", nope + rope_size)]:
            updates[key] = value if old is ABSENT or key in old else ABSENT
        return updates

    return custom(
        "latent head sizes",
        read,
        write,
        keys=("qk_nope_head_dim", "qk_rope_head_dim", "head_dim", "qk_head_dim"),
        views=(nope_view, rope_view),
        where="qk_rope_head_dim",
        examples=_head_size_examples,
    )


def _head_size_examples() -> Any:
    from hypothesis import strategies as st

    sizes = st.fixed_dictionaries(
        {},
        optional={
            "qk_nope_head_dim": st.integers(1, 64),
            "qk_rope_head_dim": st.integers(1, 16).map(lambda half: 2 * half),
        },
    )

    def with_derived(src: dict[str, Any]) -> Any:
        nope, rope_size = src.get("qk_nope_head_dim", 128), src.get("qk_rope_head_dim", 64)
        derived_keys = {"head_dim": rope_size, "qk_head_dim": nope + rope_size}
        return st.just(src) | st.just({**src, **derived_keys})

    return sizes.flatmap(with_derived)


def _heads(heads_view: str) -> Lens:
    """``num_attention_heads`` with ``num_key_value_heads``, which must be the same (or null,
    which transformers reads as the head count; absent is its class default, 128)."""

    def read(src: Any) -> dict[str, Any]:
        heads = read_key(src, "num_attention_heads", POSITIVE, 128)
        value = src.get("num_key_value_heads", 128)
        if value is not None and value != heads:
            expected = f"{heads!r} (num_attention_heads: latent attention has no grouped heads)"
            raise Problem("num_key_value_heads", expected, value)
        return nest(heads_view, heads)

    def write(view: Any, old: Any) -> dict[str, Any]:
        heads = lookup(view, as_path(heads_view))
        updates = {"num_attention_heads": spelled("num_attention_heads", heads, 128, POSITIVE, old)}
        if old is ABSENT or "num_key_value_heads" not in old:
            kv = heads if old is ABSENT or heads != 128 else ABSENT
        else:
            kv = None if old["num_key_value_heads"] is None else heads
        return {**updates, "num_key_value_heads": kv}

    return custom(
        "attention heads",
        read,
        write,
        keys=("num_attention_heads", "num_key_value_heads"),
        views=(heads_view,),
        where="num_key_value_heads",
        examples=_head_examples,
    )


def _head_examples() -> Any:
    from hypothesis import strategies as st

    def consistent(heads: int) -> Any:
        kv = st.sampled_from([None, heads])
        return st.fixed_dictionaries(
            {"num_attention_heads": st.just(heads)}, optional={"num_key_value_heads": kv}
        )

    # absent heads is 128, and so is absent num_key_value_heads
    default = st.fixed_dictionaries(
        {}, optional={"num_key_value_heads": st.sampled_from([None, 128])}
    )
    return st.integers(1, 8).flatmap(consistent) | default


def latent_attention_lines(place: Place) -> Line:
    """DeepSeek-V3's ``DeepseekV3Attention`` as the block's mixer."""
    mixer, absolute = place.path(LATENT), f"{place.reads}.{LATENT}"
    return flat(
        tag(place.path("mixer"), "latent_attention"),
        _heads(f"{mixer}.heads"),
        field(f"{mixer}.query_rank", "q_lora_rank", Nullable(POSITIVE), default=1536),
        field(f"{mixer}.key_value_rank", "kv_lora_rank", POSITIVE, default=512),
        _head_sizes(mixer),
        field(f"{mixer}.value_head_size", "v_head_dim", POSITIVE, default=128),
        # One switch for q_a_proj, kv_a_proj_with_mqa and o_proj; a full-rank q_proj never
        # has a bias.
        field(
            [f"{mixer}.key_value_bias", f"{mixer}.dense_bias"],
            "attention_bias",
            Bool(),
            default=False,
        ),
        derived(
            f"{mixer}.query_bias",
            lambda view: (
                view(f"{absolute}.key_value_bias") and view(f"{absolute}.query_rank") is not None
            ),
            [f"{absolute}.key_value_bias", f"{absolute}.query_rank"],
            "attention_bias, on q_a_proj only (q_proj has none)",
        ),
        tag(f"{mixer}.latent_norm", "rms_norm"),
        pinned(
            f"{mixer}.latent_norm.<rms_norm>.epsilon",
            LATENT_EPSILON,
            "DeepseekV3RMSNorm's own default epsilon",
        ),
        pinned(f"{mixer}.latent_norm.<rms_norm>.unit_offset", False, "scales by weight"),
        pinned(f"{mixer}.softmax_scale", None, "(nope + rope) ** -0.5 with yarn's mscale_all_dim"),
        rope(f"{mixer}.rotary"),
        # The rotary rows of DeepSeek checkpoints are interleaved (the native order); the
        # half-split variant is not represented.
        constant("rope_interleave", True, create=False),
    )


# ---------------------------------------------------------------- mixture of experts


def _shared_expert(moe: str) -> Lens:
    """``n_shared_experts`` k: one always-on gated MLP of width ``k * moe_intermediate_size``
    with the experts' activation (the schema sees ``shared_expert`` as one optional node)."""
    view, expert = f"{moe}.shared_expert", f"{moe}.expert.<mlp>"

    def read(src: Any) -> dict[str, Any]:
        count = src.get("n_shared_experts", 1)
        if type(count) is not int or count < 1:
            expected = "a positive integer (an MoE without shared expert is not represented)"
            raise Problem("n_shared_experts", expected, count)
        size = src.get("moe_intermediate_size", 2048)
        activation = ACTIVATION.read(src.get("hidden_act", "silu"))
        if type(size) is not int or size < 1 or isinstance(activation, Bad):
            return {}  # the lenses of those keys report them
        shared = {"intermediate_size": count * size, "gated": True, "activation": activation}
        biases = {"layer_1_bias": False, "layer_2_bias": False}
        return nest(view, {TAG_KEY: "mlp", **shared, **biases})

    def write(whole: Any, old: Any) -> dict[str, Any]:
        shared = lookup(whole, as_path(view))
        size = lookup(whole, as_path(f"{expert}.intermediate_size"))
        activation = lookup(whole, as_path(f"{expert}.activation"))
        if shared is None or not isinstance(shared, dict):
            raise ValueError("a shared expert (every DeepSeek-V3 MoE has one)")
        alike = {TAG_KEY: "mlp", "gated": True, "activation": activation, "layer_1_bias": False}
        if any(shared.get(key) != value for key, value in alike.items()) or shared.get(
            "layer_2_bias"
        ):
            raise ValueError(f"a shared expert gated, without biases, like the experts: {shared}")
        if shared["intermediate_size"] % size:
            raise ValueError(f"a shared expert of a whole number of experts' width ({size})")
        count = shared["intermediate_size"] // size
        return {"n_shared_experts": spelled("n_shared_experts", count, 1, POSITIVE, old)}

    return custom(
        "shared experts",
        read,
        write,
        keys=("n_shared_experts",),
        views=(view,),
        reads=("moe_intermediate_size", "hidden_act"),
        examples=_shared_examples,
    )


def _shared_examples() -> Any:
    from hypothesis import strategies as st

    return st.fixed_dictionaries({}, optional={"n_shared_experts": st.integers(1, 3)})


ROUTING_KEYS = {
    # HF key: (view field relative to the MoE, class default)
    "n_routed_experts": ("experts", 256),
    "num_experts_per_tok": ("experts_per_token", 8),
    "n_group": ("router.groups", 8),
    "topk_group": ("router.groups_per_token", 4),
}


def _routing_sizes(moe: str) -> Lens:
    """Expert, group and top-k counts, read together because they constrain each other
    (``Router.check_experts``); transformers validates none of them, its forward fails."""

    def read(src: Any) -> dict[str, Any]:
        # bounded counts first: nothing grows with a number before it is checked
        values = {key: read_key(src, key, COUNT, d) for key, (_, d) in ROUTING_KEYS.items()}
        experts, groups = values["n_routed_experts"], values["n_group"]
        if experts % groups or (groups > 1 and experts // groups < 2):
            expected = f"a divisor of n_routed_experts ({experts}) leaving >= 2 experts a group"
            raise Problem("n_group", expected, groups)
        if values["topk_group"] > groups:
            raise Problem("topk_group", f"at most n_group ({groups})", values["topk_group"])
        if values["num_experts_per_tok"] > values["topk_group"] * (experts // groups):
            expected = "at most the experts of topk_group groups"
            raise Problem("num_experts_per_tok", expected, values["num_experts_per_tok"])
        return merge(*(nest(f"{moe}.{ROUTING_KEYS[k][0]}", v) for k, v in values.items()))

    def write(view: Any, old: Any) -> dict[str, Any]:
        return {
            key: spelled(key, lookup(view, as_path(f"{moe}.{name}")), default, COUNT, old)
            for key, (name, default) in ROUTING_KEYS.items()
        }

    return custom(
        "routing sizes",
        read,
        write,
        keys=tuple(ROUTING_KEYS),
        views=tuple(f"{moe}.{name}" for name, _ in ROUTING_KEYS.values()),
        where="n_group",
        examples=_routing_examples,
    )


def _routing_examples() -> Any:
    from hypothesis import strategies as st

    def sizes(groups: int, per_group: int, keep: int, k: int) -> dict[str, Any]:
        top = min(k, keep * per_group)
        return {
            "n_routed_experts": groups * per_group,
            "num_experts_per_tok": top,
            "n_group": groups,
            "topk_group": min(keep, groups),
        }

    drawn = st.builds(
        sizes, st.integers(1, 4), st.integers(2, 4), st.integers(1, 4), st.integers(1, 6)
    )
    return drawn | st.just({})


def _no_biases(mlp: str, reason: str) -> list[Lens]:
    return [pinned(f"{mlp}.{name}", False, reason) for name in ("layer_1_bias", "layer_2_bias")]


def latent_moe(place: Place) -> Line:
    """``DeepseekV3MoE``: sigmoid scores, selection on scores plus the correction bias within
    the best ``topk_group`` of ``n_group`` groups, weights renormalised (``norm_topk_prob``)
    and scaled (``routed_scaling_factor``), plus the shared expert."""
    moe = place.path(MOE)
    expert = f"{moe}.expert.<mlp>"
    return flat(
        tag(place.path("mlp"), "moe"),
        _routing_sizes(moe),
        field(f"{moe}.router.normalize_top_k", "norm_topk_prob", Bool(), default=True),
        pinned(f"{moe}.router.bias", False, "the gate has no bias"),
        pinned(f"{moe}.router.scoring", "sigmoid", "transformers always scores by sigmoid"),
        pinned(f"{moe}.router.correction_bias", True, "gate.e_score_correction_bias"),
        field(f"{moe}.router.scale", "routed_scaling_factor", Float(positive=True), default=2.5),
        # Remote-code keys the transformers model ignores; other values meant other code.
        constant("scoring_func", "sigmoid", create=False),
        constant("topk_method", "noaux_tc", create=False),
        tag(f"{moe}.expert", "mlp"),
        field(f"{expert}.intermediate_size", "moe_intermediate_size", POSITIVE, default=2048),
        pinned(f"{expert}.gated", True, "gate_proj in every expert"),
        _no_biases(expert, "no expert biases"),
        _shared_expert(moe),
        field(f"{expert}.activation", "hidden_act", ACTIVATION, default="silu"),
    )


def dense_after(place: Place, of: Place) -> Line:
    """The dense ``DeepseekV3MLP`` of the first layers, at ``place``: width
    ``intermediate_size``, the activation of the experts of the MoE block at ``of``."""
    mlp = place.path("mlp.<mlp>")
    return flat(
        tag(place.path("mlp"), "mlp"),
        field(f"{mlp}.intermediate_size", "intermediate_size", POSITIVE, default=18432),
        pinned(f"{mlp}.gated", True, "gate_proj is always there"),
        derived(
            f"{mlp}.activation",
            lambda view: view(f"{of.reads}.{MOE}.expert.<mlp>.activation"),
            [f"{of.reads}.{MOE}.expert.<mlp>.activation"],
            "hidden_act (the experts')",
        ),
        _no_biases(mlp, "no MLP biases"),
    )


def deepseek_lines(place: Place, *, mlp: Piece = latent_moe) -> list[Lens]:
    """DeepSeek-V3's decoder block: latent attention, ``mlp`` (the MoE by default), Llama's
    pre-norm RMSNorms."""
    return flat(latent_attention_lines(place), mlp(place), RMS_NORM(place), pre_norms_only(place))


DEEPSEEK_BLOCK = Block(deepseek_lines)
