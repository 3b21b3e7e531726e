"""HF tensor names of the Llama family, as functions of the native model.

One function per native node type (norm, attention, MLP, MoE, block, decoder, head), so the
weights follow the same dispatch as the config: a native ``Block`` has exactly the tensors its
``Attention`` and ``MLP``/``MoE`` declare, whatever the format. Formats differ only in an
``HFNaming`` (where the final norm and the multi-token-prediction heads live) and, for MoE, in
the on-disk expert layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from attrs import frozen

from ckptlens.lenses.errors import ViewError, Violation
from ckptlens.native import names
from ckptlens.native.config import (
    MLP,
    Attention,
    Block,
    LayerNorm,
    Model,
    MoE,
    Normalization,
    NoRotary,
    RMSNorm,
)
from ckptlens.weights.lens import TensorMapping, WeightLens
from ckptlens.weights.ops import (
    Concat,
    Identity,
    Parallel,
    RotaryPermute,
    Stack,
    Tie,
    chain,
    parallel,
)

PER_EXPERT = "per_expert"
FUSED = "fused"
MOE_LAYOUTS = (PER_EXPERT, FUSED)


@frozen
class HFNaming:
    """Where a Llama-family format stores the head. ``prediction_block`` and
    ``prediction_norm`` are templates indexed by the prediction distance k >= 1; ``None``
    means the format has no multi-token prediction heads."""

    final_norm: str = "model.norm"
    prediction_block: str | None = None
    prediction_norm: str | None = None

    def block_of_head(self, distance: int) -> str:
        assert self.prediction_block is not None
        return self.prediction_block.format(k=distance, j=distance - 1)

    def norm_of_head(self, distance: int) -> str:
        assert self.prediction_norm is not None
        return self.prediction_norm.format(k=distance, j=distance - 1)


STANDARD = HFNaming()
MTP = HFNaming(
    final_norm="model.mtp_norms.0",
    prediction_block="model.mtp_heads.{j}",
    prediction_norm="model.mtp_norms.{k}",
)
NAMING_BY_FORMAT: dict[str, HFNaming] = {
    "llama": STANDARD,
    "mistral": STANDARD,
    "qwen2": STANDARD,
    "mixtral": STANDARD,
    "diffusion_llama": STANDARD,
    "dream": STANDARD,
    "mtp_llama": MTP,
}
EMBEDDINGS = "model.embed_tokens.weight"
OUTPUT = "lm_head.weight"


def rename(external: str, native: str) -> TensorMapping:
    return TensorMapping((external,), (native,), Identity())


# ---------------------------------------------------------------- per node type


def norm_mappings(hf: str, native: str, norm: Normalization) -> Iterator[TensorMapping]:
    if isinstance(norm, RMSNorm | LayerNorm):
        yield rename(f"{hf}.weight", f"{native}.weight")
    if isinstance(norm, LayerNorm) and norm.bias:
        yield rename(f"{hf}.bias", f"{native}.bias")


def _rotary_order(mixer: Attention, heads: int) -> RotaryPermute | Identity:
    """HF half-split rows to native interleaved rows; without rotary the order is free."""
    if isinstance(mixer.rotary, NoRotary):
        return Identity()
    return RotaryPermute(heads, mixer.head_size)


def attention_mappings(hf: str, native: str, mixer: Attention) -> Iterator[TensorMapping]:
    q_rotary = _rotary_order(mixer, mixer.heads)
    k_rotary = _rotary_order(mixer, mixer.kv_heads)
    kv_rows = mixer.kv_heads * mixer.head_size
    fuse_kv = chain(parallel(k_rotary, Identity()), Concat(0, (kv_rows, kv_rows)))
    for suffix, present in [("weight", True), ("bias", mixer.query_bias)]:
        if present:
            yield TensorMapping((f"{hf}.q_proj.{suffix}",), (f"{native}.query.{suffix}",), q_rotary)
    for suffix, present in [("weight", True), ("bias", mixer.key_value_bias)]:
        if present:
            kv = (f"{hf}.k_proj.{suffix}", f"{hf}.v_proj.{suffix}")
            yield TensorMapping(kv, (f"{native}.key_value.{suffix}",), fuse_kv)
    yield rename(f"{hf}.o_proj.weight", f"{native}.dense.weight")
    if mixer.dense_bias:
        yield rename(f"{hf}.o_proj.bias", f"{native}.dense.bias")


def mlp_mappings(hf: str, native: str, mlp: MLP) -> Iterator[TensorMapping]:
    size = mlp.intermediate_size
    fuse = Concat(0, (size, size))
    yield TensorMapping(
        (f"{hf}.gate_proj.weight", f"{hf}.up_proj.weight"), (f"{native}.layer_1.weight",), fuse
    )
    if mlp.layer_1_bias:
        yield TensorMapping(
            (f"{hf}.gate_proj.bias", f"{hf}.up_proj.bias"), (f"{native}.layer_1.bias",), fuse
        )
    yield rename(f"{hf}.down_proj.weight", f"{native}.layer_2.weight")
    if mlp.layer_2_bias:
        yield rename(f"{hf}.down_proj.bias", f"{native}.layer_2.bias")


def moe_mappings(hf_block: str, native: str, moe: MoE, layout: str) -> Iterator[TensorMapping]:
    """Experts stacked natively; on disk one tensor per expert or transformers' fused 3-D."""
    if layout == FUSED:
        yield rename(f"{hf_block}.mlp.gate.weight", f"{native}.router.weight")
        yield rename(f"{hf_block}.mlp.experts.gate_up_proj", f"{native}.experts.layer_1.weight")
        yield rename(f"{hf_block}.mlp.experts.down_proj", f"{native}.experts.layer_2.weight")
        return
    hf = f"{hf_block}.block_sparse_moe"
    count, size = moe.experts, moe.expert.intermediate_size

    def each(weight: str) -> tuple[str, ...]:
        return tuple(f"{hf}.experts.{j}.{weight}.weight" for j in range(count))

    layer_1 = chain(Parallel((Stack(count), Stack(count))), Concat(1, (size, size)))
    yield rename(f"{hf}.gate.weight", f"{native}.router.weight")
    yield TensorMapping(each("w1") + each("w3"), (f"{native}.experts.layer_1.weight",), layer_1)
    yield TensorMapping(each("w2"), (f"{native}.experts.layer_2.weight",), Stack(count))


