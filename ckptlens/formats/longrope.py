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
    TAG_KEY,
    Bad,
    Float,
    Lens,
    Nullable,
    Problem,
    Share,
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
FRACTION = Share()
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

    # Cheap to draw (long random lists make the law suite slow): n copies of one factor with
    # a different last one, n from the pair counts small and published heads have.
    item = st.sampled_from([1.0, 1.5, 2.0, 4.0, 1, 3])
    pairs = st.sampled_from([1, 2, 4, 8, 16, 24, 48])

    def factors(n: int, first: Any, last: Any) -> list[Any]:
        return [*([first] * (n - 1)), last]

    one = st.builds(factors, pairs, item, item)
    return st.builds(
        lambda n, a, b, c, d: {"short_factor": factors(n, a, b), "long_factor": factors(n, c, d)},
        pairs,
        item,
        item,
        item,
        item,
    ) | one.map(lambda values: {"short_factor": values, "long_factor": [*values[:-1], 2.5]})


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

    return st.sampled_from([{}, {}, {}, {PARTIAL_KEY: 1.0}, {PARTIAL_KEY: 0.5}])


# ---------------------------------------------------------------- the two spellings


def _fraction() -> Lens:
    return field("fraction", PARTIAL_KEY, FRACTION, default=1.0, spell_default=False)


def _theta() -> Lens:
    return field("theta", "rope_theta", EPSILON, default=DEFAULT_THETA)


DEFAULT_ORIGINAL = 4096  # Phi3Config's default, which it always writes


def _rope_type_anywhere(src: Mapping[str, Any]) -> str | Bad:
    params = src.get("rope_parameters", src.get("rope_scaling"))
    return rope_type(params)


def _read_original(src: Mapping[str, Any]) -> dict[str, Any]:
    raw = src.get(ORIGINAL_KEY, DEFAULT_ORIGINAL)
    value = POSITIVE.read(raw)
    if isinstance(value, Bad):
        raise Problem(ORIGINAL_KEY, value.expected, raw)
    return {"original_context_length": value} if _rope_type_anywhere(src) == "longrope" else {}


def _write_original(view: Any, old: Any) -> dict[str, Any]:
    old_raw = old.get(ORIGINAL_KEY, ABSENT) if isinstance(old, dict) else ABSENT
    if view.get(TAG_KEY) != "longrope":
        # No effect: kept as the source wrote it; the normal form leaves it out.
        return {} if old is not ABSENT else {ORIGINAL_KEY: ABSENT}
    value = view.get("original_context_length")
    if old_raw is ABSENT and old is not ABSENT and equal_values(value, DEFAULT_ORIGINAL):
        return {}
    return {ORIGINAL_KEY: POSITIVE.write(value, old_raw)}


def _original_examples() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from([{}, {ORIGINAL_KEY: 4096}, {ORIGINAL_KEY: 8}, {ORIGINAL_KEY: 1024}])


def original_context() -> Lens:
    """The flat ``original_max_position_embeddings``: LongRoPE's original context (it overrides
    any copy in the rope dict); with plain RoPE it has no effect and is kept as written. One
    lens for both rope types, so a put that changes the type and back keeps the key."""
    return custom(
        "original_max_position_embeddings",
        _read_original,
        _write_original,
        keys=[ORIGINAL_KEY],
        views=["<longrope>.original_context_length"],
        where=ORIGINAL_KEY,
        reads=[
            *(f"{rope}.{key}" for rope in ("rope_parameters", "rope_scaling") for key in TYPE_KEYS),
            "rope_parameters",
            "rope_scaling",
        ],
        examples=_original_examples,
    )


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
        constant("rope_scaling", None, accept=_DEFAULT_SCALING_SPELLINGS, create=False),
    )
    longrope = record(_theta(), _fraction(), under("rope_scaling", *_scaling(rotary)))
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
        under(
            "rope_parameters",
            constant(TYPE_KEYS, "default"),
            _theta(),
            _fraction(),
            passthrough(ORIGINAL_KEY),  # no effect without scaling
            optional=True,
        ),
    )
    longrope = record(
        flat_fraction_copy(),
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
    # v4 first: flat keys alone (no rope dict) are the v4 spelling, as transformers reads them.
    return at(view, record(original_context(), spelling("rope", v4=_v4(view), v5=_v5(view))))
