"""Rotary embeddings in both transformers spellings.

v4 writes a flat ``rope_theta`` plus ``rope_scaling`` (``null`` for plain RoPE, else a dict
with ``type`` or ``rope_type``); v5 writes everything in ``rope_parameters``. Both read to the
same native rotary; put keeps whichever the source used; create writes the requested one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ckptlens.formats.hf import EPSILON, POSITIVE
from ckptlens.lenses import (
    ABSENT,
    Bad,
    Bool,
    Float,
    Lens,
    Nullable,
    Problem,
    ViewRule,
    at,
    constant,
    custom,
    derived,
    equal_values,
    field,
    pinned,
    record,
    spelling,
    under,
    union,
)

DEFAULT_THETA = 10000.0
TYPE_KEYS = ("rope_type", "type")
ROPE_TYPES = ("default", "linear", "dynamic", "llama3", "yarn")


def _context_length(view: Any) -> Any:
    return view("metadata.context_length")


ORIGINAL_CONTEXT = ViewRule(
    _context_length, ("metadata.context_length",), "max_position_embeddings"
)


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
            # transformers reads ``.get("truncate", True)``: absent is the method's default
            # (truncate), but an explicit null is falsy: no truncation.
            field(
                "truncate",
                "truncate",
                Nullable(Bool()),
                default=None,
                spell_default=False,
                null_default=False,
            ),
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


def whole_head() -> Lens:
    """Every feature of a head rotates: the format has no ``partial_rotary_factor``."""
    return pinned("fraction", 1.0, "no partial_rotary_factor key: the whole head rotates")


def _parameters_of(rope_type: str, parameters: Parameters | None) -> list[Lens]:
    if parameters is not None and rope_type in parameters:
        return [*parameters[rope_type], whole_head()]
    return [*_rope_parameters(rope_type), whole_head()]


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
                whole_head(),
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
        if isinstance(flat, Bad):  # this lens alone owns the flat key: a bad value is its to say
            raise Problem("rope_theta", flat.expected, src.get("rope_theta"))
        if isinstance(nested, Bad):
            return {}  # reported by the field that owns rope_parameters.rope_theta
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

    return custom(
        "flat rope_theta",
        read,
        write,
        keys=["rope_theta"],
        views=[],
        where="rope_theta",
        reads=["rope_parameters", "rope_parameters.rope_theta"],
        examples=lambda: _flat_theta_examples(default),
    )


def _flat_theta_examples(default: float) -> Any:
    from hypothesis import strategies as st

    return st.sampled_from([{}, {"rope_theta": default}])