def block_mappings(hf: str, native: str, block: Block, moe_layout: str) -> Iterator[TensorMapping]:
    yield from norm_mappings(f"{hf}.input_layernorm", f"{native}.norm_1", block.normalization)
    yield from attention_mappings(f"{hf}.self_attn", f"{native}.mixer", block.mixer)
    norm_2 = f"{native}.norm_2"
    yield from norm_mappings(f"{hf}.post_attention_layernorm", norm_2, block.normalization)
    if isinstance(block.mlp, MoE):
        yield from moe_mappings(hf, f"{native}.mlp", block.mlp, moe_layout)
    else:
        yield from mlp_mappings(f"{hf}.mlp", f"{native}.mlp", block.mlp)


def head_mappings(model: Model, naming: HFNaming, moe_layout: str) -> Iterator[TensorMapping]:
    hidden_norm = model.head.final_norm
    yield from norm_mappings(naming.final_norm, names.FINAL_NORM, hidden_norm)
    last_block = model.decoder.blocks_in_order[-1]
    for distance in range(1, model.head.prediction_heads):
        prefix = names.prediction_head_prefix(distance)
        hf_block = naming.block_of_head(distance)
        yield from block_mappings(hf_block, f"{prefix}.block", last_block, moe_layout)
        hf_norm = naming.norm_of_head(distance)
        yield from norm_mappings(hf_norm, f"{prefix}.final_norm", hidden_norm)
    if not model.tied_embeddings:
        yield rename(OUTPUT, names.OUTPUT)


