"""HF names of a normalization: ``{prefix}.{name}.weight`` (and ``.bias``), the same leaf
names as the native ones, whatever the norm type."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.pieces import Options, join, rename
from ckptlens.lenses.errors import Violation
from ckptlens.native.config import LayerNorm, NoNorm, RMSNorm

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping


@frozen
class NormWeights:
    name: str
    node_types: ClassVar[tuple[type, ...]] = (RMSNorm, LayerNorm, NoNorm)

    def mappings(
        self, hf: str, native: str, node: Any, options: Options
    ) -> Iterator[TensorMapping]:
        for tensor, _ in node.tensors(native, 1):  # the width does not change the names
            yield rename(join(hf, self.name) + tensor[len(native) :], tensor)

    def problems(self, path: str, node: Any, options: Options) -> Iterator[Violation]:
        return iter(())


def norm(name: str) -> NormWeights:
    """A norm stored under ``{parent}.{name}``."""
    return NormWeights(name)
