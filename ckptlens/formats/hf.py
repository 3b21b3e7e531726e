"""Lenses for what many HF configs share: rotary spellings, metadata keys, generic keys.

Each function returns lenses for a format table to include; the values that differ between
formats (defaults, which rope types a modeling file supports) are parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
from attrs import frozen
from hypothesis import strategies as st

from ckptlens.lenses import (
    Bool,
    Derive,
    Enum,
    Float,
    Int,
    Lens,
    Nullable,
    TokenIds,
    at,
    constant,
    derived,
    field,
    passthrough,
    pinned,
    record,
    spelling,
    under,
    union,
)
from ckptlens.lenses.core import Claim, Footprint, ReadContext, Row, WriteContext
from ckptlens.lenses.errors import definition_site
from ckptlens.lenses.fields import Custom, Derived
from ckptlens.lenses.paths import ABSENT, Path, as_path, equal_values, json_copy
from ckptlens.lenses.values import Bad
from ckptlens.native.config import Metadata

POSITIVE = Int(minimum=1)
NON_NEGATIVE = Float(nonnegative=True)
EPSILON = Float(positive=True)

ACTIVATION = Enum(
    {"silu": "silu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"},
    aliases={"swish": "silu", "gelu_new": "gelu_pytorch_tanh"},
)

# Keys every transformers ``PretrainedConfig`` may write that say nothing about the model:
# bookkeeping, task heads, and the generation defaults that v4 configs used to carry.
GENERIC_KEYS = (
    "transformers_version",
    "_name_or_path",
    "_commit_hash",
    "_attn_implementation_autoset",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "torchscript",
    "use_bfloat16",
    "tf_legacy_loss",
    "pruned_heads",
    "tie_encoder_decoder",
    "is_decoder",
    "is_encoder_decoder",
    "cross_attention_hidden_size",
    "add_cross_attention",
    "chunk_size_feed_forward",
    "finetuning_task",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "tokenizer_class",
    "prefix",
    "sep_token_id",
    "decoder_start_token_id",
    "task_specific_params",
    "max_length",
    "min_length",
    "do_sample",
    "early_stopping",
    "num_beams",
    "num_beam_groups",
    "diversity_penalty",
    "temperature",
    "top_k",
    "top_p",
    "typical_p",
    "repetition_penalty",
    "length_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "num_return_sequences",
    "output_scores",
    "return_dict_in_generate",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "remove_invalid_values",
    "exponential_decay_length_penalty",
    "suppress_tokens",
    "begin_suppress_tokens",
)


def generic_keys(*more: str) -> Lens:
    """Passthrough for the generic keys plus a format's own non-model keys."""
    return passthrough(*GENERIC_KEYS, *more)


def identity(model_type: str, architectures: Iterable[str]) -> list[Lens]:
    """``model_type`` must match; ``architectures`` may be absent or null but not another list."""
    return [
        constant("model_type", model_type, required=True),
        constant("architectures", list(architectures), accept=[None]),
    ]


def auto_map(entries: Mapping[str, str]) -> Lens:
    """``auto_map`` of a remote-code format, exactly as its exporter writes it. The view means
    what *these* modeling files compute (causality, rotary), so a config pointing at other
    code is refused rather than misread; ``create`` writes it so the files are found."""
    return constant("auto_map", dict(entries))


# ---------------------------------------------------------------- metadata

# view field -> (HF key, value type); ``dtype`` is separate because it has two spellings.
METADATA_KEYS: Mapping[str, tuple[str, Any]] = {
    "context_length": ("max_position_embeddings", POSITIVE),
    # transformers types bos/pad as one id and lets eos be a list (chat models stop on several).
    "bos_token_id": ("bos_token_id", Nullable(Int(minimum=0))),
    "eos_token_id": ("eos_token_id", Nullable(TokenIds())),
    "pad_token_id": ("pad_token_id", Nullable(Int(minimum=0))),
    "mask_token_id": ("mask_token_id", Nullable(Int(minimum=0))),
    # transformers v5 validates 0 <= initializer_range <= 1 when it loads a config.
    "initializer_range": ("initializer_range", Float(nonnegative=True, maximum=1.0)),
    "attention_dropout": ("attention_dropout", NON_NEGATIVE),
    "use_cache": ("use_cache", Bool()),
    "router_aux_loss_coef": ("router_aux_loss_coef", NON_NEGATIVE),
    "router_jitter_noise": ("router_jitter_noise", NON_NEGATIVE),
    "output_router_logits": ("output_router_logits", Bool()),
}


