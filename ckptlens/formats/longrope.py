"""Phi-3's rotary keys: plain RoPE or LongRoPE, with partial rotary, in both transformers
spellings, read as transformers 5.24's ``Phi3Config`` and ``Phi3RotaryEmbedding`` use them.

- v4: flat ``rope_theta``, ``partial_rotary_factor`` and ``original_max_position_embeddings``,
  ``rope_scaling`` null or ``{"type": "longrope" | "su", "short_factor", "long_factor"}``.
- v5: ``rope_parameters`` holds the type, theta, ``partial_rotary_factor`` and the factors; the
  flat ``original_max_position_embeddings`` stays (``Phi3Config`` always writes it).

What transformers does, and so what the view says:
- ``su`` is LongRoPE's first name (``Phi3Config`` renames it); put keeps the spelling.
- The original context is the flat key, which overrides any copy inside the rope dict
  (``standardize_rope_params`` gives it priority); the copy is presentation, kept by put.
- ``factor`` (absent in published configs) defaults to ``max_position_embeddings /
  original_max_position_embeddings``; it sets only the attention factor.
- A flat ``partial_rotary_factor`` next to ``rope_parameters`` is used only when the dict has
  none; here it must agree with the dict's (absent there: 1.0), so it never changes the view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ckptlens.formats.hf import EPSILON, POSITIVE
from ckptlens.formats.rope import _DEFAULT_SCALING_SPELLINGS, DEFAULT_THETA, TYPE_KEYS
from ckptlens.lenses import (
    ABSENT,
    Bad,
    Float,
    Lens,
    Nullable,
    Problem,
    ViewRule,
    at,
    constant,
    custom,
    equal_values,
    field,
    passthrough,
    record,
    spelling,
    under,
    union,
)

SU = "su"
ORIGINAL_KEY = "original_max_position_embeddings"
PARTIAL_KEY = "partial_rotary_factor"
FRACTION = Float(positive=True, maximum=1.0)
FACTOR = Float(positive=True)


def rope_type(rope: Any) -> str | Bad:
    """``default`` or ``longrope`` (``su`` read as ``longrope``) from a rope dict; transformers
    v5 writes both ``type: su`` and ``rope_type: longrope`` for an ``su`` source."""
    if rope is None:
        return "default"
    if not isinstance(rope, dict):
        return Bad("an object or null")
    named = {rope[key] for key in TYPE_KEYS if key in rope}
    if not all(isinstance(name, str) for name in named):
        return Bad("a rope type name")
    named = {"longrope" if name == SU else name for name in named}
    if len(named) > 1:
        return Bad(f"one rope type, not {sorted(named)}")
    return named.pop() if named else "default"


# ---------------------------------------------------------------- the factor lists


def _factors(src: Mapping[str, Any], key: str) -> tuple[float, ...]:
    raw = src.get(key, ABSENT)
    expected = "a non-empty list of finite numbers > 0"
    if not isinstance(raw, list) or not raw:
        raise Problem(key, expected, raw)
    values = [FACTOR.read(item) for item in raw]
    if any(isinstance(value, Bad) for value in values):
        raise Problem(key, expected, raw)
    return tuple(values)


def _read_factor_lists(src: Mapping[str, Any]) -> dict[str, Any]:
    short, long = _factors(src, "short_factor"), _factors(src, "long_factor")
    if len(short) != len(long):
        raise Problem("long_factor", f"{len(short)} entries, as many as short_factor", len(long))
    return {"short_factor": short, "long_factor": long}


def _write_factor_lists(view: Any, old: Any) -> dict[str, Any]:
    written = {}
    for key in ("short_factor", "long_factor"):
        value = view.get(key) if isinstance(view, dict) else None
        if not isinstance(value, tuple | list) or not value:
            raise ValueError(f"{key} must be a non-empty list of numbers")
        old_raw = old.get(key, ABSENT) if isinstance(old, dict) else ABSENT
        try:
            same = equal_values(list(_factors({key: old_raw}, key)), list(value))
        except Problem:
            same = False
        written[key] = old_raw if same else [FACTOR.write(item) for item in value]
    return written


def _factor_list_examples() -> Any:
    from hypothesis import strategies as st

    item = st.sampled_from([1.0, 1.5, 2.0, 4.0, 1, 3])
    pairs = st.sampled_from([1, 2, 4, 8, 16, 32])
    return pairs.flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "short_factor": st.lists(item, min_size=n, max_size=n),
                "long_factor": st.lists(item, min_size=n, max_size=n),
            }
        )
    )


def factor_lists() -> Lens:
    """``short_factor`` and ``long_factor``: one entry per rotated pair each (the native node
    checks the count against the head), spelled as the source spelled them."""
    return custom(
        "longrope factor lists",
        _read_factor_lists,
        _write_factor_lists,
        keys=["short_factor", "long_factor"],
        views=["short_factor", "long_factor"],
        examples=_factor_list_examples,
    )


# ---------------------------------------------------------------- a flat copy of the fraction


def _flat_fraction(src: Mapping[str, Any]) -> dict[str, Any]:
    if PARTIAL_KEY not in src:
        return {}
    flat = FRACTION.read(src[PARTIAL_KEY])
    params = src.get("rope_parameters")
    nested_raw = params.get(PARTIAL_KEY, 1.0) if isinstance(params, dict) else 1.0
    nested = FRACTION.read(nested_raw)
    if isinstance(flat, Bad) or isinstance(nested, Bad) or flat != nested:
        raise Problem(
            PARTIAL_KEY,
            f"{nested_raw!r}, the value of rope_parameters.{PARTIAL_KEY} (transformers uses "
            "the flat key only when the dict has none; they must agree)",
            src[PARTIAL_KEY],
        )
    return {}


def _write_flat_fraction(view: Any, old: Any) -> dict[str, Any]:
    old_raw = old.get(PARTIAL_KEY, ABSENT) if isinstance(old, dict) else ABSENT
    if old_raw is ABSENT:
        return {}
    return {PARTIAL_KEY: FRACTION.write(view.get("fraction"), old_raw)}


def flat_fraction_copy() -> Lens:
    """The flat ``partial_rotary_factor`` transformers v5 keeps next to ``rope_parameters``."""
    return custom(
        "flat partial_rotary_factor",
        _flat_fraction,
        _write_flat_fraction,
        keys=[PARTIAL_KEY],
        views=[],
        where=PARTIAL_KEY,
        reads=["rope_parameters", f"rope_parameters.{PARTIAL_KEY}"],
        examples=lambda: _flat_fraction_examples(),
    )


def _flat_fraction_examples() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from([{}, {PARTIAL_KEY: 1.0}, {PARTIAL_KEY: 0.5}])


# ---------------------------------------------------------------- the two spellings


def _fraction() -> Lens:
    return field("fraction", PARTIAL_KEY, FRACTION, default=1.0, spell_default=False)


def _theta() -> Lens:
    return field("theta", "rope_theta", EPSILON, default=DEFAULT_THETA)


def _original() -> Lens:
    return field("original_context_length", ORIGINAL_KEY, POSITIVE, default=4096)


def _scaling(rotary: str) -> list[Lens]:
    """The LongRoPE keys inside the rope dict; ``rotary`` is the absolute view path of the
    rotary field (the default ``factor`` reads its original context)."""
    original = f"{rotary}.<longrope>.original_context_length"
    ratio = ViewRule(
        lambda view: view("metadata.context_length") / view(original),
        ["metadata.context_length", original],
        "max_position_embeddings / original_max_position_embeddings",
    )
    return [
        constant(TYPE_KEYS, "longrope", required=True, accept=[SU]),
        factor_lists(),
        field("factor", "factor", EPSILON, default=ratio, spell_default=False),
        field(
            "attention_factor",
            "attention_factor",
            Nullable(EPSILON),
            default=None,
            spell_default=False,
        ),
        # Overridden by the flat key in transformers (see the module docstring).
        passthrough(ORIGINAL_KEY),
    ]


def _v4(rotary: str) -> Lens:
    default = record(
        _theta(),
        _fraction(),
        passthrough(ORIGINAL_KEY),  # no effect without scaling
        constant("rope_scaling", None, accept=_DEFAULT_SCALING_SPELLINGS, create=False),
    )
    longrope = record(_theta(), _fraction(), _original(), under("rope_scaling", *_scaling(rotary)))
    return union(
        "rope type",
        lambda src: rope_type(src.get("rope_scaling") if isinstance(src, dict) else None),
        where="rope_scaling.type",
        default=default,
        longrope=longrope,
    )


def _v5(rotary: str) -> Lens:
    default = record(
        flat_fraction_copy(),
        passthrough(ORIGINAL_KEY),
        under(
            "rope_parameters",
            constant(TYPE_KEYS, "default"),
            _theta(),
            _fraction(),
            optional=True,
        ),
    )
    longrope = record(
        flat_fraction_copy(),
        _original(),
        under("rope_parameters", _theta(), _fraction(), *_scaling(rotary)),
    )
    return union(
        "rope type",
        lambda src: rope_type(src.get("rope_parameters") if isinstance(src, dict) else None),
        where="rope_parameters.rope_type",
        default=default,
        longrope=longrope,
    )


def phi3_rope(view: str) -> Lens:
    """The rotary field at view path ``view`` (absolute: a fixed decoder's block)."""
    return at(view, spelling("rope", v5=_v5(view), v4=_v4(view)))
