"""Decoder lenses: where a model table's blocks go and which keys say how many and which kind.

``fixed_decoder(block)``: every layer is ``block``. ``layer_windows(block, layout)``: layers
that differ in a few fields (Qwen2's sliding layers; Gemma's sliding/global alternation), shown
as a ``FixedDecoder`` when all layers are alike and as a ``PatternDecoder`` otherwise; the
first named block is built from the table, the others are ``mirror_block`` copies of it but for
the fields the layout owns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from ckptlens.formats.hf import COUNT
from ckptlens.formats.tables import FINAL_EPSILON, Block, Decoder, Place
from ckptlens.lenses import (
    TAG_KEY,
    Lens,
    Member,
    Path,
    as_path,
    at,
    dotted,
    field,
    is_prefix,
    mirror,
    record,
    table_builder,
    tag,
    union,
)

# Lenses built here report the site of the format that called the builder.
table_builder(__file__)

FIXED_BLOCK = "decoder.<fixed>.block"
PATTERN_BLOCKS = "decoder.<pattern>.blocks"


def fixed_decoder(
    block: Block, layers_key: str = "num_hidden_layers", layers_default: int = 32
) -> Decoder:
    """Every layer is ``block``; ``layers_key`` counts them."""
    place = Place.absolute(FIXED_BLOCK)
    return Decoder(
        (
            tag("decoder", "fixed"),
            field("decoder.<fixed>.num_blocks", layers_key, COUNT, default=layers_default),
            *block.lines(place),
        ),
        shared_epsilons=tuple(place.path(epsilon) for epsilon in block.epsilons),
    )


@frozen
class LayerLayout:
    """How a format's keys say each layer's kind (see ``windows`` for Qwen2's five keys).

    ``kind(src)`` picks the decoder union member (``fixed`` or ``pattern``); ``fixed`` and
    ``pattern`` are the lenses that own the layout keys and the view fields they decide
    (``differs``, relative to a block). Pattern blocks are named ``names``: the first is the
    table's block with the options ``first``, the others copy it but for ``differs``. In a
    fixed decoder the block takes the options ``fixed_options``."""

    kind: Callable[[Any], str]
    fixed: Lens
    pattern: Lens
    names: tuple[str, ...]
    differs: tuple[str, ...]
    first: Mapping[str, Any]
    fixed_options: Mapping[str, Any]
    where: str = "layer_types"


def layer_windows(block: Block, layout: LayerLayout) -> Decoder:
    """A decoder whose layers may differ in the fields ``layout`` owns (see ``LayerLayout``)."""
    fixed = Place("block", FIXED_BLOCK)
    first, *others = layout.names
    main = Place(f"blocks.{first}", f"{PATTERN_BLOCKS}.{first}")
    main_lines = block.but(**layout.first).lines(main)
    pattern = [*main_lines, *_mirrored_epsilons(block, main)]
    for name in others:
        copy = f"blocks.{name}"
        pattern += mirror_block(
            copy, main, main_lines, layout.differs, f"as in the {first!r} block"
        )
    return Decoder(
        (
            at(
                "decoder",
                union(
                    "decoder layout",
                    layout.kind,
                    where=layout.where,
                    fixed=record(
                        *block.but(**layout.fixed_options).lines(fixed),
                        *_mirrored_epsilons(block, fixed),
                        layout.fixed,
                    ),
                    pattern=record(*pattern, layout.pattern),
                ),
            ),
        )
    )


def _mirrored_epsilons(block: Block, place: Place) -> list[Lens]:
    """Inside a union a block's norms cannot share the model's epsilon field: they copy the
    final norm's, which that key sets."""
    text = "rms_norm_eps (the final norm's epsilon)"
    return [mirror(place.path(epsilon), FINAL_EPSILON, text) for epsilon in block.epsilons]


def mirror_block(
    view: str, of: Place, lines: Sequence[Lens], differs: Sequence[str], text: str
) -> list[Lens]:
    """The block at ``view`` equals the block ``lines`` build at ``of``, but for the view fields
    ``differs`` (relative to the block), which other lenses own. Whole nodes are mirrored where
    nothing in them differs; a node that holds a differing field gets its union tag and a
    mirror of each of its other fields. The fields come from the lines' own footprints, so a
    field added to the block table is copied without being listed here."""
    base = as_path(of.at)
    tree: dict[Any, Any] = {}
    for lens in lines:
        for claim in sorted(lens.footprint.view, key=lambda claim: dotted(claim.path)):
            if is_prefix(base, claim.path):
                _insert(tree, claim.path[len(base) :])
    skip = [as_path(path) for path in differs]
    return _copies(tree, (), as_path(view), as_path(of.reads), skip, text)


def _insert(tree: dict[Any, Any], path: Path) -> None:
    for key in path:
        tree = tree.setdefault(key, {})


def _copies(
    tree: dict[Any, Any], rel: Path, to: Path, of: Path, skip: list[Path], text: str
) -> list[Lens]:
    lenses: list[Lens] = []
    members = [key for key in tree if isinstance(key, Member)]
    for key, sub in tree.items():
        path = (*rel, key)
        if path in skip or (key == TAG_KEY and members):
            continue  # owned elsewhere; a union tag is written where its member is entered
        if not any(is_prefix(path, owned) for owned in skip):
            lenses.append(mirror(dotted((*to, *path)), dotted((*of, *path)), text))
            continue
        if isinstance(key, Member):
            lenses.append(tag(dotted((*to, *rel)), key.tag))
        lenses += _copies(sub, path, to, of, skip, text)
    return lenses


__all__ = ["LayerLayout", "fixed_decoder", "layer_windows", "mirror_block"]