def metadata(defaults: Mapping[str, Any], implicit: Iterable[str] = ()) -> list[Lens]:
    """A field for each metadata name in ``defaults`` (with the format's default), the dtype
    spellings, and every other ``Metadata`` field pinned to ``None``: a view carrying, say,
    router knobs into a format without a router is rejected, never silently emptied.
    ``implicit`` names keys the format's config class does not write at their default."""
    implicit = set(implicit)
    lenses: list[Lens] = []
    for name, default in defaults.items():
        key, value_type = METADATA_KEYS[name]
        lenses.append(
            field(
                f"metadata.{name}",
                key,
                value_type,
                default=default,
                spell_default=name not in implicit,
            )
        )
    lenses.append(dtype())
    for attribute in attrs.fields(Metadata):
        if attribute.name not in defaults and attribute.name != "dtype":
            lenses.append(pinned(f"metadata.{attribute.name}", None, "this format has no such key"))
    return lenses


TORCH_DTYPES = (
    "float32",
    "float16",
    "bfloat16",
    "float64",
    "float8_e4m3fn",
    "float8_e5m2",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
    "bool",
)


def dtype() -> Lens:
    """``dtype`` (v5) or ``torch_dtype`` (v4): one view field, the source's own spelling kept."""
    value = Nullable(Enum({name: name for name in TORCH_DTYPES}))
    return spelling(
        "dtype",
        v5=field("metadata.dtype", "dtype", value, default=None),
        v4=field("metadata.dtype", "torch_dtype", value, default=None),
    )


# ---------------------------------------------------------------- rotary embeddings

DEFAULT_THETA = 10000.0
TYPE_KEYS = ("rope_type", "type")
ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn")


def _context_length(view: Any) -> Any:
    return view("metadata.context_length")


ORIGINAL_CONTEXT = Derive(_context_length, ("metadata.context_length",), "max_position_embeddings")


def _factor() -> Lens:
    return field("factor", "factor", EPSILON)


def _optional_float(view: str, key: str) -> Lens:
    return field(view, key, Nullable(EPSILON), default=None, spell_default=False)


def _original_context() -> Lens:
    return field(
        "original_context_length",
        "original_max_position_embeddings",
        POSITIVE,
        default=ORIGINAL_CONTEXT,
    )


def _rope_parameters(rope_type: str) -> list[Lens]:
    """The keys inside the rope dict for ``rope_type`` (besides its type and theta)."""
    if rope_type == "default":
        return []
    if rope_type == "linear":
        return [_factor()]
    if rope_type == "dynamic":
        # transformers' dynamic NTK grows the base past ``max_position_embeddings``; no key
        # of its own holds that length, so the view field is derived and checked on put.
        return [
            _factor(),
            derived(
                "original_context_length",
                _context_length,
                ["metadata.context_length"],
                "max_position_embeddings",
            ),
        ]
    if rope_type == "llama3":
        return [
            _factor(),
            field("low_frequency_factor", "low_freq_factor", EPSILON),
            field("high_frequency_factor", "high_freq_factor", EPSILON),
            _original_context(),
        ]
    if rope_type == "yarn":
        return yarn_keys()
    raise ValueError(f"no rope parameters known for {rope_type!r}")


def yarn_keys(*, original_required: bool = False, extended: bool = True) -> list[Lens]:
    """The yarn keys: ``original_required`` when the modeling code has no fallback for
    ``original_max_position_embeddings``; without ``extended`` there is no ``mscale``,
    ``mscale_all_dim`` or ``truncate`` (their view fields stay at the method's defaults)."""
    original = (
        field("original_context_length", "original_max_position_embeddings", POSITIVE)
        if original_required
        else _original_context()
    )
    lenses = [
        _factor(),
        original,
        _optional_float("attention_factor", "attention_factor"),
        _optional_float("beta_fast", "beta_fast"),
        _optional_float("beta_slow", "beta_slow"),
    ]
    if extended:
        return [
            *lenses,
            _optional_float("mscale", "mscale"),
            _optional_float("mscale_all_dim", "mscale_all_dim"),
            field("truncate", "truncate", Nullable(Bool()), default=None, spell_default=False),
        ]
    reason = "this modeling code's yarn has no such key"
    return [
        *lenses,
        *(pinned(name, None, reason) for name in ("mscale", "mscale_all_dim", "truncate")),
    ]


def _theta(default: float = DEFAULT_THETA) -> Lens:
    return field("theta", "rope_theta", EPSILON, default=default)


def rope_type_of(rope: Any) -> str | Bad:
    """The rope type a rope dict names (``rope_type`` or legacy ``type``; ``default`` if none)."""
    if not isinstance(rope, dict):
        return Bad("an object")
    named = [rope[key] for key in TYPE_KEYS if key in rope]
    if not all(isinstance(name, str) for name in named):
        return Bad("a rope type name")
    if len(set(named)) > 1:
        return Bad(f"one rope type, not {sorted(set(named))}")
    return named[0] if named else "default"


