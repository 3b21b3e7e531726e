"""The two levels of a format table: a block table placed by a decoder lens, inside a model table.

A *block table* (``Block``) is the lines of one decoder block, built where a decoder puts it
(``Place``): the same block sits at ``decoder.<fixed>.block`` in a fixed decoder and at
``blocks.full`` inside a pattern decoder's union member. A *decoder lens* (``Decoder``, see
``decoders``) places blocks and owns the layer count and layout keys. ``hf_model`` is the model
table: identity, sizes, the decoder, the head, metadata and the format's other keys. Blocks and
models take ``defaults`` by HF key (``{"num_key_value_heads": 8}``): the config class's own
defaults, which is how most formats differ from their family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from attrs import frozen

from ckptlens.formats.hf import EPSILON, POSITIVE, identity
from ckptlens.lenses import (
    NOT_NULLABLE,
    Bool,
    Field,
    Lens,
    field,
    pinned,
    record,
    table_builder,
    tag,
)

# Lenses built here report the site of the format that called the builder.
table_builder(__file__)

Line = Lens | list[Lens]
"""One line of a table: a lens, or several that belong together (``[]``: nothing)."""

FINAL_NORM = "head.final_norm.<rms_norm>"
FINAL_EPSILON = f"{FINAL_NORM}.epsilon"


def norm_scale_reason(unit_offset: bool) -> str:
    """Why an RMSNorm's ``unit_offset`` is pinned: the one thing the format's code does."""
    return "the norm scales by (1 + weight)" if unit_offset else "the norm scales by its weight"


def flat(*lines: Line) -> list[Lens]:
    """The lenses of ``lines`` in order (a line is a lens or a list of them)."""
    parts: list[Lens] = []
    for line in lines:
        parts.extend(line if isinstance(line, list) else [line])
    return parts


def with_defaults(lenses: list[Lens], defaults: Mapping[str, Any], table: str) -> list[Lens]:
    """``lenses`` with the fields of the HF keys in ``defaults`` given another default (a config
    class's own). What a ``null`` reads as does not change: transformers maps
    ``num_key_value_heads: null`` to the head count even where an absent key means 8."""
    keys = {lens.key for lens in lenses if isinstance(lens, Field)}
    unknown = sorted(set(defaults) - keys)
    if unknown:
        raise TypeError(f"{table} has no fields for the keys {unknown}; it has {sorted(keys)}")
    return [
        attrs.evolve(lens, default=defaults[lens.key])
        if isinstance(lens, Field) and lens.key in defaults
        else lens
        for lens in lenses
    ]


@frozen
class Place:
    """Where a decoder puts a block: ``at`` is its view path relative to the lens holding it
    (inside a union member), ``reads`` its absolute view path, which derived defaults read."""

    at: str
    reads: str

    @classmethod
    def absolute(cls, path: str) -> Place:
        return cls(path, path)

    def path(self, relative: str) -> str:
        return f"{self.at}.{relative}"

    def inside(self, relative: str) -> Place:
        """The place of a node of this block, e.g. ``mlp.<moe>`` for its experts."""
        return Place(f"{self.at}.{relative}", f"{self.reads}.{relative}")


Piece = Callable[[Place], Line]
"""A piece of a block table: the lines of one node (or part of one) at a place."""


@frozen
class Block:
    """A block table: a family's block function (``llama_lines``) with its keyword options
    bound, the HF-key defaults of its fields, and the view paths (relative to the block) of
    the norm epsilons that the model's one epsilon key sets.

    A decoder calls ``lines(place)`` for each place it puts the block; a variant of a block is
    ``block.but(window=...)`` (the sliding block of a pattern, a format's own causal line)."""

    build: Callable[..., Line]
    options: Mapping[str, Any] = attrs.field(factory=dict)
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    epsilons: tuple[str, ...] = ("normalization.<rms_norm>.epsilon",)
    # HF keys whose ``null`` the config class refuses (typed ``int``, not ``int | None``).
    not_null: tuple[str, ...] = ()

    def __attrs_post_init__(self) -> None:
        # Built once here, so a misspelt option or default key fails where the block is
        # declared, not where a decoder first places it.
        self.lines(Place.absolute("block"))

    def lines(self, place: Place) -> list[Lens]:
        lenses = with_defaults(flat(self.build(place, **self.options)), self.defaults, "this block")
        return [
            attrs.evolve(lens, null_default=NOT_NULLABLE)
            if isinstance(lens, Field) and lens.key in self.not_null
            else lens
            for lens in lenses
        ]

    def but(self, **options: Any) -> Block:
        """This block with the keyword options ``options`` replaced."""
        return attrs.evolve(self, options={**self.options, **options})


@frozen
class Decoder:
    """A decoder lens as the model table uses it: its lines, and the absolute view paths of
    block norm epsilons that the model's epsilon key sets directly (a fixed decoder's; blocks
    inside a union mirror the final norm's epsilon instead)."""

    lines: tuple[Lens, ...]
    shared_epsilons: tuple[str, ...] = ()


Head = Callable[[Decoder], Line]


def rms_head(
    *,
    epsilon_key: str = "rms_norm_eps",
    prediction_heads: Line | None = None,
    unit_offset: bool = False,
    softcap: Line | None = None,
) -> Head:
    """The final RMSNorm (scaling by ``1 + weight`` when ``unit_offset``), whose epsilon key
    also sets the blocks' norms, and one output head (or the ``prediction_heads`` line of a
    multi-token-prediction format); ``softcap`` is the line of the final logit soft-cap."""

    def lines(decoder: Decoder) -> Line:
        heads = prediction_heads or pinned("head.prediction_heads", 1, "one output head")
        cap = softcap or pinned("head.logit_softcap", None, "no final logit soft-capping")
        epsilon = [*decoder.shared_epsilons, FINAL_EPSILON]
        return [
            tag("head.final_norm", "rms_norm"),
            pinned(f"{FINAL_NORM}.unit_offset", unit_offset, norm_scale_reason(unit_offset)),
            field(epsilon, epsilon_key, EPSILON, default=1e-6),
            *flat(heads),
            *flat(cap),
        ]

    return lines


def hf_model(
    model_type: str,
    architectures: Iterable[str],
    *,
    decoder: Decoder,
    metadata: Line,
    extra: Line,
    head: Head | None = None,
    scale_embeddings: Line | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Lens:
    """The model table of an HF causal LM: identity, embedding sizes, ``decoder``, ``head``
    (default ``rms_head()``), ``metadata`` and ``extra`` (the format's keys that are not model
    fields); ``scale_embeddings`` (default: pinned off) says whether embeddings are scaled.
    ``defaults`` change field defaults by HF key, block fields of a fixed decoder
    included."""
    lenses = flat(
        identity(model_type, architectures),
        field("hidden_size", "hidden_size", POSITIVE, default=4096),
        field("vocab_size", "vocab_size", POSITIVE, default=32000),
        field("tied_embeddings", "tie_word_embeddings", Bool(), default=False),
        scale_embeddings or pinned("scale_embeddings", False, "embeddings are not scaled"),
        list(decoder.lines),
        (head or rms_head())(decoder),
        metadata,
        extra,
    )
    return record(*with_defaults(lenses, defaults or {}, f"the {model_type} table"))
