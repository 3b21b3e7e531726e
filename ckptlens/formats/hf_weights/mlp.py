"""HF names of a gated MLP: ``gate_proj`` and ``up_proj`` (fused natively into ``layer_1``)
and ``down_proj`` (native ``layer_2``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.pieces import SITE, Options, join, mapping, rename, suffixes
from ckptlens.lenses.errors import Violation
from ckptlens.native.config import MLP
from ckptlens.native.nodes.mlp import LAYER_1, LAYER_2

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping


@frozen
class GatedMLPWeights:
    prefix: str = "mlp"
    gate: str = "gate_proj"
    up: str = "up_proj"
    down: str = "down_proj"
    node_types: ClassVar[tuple[type, ...]] = (MLP,)

    def mappings(
        self, hf: str, native: str, node: MLP, options: Options
    ) -> Iterator[TensorMapping]:
        from ckptlens.weights.ops import Concat

        hf = join(hf, self.prefix)
        size = node.intermediate_size
        fuse = Concat(0, (size, size))
        for suffix in suffixes(node.layer_1_bias):
            external = (f"{hf}.{self.gate}.{suffix}", f"{hf}.{self.up}.{suffix}")
            yield mapping(external, (f"{native}.{LAYER_1}.{suffix}",), fuse)
        for suffix in suffixes(node.layer_2_bias):
            yield rename(f"{hf}.{self.down}.{suffix}", f"{native}.{LAYER_2}.{suffix}")

    def problems(self, path: str, node: MLP, options: Options) -> Iterator[Violation]:
        if not node.gated:
            yield Violation(f"{path}.gated", f"True ({self.gate}/{self.up})", "False", SITE)


def mlp(prefix: str = "mlp", **names: str) -> GatedMLPWeights:
    """A gated MLP under ``{parent}.{prefix}``; ``names`` override the projection names."""
    return GatedMLPWeights(prefix, **names)