def _v4_rope_type(src: Any) -> str | Bad:
    scaling = src.get("rope_scaling") if isinstance(src, dict) else None
    return "default" if scaling is None else rope_type_of(scaling)


_DEFAULT_SCALING_SPELLINGS = (
    {"rope_type": "default"},
    {"type": "default"},
    {"rope_type": "default", "type": "default"},
    {"type": "default", "rope_type": "default"},
)


Parameters = Mapping[str, Sequence[Lens]]


def _parameters_of(rope_type: str, parameters: Parameters | None) -> list[Lens]:
    if parameters is not None and rope_type in parameters:
        return list(parameters[rope_type])
    return _rope_parameters(rope_type)


def rope_v4(
    types: Iterable[str], theta: float = DEFAULT_THETA, parameters: Parameters | None = None
) -> Lens:
    """transformers v4: flat ``rope_theta`` plus ``rope_scaling`` (null for plain RoPE)."""
    branches: dict[str, Lens] = {}
    for rope_type in types:
        if rope_type == "default":
            branches[rope_type] = record(
                _theta(theta),
                constant("rope_scaling", None, accept=_DEFAULT_SCALING_SPELLINGS, create=False),
            )
        else:
            branches[rope_type] = record(
                _theta(theta),
                under(
                    "rope_scaling",
                    constant(TYPE_KEYS, rope_type, required=True),
                    *_parameters_of(rope_type, parameters),
                    optional=True,
                ),
            )
    return union("rope type", _v4_rope_type, where="rope_scaling.rope_type", **branches)


def rope_v5(
    types: Iterable[str], theta: float = DEFAULT_THETA, parameters: Parameters | None = None
) -> Lens:
    """transformers v5: everything in ``rope_parameters``, type included."""
    branches = {
        rope_type: record(
            constant(TYPE_KEYS, rope_type, required=rope_type != "default"),
            _theta(theta),
            *_parameters_of(rope_type, parameters),
        )
        for rope_type in types
    }
    return under(
        "rope_parameters",
        union("rope type", rope_type_of, where="rope_type", **branches),
        optional=True,
    )


def rope(
    view: str,
    types: Iterable[str] = ROPE_TYPES,
    *,
    theta: float = DEFAULT_THETA,
    parameters: Parameters | None = None,
    flat_theta: bool = False,
) -> Lens:
    """The rotary embedding at view path ``view`` in both transformers spellings.

    ``types``: the rope types the format's modeling code runs; ``theta``: the config class's
    default base; ``parameters``: per-type replacements of the keys inside the rope dict.
    ``flat_theta``: the v5 spelling is ``rope_parameters`` *and* a flat ``rope_theta`` (remote-code
    config classes keep the flat attribute next to ``rope_parameters``; see ``FlatTheta``).
    """
    types = tuple(types)
    v4 = rope_v4(types, theta, parameters)
    v5 = rope_v5(types, theta, parameters)
    if not flat_theta:
        return at(view, spelling("rope", v5=v5, v4=v4))
    # v4 first: a lone flat ``rope_theta`` is the v4 spelling, not a v5 one missing its dict.
    return at(view, spelling("rope", v4=v4, v5=record(flat_theta_lens(theta), v5)))


# ---------------------------------------------------------------- escape hatches with examples


@frozen(repr=False)
class SampledCustom(Custom):
    """A ``custom`` lens that also says where its errors live: ``where``, a source path, or the
    key a ``Problem`` names. Its ``examples`` (a Hypothesis strategy of source fragments) let
    the laws harness draw its keys."""

    where: tuple[str, ...] = ()
    reads: tuple[Path, ...] = ()

    @property
    def footprint(self) -> Footprint:
        return attrs.evolve(super().footprint, deps=frozenset(self.reads))

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        # One row per source key, so a narrow table still names every key it owns.
        views = ", ".join(".".join(map(str, (*vprefix, *view))) for view in self.views)
        for key in self.keys:
            yield Row(views, ".".join(map(str, (*sprefix, key))), f"custom {self.label}")

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if not isinstance(src, dict):
            return {}
        for key in self.keys:
            if key in src:
                ctx.claim((*at, key), self)
        try:
            return self.read(src)
        except Problem as problem:
            return ctx.fail(self, (*at, problem.key), problem.expected, problem.found)
        except (ValueError, TypeError, KeyError, ArithmeticError) as error:
            return ctx.fail(self, (*at, *self.where), str(error), "<the source above>")

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        # The normal form is what a fresh source would say: values the old source held only
        # as presentation (inert keys) are not carried into it.
        fresh = ctx.fresh or ctx.style.normal
        return super()._write(view, vat, new, old, at, attrs.evolve(ctx, fresh=fresh))