# ---------------------------------------------------------------- the lens


def llama_family_weights(
    model: Model,
    *,
    naming: HFNaming | str = STANDARD,
    moe_layout: str = PER_EXPERT,
    tied_output_on_disk: bool = False,
) -> WeightLens:
    """The HF weight lens of ``model``; ``naming`` is an ``HFNaming`` or a format name.

    ``tied_output_on_disk``: a tied model whose checkpoint still stores ``lm_head.weight`` (some
    exporters write both); the two copies are checked equal and read as one. Raises
    ``ViewError`` listing every tensor the naming cannot represent."""
    label = f"hf {naming}" if isinstance(naming, str) else "hf"
    if isinstance(naming, str):
        naming = naming_of(naming)
    problems = list(unrepresentable(model, naming, moe_layout))
    if problems:
        raise ViewError(problems)
    mappings = [rename(EMBEDDINGS, names.EMBEDDINGS)]
    if tied_output_on_disk and model.tied_embeddings:
        mappings = [TensorMapping((EMBEDDINGS, OUTPUT), (names.EMBEDDINGS,), Tie(2))]
    for index, block in enumerate(model.decoder.blocks_in_order):
        native = names.block_prefix(index)
        mappings += block_mappings(f"model.layers.{index}", native, block, moe_layout)
    mappings += head_mappings(model, naming, moe_layout)
    return WeightLens(
        f"{label} ({moe_layout} experts)" if _has_moe(model) else label, model, mappings
    )


def naming_of(format_name: str) -> HFNaming:
    """The tensor naming of a Llama-family format, by format name."""
    if format_name not in NAMING_BY_FORMAT:
        expected = f"one of {sorted(NAMING_BY_FORMAT)}"
        raise ViewError([Violation("$.format", expected, repr(format_name), "weights")])
    return NAMING_BY_FORMAT[format_name]


def detect_moe_layout(tensor_names: Iterable[str]) -> str | None:
    """Which HF expert layout a checkpoint uses, from its tensor names (``None``: no experts)."""
    for name in tensor_names:
        if ".block_sparse_moe.experts." in name:
            return PER_EXPERT
        if name.endswith(".mlp.experts.gate_up_proj"):
            return FUSED
    return None


def _has_moe(model: Model) -> bool:
    return any(isinstance(block.mlp, MoE) for block in model.decoder.blocks_in_order)


def unrepresentable(model: Model, naming: HFNaming, moe_layout: str) -> Iterator[Violation]:
    """Every native feature these HF tensor names have no place for."""
    site = "llama_family_weights"
    if moe_layout not in MOE_LAYOUTS:
        yield Violation("$.moe_layout", f"one of {list(MOE_LAYOUTS)}", repr(moe_layout), site)
    if model.head.prediction_heads > 1 and naming.prediction_block is None:
        found = str(model.head.prediction_heads)
        yield Violation("$.head.prediction_heads", "1 (no MTP heads in this format)", found, site)
    for index, block in enumerate(model.decoder.blocks_in_order):
        yield from _block_problems(f"$.decoder.blocks[{index}]", block, site)


def _block_problems(path: str, block: Block, site: str) -> Iterator[Violation]:
    # An odd head size with rotary cannot reach here: the native schema refuses it.
    mlp = block.mlp
    if isinstance(mlp, MoE):
        if mlp.shared_expert is not None:
            yield Violation(f"{path}.mlp.shared_expert", "None", "a shared expert", site)
        if mlp.router.bias:
            yield Violation(f"{path}.mlp.router.bias", "False", "True", site)
        if mlp.expert.layer_1_bias or mlp.expert.layer_2_bias:
            yield Violation(f"{path}.mlp.expert", "no expert biases", "biases", site)
        mlp = mlp.expert
    if not mlp.gated:
        yield Violation(f"{path}.mlp.gated", "True (gate_proj/up_proj)", "False", site)
