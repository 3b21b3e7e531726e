"""HF names of a mixture of experts, in both on-disk layouts transformers has used (and the
shared expert and router correction bias of the ``qwen2_moe`` family).

``per_expert`` (Mixtral checkpoints): ``{per_expert}.gate.weight`` and one ``w1``/``w2``/``w3``
per expert. ``fused`` (transformers 5 in memory): ``{fused}.gate.weight`` and 3-D
``experts.gate_up_proj``/``experts.down_proj``. Natively the experts are stacked on a leading
dimension with gate then up in ``layer_1``. The piece also recognises its layout from a
checkpoint's tensor names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.mlp import mlp as gated_mlp
from ckptlens.formats.hf_weights.pieces import (
    FUSED,
    PER_EXPERT,
    SITE,
    Options,
    join,
    mapping,
    rename,
)
from ckptlens.lenses.errors import Violation
from ckptlens.native.config import MoE
from ckptlens.native.nodes.mlp import CORRECTION_BIAS, EXPERTS, LAYER_1, LAYER_2, ROUTER, SHARED

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping


@frozen
class MoEWeights:
    per_expert: str = "block_sparse_moe"
    fused: str = "mlp"
    router: str = "gate"
    gate: str = "w1"
    up: str = "w3"
    down: str = "w2"
    shared: str | None = None
    correction_bias: str | None = None
    node_types: ClassVar[tuple[type, ...]] = (MoE,)

    def mappings(
        self, hf: str, native: str, node: MoE, options: Options
    ) -> Iterator[TensorMapping]:
        from ckptlens.weights.ops import Concat, Parallel, Stack, chain

        yield from self._always_there(hf, native, node, options)
        layer_1, layer_2 = (f"{native}.{EXPERTS}.{layer}.weight" for layer in (LAYER_1, LAYER_2))
        if options.moe_layout == FUSED:
            hf = join(hf, self.fused)
            yield rename(f"{hf}.experts.gate_up_proj", layer_1)
            yield rename(f"{hf}.experts.down_proj", layer_2)
            return
        hf = join(hf, self.per_expert)
        count, size = node.experts, node.expert.intermediate_size

        def each(weight: str) -> tuple[str, ...]:
            return tuple(f"{hf}.experts.{j}.{weight}.weight" for j in range(count))

        stack_gate_up = chain(Parallel((Stack(count), Stack(count))), Concat(1, (size, size)))
        yield mapping(each(self.gate) + each(self.up), (layer_1,), stack_gate_up)
        yield mapping(each(self.down), (layer_2,), Stack(count))

    def _always_there(
        self, hf: str, native: str, node: MoE, options: Options
    ) -> Iterator[TensorMapping]:
        """The router, its correction bias and the shared expert, named alike in both layouts."""
        hf = join(hf, self.fused if options.moe_layout == FUSED else self.per_expert)
        yield rename(f"{hf}.{self.router}.weight", f"{native}.{ROUTER}.weight")
        if node.router.correction_bias:
            assert self.correction_bias is not None, "problems() refuses it first"
            bias = f"{hf}.{self.router}.{self.correction_bias}"
            yield rename(bias, f"{native}.{ROUTER}.{CORRECTION_BIAS}")
        if node.shared_expert is not None:
            assert self.shared is not None, "problems() refuses it first"
            shared = gated_mlp(self.shared, gate=self.gate, up=self.up, down=self.down)
            yield from shared.mappings(hf, f"{native}.{SHARED}", node.shared_expert, options)

    def problems(self, path: str, node: MoE, options: Options) -> Iterator[Violation]:
        if node.router.correction_bias and self.correction_bias is None:
            yield Violation(f"{path}.router.correction_bias", "False", "True", SITE)
        if node.shared_expert is not None and self.shared is None:
            yield Violation(f"{path}.shared_expert", "None", "a shared expert", SITE)
        if node.router.bias:
            yield Violation(f"{path}.router.bias", "False", "True", SITE)
        if node.expert.layer_1_bias or node.expert.layer_2_bias:
            yield Violation(f"{path}.expert", "no expert biases", "biases", SITE)
        if not node.expert.gated:
            expected = f"True ({self.gate}/{self.up})"
            yield Violation(f"{path}.expert.gated", expected, "False", SITE)

    def detect_layout(self, tensor_names: Iterable[str]) -> str | None:
        """Which layout a checkpoint uses, from its tensor names (``None``: no experts)."""
        names = list(tensor_names)
        # Fused first: with both layouts under ``mlp`` (transformers' qwen2_moe family) the
        # per-expert prefix also starts the fused names.
        if any(name.endswith(f".{self.fused}.experts.gate_up_proj") for name in names):
            return FUSED
        per_expert = f".{self.per_expert}.experts."
        for name in names:
            if per_expert in name and name.split(per_expert, 1)[1].split(".", 1)[0].isdigit():
                return PER_EXPERT
        return None


def moe(
    per_expert: str = "block_sparse_moe", fused: str = "mlp", **names: str | None
) -> MoEWeights:
    """An MoE under ``{parent}.{per_expert}`` or ``{parent}.{fused}``, by layout; ``names``
    override the tensor names (``shared`` and ``correction_bias`` enable those tensors)."""
    return MoEWeights(per_expert, fused, **names)  # type: ignore[arg-type]


QWEN2_MOE = moe(
    per_expert="mlp",
    gate="gate_proj",
    up="up_proj",
    down="down_proj",
    shared="shared_experts",
    correction_bias="e_score_correction_bias",
)
"""The names of transformers' ``qwen2_moe`` family (Qwen3-MoE, DeepSeek-V3): experts under
``mlp.experts.{j}.gate_proj`` (per expert) or fused, a DeepSeek shared expert under
``mlp.shared_experts`` and the router's ``gate.e_score_correction_bias``."""