class Problem(ValueError):
    """A source problem a ``sampled_custom`` read reports at ``key`` (expected vs found)."""

    def __init__(self, key: str, expected: str, found: Any) -> None:
        super().__init__(f"{key}: expected {expected}, found {found!r}")
        self.key, self.expected, self.found = key, expected, found


def sampled_custom(
    label: str,
    read: Callable[[Mapping[str, Any]], dict[str, Any]],
    write: Callable[[Any, Any], dict[str, Any]],
    *,
    keys: Sequence[str],
    views: Sequence[str],
    examples: Any,
    where: str = "",
    reads: Sequence[str] = (),
) -> SampledCustom:
    """``custom`` with an error path and source paths it reads but others own (``reads``)."""
    return SampledCustom(
        label,
        read,
        write,
        tuple(keys),
        tuple(as_path(v) for v in views),
        examples,
        tuple(as_path(where)),
        tuple(as_path(path) for path in reads),
        site=definition_site(skip=(os.path.abspath(__file__),)),
    )


# ---------------------------------------------------------------- the flat rope_theta of v5


def _nested_theta(src: Mapping[str, Any], default: float) -> Any:
    params = src.get("rope_parameters")
    return params.get("rope_theta", default) if isinstance(params, dict) else default


def flat_theta_lens(default: float = DEFAULT_THETA) -> Lens:
    """The flat ``rope_theta`` that remote-code config classes keep next to ``rope_parameters``
    under transformers v5. Their modeling code (or its v4 path) reads the flat key, v5 readers
    the dict, so the two must agree: a config where they differ means two different models
    and is rejected naming both values. Absent, the flat key is the class default ``default``
    (what the config object holds then), so it must agree too."""
    value_type = Float(positive=True)

    def read(src: Mapping[str, Any]) -> dict[str, Any]:
        flat = value_type.read(src.get("rope_theta", default))
        nested = value_type.read(_nested_theta(src, default))
        if isinstance(flat, Bad) or isinstance(nested, Bad):
            return {}  # reported by the fields that own the values
        if flat != nested:
            raise Problem(
                "rope_theta",
                f"{nested!r}, the value of rope_parameters.rope_theta (the modeling code reads "
                "the flat key, transformers v5 the dict; a config where they differ is two "
                "different models)",
                src.get("rope_theta", f"nothing: the config class default {default!r}"),
            )
        return {}

    def write(view: Any, old: Any) -> dict[str, Any]:
        theta = view.get("theta") if isinstance(view, dict) else None
        if theta is None:
            return {}  # a rotary this format has no theta for; the rope union reports it
        old_raw = old.get("rope_theta", ABSENT) if isinstance(old, dict) else ABSENT
        if old_raw is ABSENT and old is not ABSENT and equal_values(theta, default):
            return {"rope_theta": ABSENT}
        return {"rope_theta": value_type.write(theta, old_raw)}

    return sampled_custom(
        "flat rope_theta",
        read,
        write,
        keys=["rope_theta"],
        views=[],
        where="rope_theta",
        reads=["rope_parameters", "rope_parameters.rope_theta"],
        examples=st.sampled_from([{}, {"rope_theta": default}]),
    )


# ---------------------------------------------------------------- one value, several view places


@frozen(repr=False)
class Mirror(Derived):
    """A derived view subtree copied from another (see ``mirror``): it owns the whole subtree."""

    @property
    def footprint(self) -> Footprint:
        fp = super().footprint
        return attrs.evolve(fp, view=frozenset(Claim(c.path, subtree=True) for c in fp.view))


def mirror(view: str, of: str, text: str) -> Lens:
    """View field ``view`` is a copy of the (absolute) view path ``of``, whole subtree: get
    copies it, put rejects a view where they differ. For a block that must equal another
    block except for what other lines own (the sliding block of a Qwen2 pattern)."""
    source = as_path(of)

    def compute(reader: Any) -> Any:
        return _copy_leaves(reader, source, reader(source))

    rule = Derive(compute, (source,), text)
    return Mirror(as_path(view), rule, site=definition_site(skip=(os.path.abspath(__file__),)))


def _copy_leaves(reader: Any, at: Path, value: Any) -> Any:
    # Each leaf goes through the reader, which refuses values still being derived; so a copy
    # waits until the subtree it copies is complete.
    if isinstance(value, dict):
        return {key: _copy_leaves(reader, (*at, key), item) for key, item in value.items()}
    return json_copy(reader(at))
