"""HF names of the whole model: embeddings, the blocks under a per-layer prefix, the head.

``decoder(...)`` is what a format module hands to ``declare(..., weights=...)``; its ``lens``
builds the weight lens of one native model, refusing (with every problem listed) a model the
names cannot represent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from attrs import frozen

from ckptlens.formats.hf_weights.mlp import mlp as gated_mlp
from ckptlens.formats.hf_weights.norms import NormWeights, norm
from ckptlens.formats.hf_weights.pieces import (
    MOE_LAYOUTS,
    SITE,
    Options,
    Piece,
    mapping,
    pieces,
    rename,
    slot_mappings,
    slot_problems,
)
from ckptlens.lenses.errors import ViewError, Violation
from ckptlens.native import names
from ckptlens.native.config import Block, Model, MoE
from ckptlens.native.nodes.decoders import (
    FEED_FORWARD,
    MIXER,
    NORM_1,
    NORM_2,
    POST_NORM_1,
    POST_NORM_2,
)

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping, WeightLens

INPUT_NORM = norm("input_layernorm")
POST_ATTENTION_NORM = norm("post_attention_layernorm")
GATED_MLP = gated_mlp()


@frozen
class BlockWeights:
    """One block: its norms and the pieces its mixer and feed-forward slots accept.

    ``norm_1``/``norm_2`` name the norms on the sublayer inputs, ``post_norm_1``/``post_norm_2``
    those on the sublayer outputs (``None``: the format has no such norm)."""

    mixers: tuple[Piece, ...]
    feed_forwards: tuple[Piece, ...]
    norm_1: NormWeights | None = INPUT_NORM
    norm_2: NormWeights | None = POST_ATTENTION_NORM
    post_norm_1: NormWeights | None = None
    post_norm_2: NormWeights | None = None

    def mappings(
        self, hf: str, native: str, block: Block, options: Options
    ) -> Iterator[TensorMapping]:
        yield from self._norms(hf, native, block, options, (NORM_1, POST_NORM_1))
        yield from slot_mappings(self.mixers, hf, f"{native}.{MIXER}", block.mixer, options)
        yield from self._norms(hf, native, block, options, (NORM_2, POST_NORM_2))
        mlp = f"{native}.{FEED_FORWARD}"
        yield from slot_mappings(self.feed_forwards, hf, mlp, block.mlp, options)

    def _norms(
        self, hf: str, native: str, block: Block, options: Options, names: tuple[str, str]
    ) -> Iterator[TensorMapping]:
        present = block.norms(1) + block.norms(2)
        for name in names:
            piece = self._norm_piece(name)
            if name in present and piece is not None:
                yield from piece.mappings(hf, f"{native}.{name}", block.normalization, options)

    def _norm_piece(self, name: str) -> NormWeights | None:
        pieces = {NORM_1: self.norm_1, NORM_2: self.norm_2}
        return {**pieces, POST_NORM_1: self.post_norm_1, POST_NORM_2: self.post_norm_2}[name]

    def problems(self, path: str, block: Block, options: Options) -> Iterator[Violation]:
        for sublayer in (1, 2):
            for name in block.norms(sublayer):
                if self._norm_piece(name) is None:
                    flag = "pre_norms" if name in (NORM_1, NORM_2) else "post_norms"
                    yield Violation(f"{path}.{flag}", f"no {name} in this format", "True", SITE)
        yield from slot_problems(self.mixers, f"{path}.mixer", block.mixer, options)
        yield from slot_problems(self.feed_forwards, f"{path}.mlp", block.mlp, options)


@frozen
class HeadWeights:
    """Where the head lives. ``prediction_block`` and ``prediction_norm`` are templates indexed
    by the prediction distance (``{k}`` >= 1, ``{j}`` = k - 1); ``None`` means the format has
    no multi-token prediction heads."""

    final_norm: str = "model.norm"
    output: str = "lm_head.weight"
    prediction_block: str | None = None
    prediction_norm: str | None = None

    def mappings(
        self, model: Model, block: BlockWeights, options: Options
    ) -> Iterator[TensorMapping]:
        final_norm = model.head.final_norm
        yield from norm(self.final_norm).mappings("", names.FINAL_NORM, final_norm, options)
        last_block = model.decoder.blocks_in_order[-1]
        for distance in range(1, model.head.prediction_heads):
            assert self.prediction_block is not None and self.prediction_norm is not None
            prefix = names.prediction_head_prefix(distance)
            hf_block = self.prediction_block.format(k=distance, j=distance - 1)
            yield from block.mappings(hf_block, f"{prefix}.block", last_block, options)
            hf_norm = norm(self.prediction_norm.format(k=distance, j=distance - 1))
            yield from hf_norm.mappings("", f"{prefix}.final_norm", final_norm, options)
        if not model.tied_embeddings:
            yield rename(self.output, names.OUTPUT)

    def problems(self, model: Model) -> Iterator[Violation]:
        if model.head.prediction_heads > 1 and self.prediction_block is None:
            found = str(model.head.prediction_heads)
            yield Violation(
                "$.head.prediction_heads", "1 (no MTP heads in this format)", found, SITE
            )


STANDARD_HEAD = HeadWeights()


@frozen
class DecoderWeights:
    """The HF tensor names of a decoder-only model, assembled from per-node pieces."""

    layers: str
    block: BlockWeights
    head: HeadWeights = STANDARD_HEAD
    embeddings: str = "model.embed_tokens.weight"

    def lens(self, model: Model, *, label: str = "hf", **options: Any) -> WeightLens:
        """The weight lens of ``model``; ``options`` are ``Options`` fields (``moe_layout``,
        ``tied_output_on_disk``). Raises ``ViewError`` listing every tensor the names cannot
        represent."""
        from ckptlens.weights.lens import WeightLens
        from ckptlens.weights.ops import Tie

        chosen = Options(**options)
        problems = list(self.problems(model, chosen))
        if problems:
            raise ViewError(problems)
        mappings = [rename(self.embeddings, names.EMBEDDINGS)]
        if chosen.tied_output_on_disk and model.tied_embeddings:
            tie = Tie(2)
            mappings = [mapping((self.embeddings, self.head.output), (names.EMBEDDINGS,), tie)]
        for index, block in enumerate(model.decoder.blocks_in_order):
            hf = self.layers.format(i=index)
            mappings += self.block.mappings(hf, names.block_prefix(index), block, chosen)
        mappings += self.head.mappings(model, self.block, chosen)
        if _has_moe(model):
            label = f"{label} ({chosen.moe_layout} experts)"
        return WeightLens(label, model, mappings)

    def problems(self, model: Model, options: Options) -> Iterator[Violation]:
        """Every native feature these names have no place for."""
        if options.moe_layout not in MOE_LAYOUTS:
            found = repr(options.moe_layout)
            yield Violation("$.moe_layout", f"one of {list(MOE_LAYOUTS)}", found, SITE)
        yield from self.head.problems(model)
        for index, block in enumerate(model.decoder.blocks_in_order):
            yield from self.block.problems(f"$.decoder.blocks[{index}]", block, options)

    def detect(self, tensor_names: Iterable[str]) -> dict[str, Any]:
        """The lens options a checkpoint's tensor names reveal: its expert layout (when the
        format names experts) and whether a tied output projection is stored anyway."""
        tensor_names = set(tensor_names)
        options: dict[str, Any] = {"tied_output_on_disk": self.head.output in tensor_names}
        for piece in self.block.feed_forwards:
            layout = getattr(piece, "detect_layout", lambda _: None)(tensor_names)
            if layout is not None:
                options["moe_layout"] = layout
        return options


def _has_moe(model: Model) -> bool:
    return any(isinstance(block.mlp, MoE) for block in model.decoder.blocks_in_order)


def head(
    final_norm: str = "model.norm",
    *,
    output: str = "lm_head.weight",
    prediction_block: str | None = None,
    prediction_norm: str | None = None,
) -> HeadWeights:
    return HeadWeights(final_norm, output, prediction_block, prediction_norm)


def decoder(
    layers: str = "model.layers.{i}",
    *,
    mixer: Piece | Sequence[Piece],
    mlp: Piece | Sequence[Piece] = GATED_MLP,
    head: HeadWeights = STANDARD_HEAD,
    norm_1: NormWeights | None = INPUT_NORM,
    norm_2: NormWeights | None = POST_ATTENTION_NORM,
    post_norm_1: NormWeights | None = None,
    post_norm_2: NormWeights | None = None,
    embeddings: str = "model.embed_tokens.weight",
) -> DecoderWeights:
    """A decoder's HF names: block i under ``layers.format(i=i)``; ``mixer`` and ``mlp`` are
    the piece (or pieces, one per node type the slot may hold) naming each block's nodes."""
    block = BlockWeights(pieces(mixer), pieces(mlp), norm_1, norm_2, post_norm_1, post_norm_2)
    return DecoderWeights(layers, block, head, embeddings)
