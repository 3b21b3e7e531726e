"""The block and model forwards, the tensor check, and ``ReferenceModel``."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from attrs import frozen
from torch.nn import functional

from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.native import names
from ckptlens.native.nodes.decoders import (
    FEED_FORWARD,
    MIXER,
    NORM_1,
    NORM_2,
    POST_NORM_1,
    POST_NORM_2,
    Block,
)
from ckptlens.native.nodes.model import Model
from ckptlens.native.reference.dispatch import LENS_NAME, Tensors, forward
from ckptlens.native.reference.norms import normalize, softcap


@forward.register(Block)
def block_forward(block: Block, x: torch.Tensor, tensors: Tensors, prefix: str) -> torch.Tensor:
    """``x + post_1(mixer(norm_1(x)))``, then ``x + post_2(mlp(norm_2(x)))``, each norm present
    only when the block has that placement."""
    sublayers = (
        (block.mixer, MIXER, NORM_1, POST_NORM_1),
        (block.mlp, FEED_FORWARD, NORM_2, POST_NORM_2),
    )
    for node, name, pre, post in sublayers:
        h = normalize(x, block.normalization, tensors, f"{prefix}.{pre}") if block.pre_norms else x
        h = forward(node, h, tensors, f"{prefix}.{name}")
        if block.post_norms:
            h = normalize(h, block.normalization, tensors, f"{prefix}.{post}")
        x = x + h
    return x


def _shape(shape: tuple[int, ...] | torch.Size) -> str:
    return f"shape {list(shape)}"


def tensor_violations(model: Model, tensors: Tensors) -> list[Violation]:
    """Every missing, unexpected or wrongly shaped tensor, compared with ``model_tensors``."""
    expected = names.model_tensors(model)
    violations = []
    for name in sorted(expected.keys() | tensors.keys()):
        wanted = _shape(expected[name]) if name in expected else "no such tensor"
        found = _shape(tensors[name].shape) if name in tensors else "none"
        if wanted != found:
            violations.append(Violation(f"$['{name}']", wanted, found, LENS_NAME))
    return violations


@frozen(eq=False)  # tensors have no boolean equality
class ReferenceModel:
    """A native model with its tensors (checked complete and correctly shaped), cast to one
    floating dtype in which the whole forward pass runs."""

    config: Model
    tensors: Mapping[str, torch.Tensor]

    @classmethod
    def build(
        cls, config: Model, tensors: Tensors, dtype: torch.dtype = torch.float32
    ) -> ReferenceModel:
        """Check ``tensors`` against ``config``; raise ``SourceError`` listing every problem.
        ``dtype`` (float32 by default, float64 for a tighter oracle) is the compute dtype."""
        violations = tensor_violations(config, tensors)
        if violations:
            raise SourceError(violations)
        return cls(config, {name: tensor.to(dtype) for name, tensor in tensors.items()})

    @property
    def output_weight(self) -> torch.Tensor:
        return self.tensors[names.EMBEDDINGS if self.config.tied_embeddings else names.OUTPUT]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[prediction_heads, batch, seq, vocab]`` for integer ``tokens`` ``[batch, seq]``.

        Head 0 is the usual next-token head. With several prediction heads the decoder's last
        block belongs to head 0, and every other head runs its own copy of that block on the
        trunk output (see ``Head``); all heads share the output projection.
        """
        with torch.no_grad():
            blocks = self.config.decoder.blocks_in_order
            heads = self.config.head.prediction_heads
            trunk_length = len(blocks) - 1 if heads > 1 else len(blocks)
            x = self.tensors[names.EMBEDDINGS][tokens]
            if self.config.scale_embeddings:
                # As transformers: sqrt(hidden) held as a float32 tensor, then cast to the
                # compute dtype (so a float64 forward multiplies by the float32-rounded value).
                scale = torch.tensor(self.config.hidden_size**0.5, dtype=torch.float32)
                x = x * scale.to(x.dtype)
            for index in range(trunk_length):
                x = block_forward(blocks[index], x, self.tensors, names.block_prefix(index))
            return torch.stack([self._head_logits(x, distance) for distance in range(heads)])

    def _head_logits(self, trunk: torch.Tensor, distance: int) -> torch.Tensor:
        blocks = self.config.decoder.blocks_in_order
        if distance == 0:
            block_prefix, norm_prefix = names.block_prefix(len(blocks) - 1), names.FINAL_NORM
        else:
            head_prefix = names.prediction_head_prefix(distance)
            block_prefix, norm_prefix = f"{head_prefix}.block", f"{head_prefix}.final_norm"
        x = trunk
        if self.config.head.prediction_heads > 1:
            x = block_forward(blocks[-1], trunk, self.tensors, block_prefix)
        x = normalize(x, self.config.head.final_norm, self.tensors, norm_prefix)
        return softcap(functional.linear(x, self.output_weight), self.config.head.logit_softcap)
