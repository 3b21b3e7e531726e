"""HF names of projections stored fused (Phi-3): ``qkv_proj`` holds the query, key and value
rows in that order, ``gate_up_proj`` the gate rows then the up rows.

Natively the query is its own tensor and keys and values are fused, so ``qkv_proj`` is split
in three (the query and key parts reordered to the interleaved rotary order, per query head and
per key/value head), and the key and value parts joined. Native ``layer_1`` is already gate
then up, so ``gate_up_proj`` is a rename: both directions are bit-exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.attention import rotary_order
from ckptlens.formats.hf_weights.pieces import SITE, Options, join, mapping, rename, suffixes
from ckptlens.lenses.errors import Violation
from ckptlens.native.config import MLP, Attention
from ckptlens.native.nodes.attention import DENSE, KEY_VALUE, QUERY
from ckptlens.native.nodes.mlp import LAYER_1, LAYER_2

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping
    from ckptlens.weights.ops import TensorOp


def split_qkv(node: Attention) -> TensorOp:
    """``qkv_proj`` rows (query, key, value) to native ``query`` and ``key_value``."""
    from ckptlens.weights.ops import Concat, Identity, Split, chain, parallel

    q_rows = node.heads * node.head_size
    kv_rows = node.kv_heads * node.head_size
    return chain(
        Split(0, (q_rows, kv_rows, kv_rows)),
        parallel(rotary_order(node, node.heads), rotary_order(node, node.kv_heads), Identity()),
        parallel(Identity(), Concat(0, (kv_rows, kv_rows))),
    )


@frozen
class FusedAttentionWeights:
    prefix: str = "self_attn"
    fused: str = "qkv_proj"
    output: str = "o_proj"
    node_types: ClassVar[tuple[type, ...]] = (Attention,)

    def mappings(
        self, hf: str, native: str, node: Attention, options: Options
    ) -> Iterator[TensorMapping]:
        hf = join(hf, self.prefix)
        for suffix in suffixes(node.query_bias):
            native_names = (f"{native}.{QUERY}.{suffix}", f"{native}.{KEY_VALUE}.{suffix}")
            yield mapping((f"{hf}.{self.fused}.{suffix}",), native_names, split_qkv(node))
        for suffix in suffixes(node.dense_bias):
            yield rename(f"{hf}.{self.output}.{suffix}", f"{native}.{DENSE}.{suffix}")

    def problems(self, path: str, node: Attention, options: Options) -> Iterator[Violation]:
        if node.query_bias != node.key_value_bias:
            found = f"query_bias={node.query_bias}, key_value_bias={node.key_value_bias}"
            yield Violation(
                f"{path}.key_value_bias", f"one bias switch ({self.fused})", found, SITE
            )
        if node.query_key_norm is not None:
            yield Violation(f"{path}.query_key_norm", "None (no q/k norm names)", "RMSNorm", SITE)


@frozen
class FusedMLPWeights:
    prefix: str = "mlp"
    fused: str = "gate_up_proj"
    down: str = "down_proj"
    node_types: ClassVar[tuple[type, ...]] = (MLP,)

    def mappings(
        self, hf: str, native: str, node: MLP, options: Options
    ) -> Iterator[TensorMapping]:
        hf = join(hf, self.prefix)
        for suffix in suffixes(node.layer_1_bias):
            yield rename(f"{hf}.{self.fused}.{suffix}", f"{native}.{LAYER_1}.{suffix}")
        for suffix in suffixes(node.layer_2_bias):
            yield rename(f"{hf}.{self.down}.{suffix}", f"{native}.{LAYER_2}.{suffix}")

    def problems(self, path: str, node: MLP, options: Options) -> Iterator[Violation]:
        if not node.gated:
            yield Violation(f"{path}.gated", f"True ({self.fused})", "False", SITE)


def fused_attention(prefix: str = "self_attn", **names: str) -> FusedAttentionWeights:
    """Attention with one ``qkv_proj`` under ``{parent}.{prefix}``."""
    return FusedAttentionWeights(prefix, **names)


def fused_mlp(prefix: str = "mlp", **names: str) -> FusedMLPWeights:
    """A gated MLP with one ``gate_up_proj`` under ``{parent}.{prefix}``."""
    return FusedMLPWeights(prefix, **names)
