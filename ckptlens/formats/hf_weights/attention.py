"""HF names of attention: separate q/k/v/o projections, half-split rotary rows, and the
query/key norms ``q_norm``/``k_norm`` (per head in Qwen3, over the projection in OLMo 2).
Natively keys and values are fused and rows interleaved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.pieces import Options, join, mapping, rename, suffixes
from ckptlens.lenses.errors import Violation
from ckptlens.native.config import Attention, NoRotary
from ckptlens.native.nodes.attention import DENSE, KEY_NORM, KEY_VALUE, QUERY, QUERY_NORM
from ckptlens.native.nodes.rotary import rotated_size

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping
    from ckptlens.weights.ops import TensorOp


def rotary_order(mixer: Attention, heads: int) -> TensorOp:
    """HF half-split rows to native interleaved rows (the rotated features of each head only,
    with partial rotary); without rotary the order is free."""
    from ckptlens.weights.ops import Identity, RotaryPermute

    if isinstance(mixer.rotary, NoRotary):
        return Identity()
    rotated = rotated_size(mixer.rotary, mixer.head_size)
    partial = None if rotated == mixer.head_size else rotated
    return RotaryPermute(heads, mixer.head_size, rotated=partial)


@frozen
class AttentionWeights:
    prefix: str = "self_attn"
    query: str = "q_proj"
    key: str = "k_proj"
    value: str = "v_proj"
    output: str = "o_proj"
    query_norm: str = "q_norm"
    key_norm: str = "k_norm"
    node_types: ClassVar[tuple[type, ...]] = (Attention,)

    def mappings(
        self, hf: str, native: str, node: Attention, options: Options
    ) -> Iterator[TensorMapping]:
        from ckptlens.weights.ops import Concat, Identity, chain, parallel

        hf = join(hf, self.prefix)
        q_rotary = rotary_order(node, node.heads)
        k_rotary = rotary_order(node, node.kv_heads)
        kv_rows = node.kv_heads * node.head_size
        fuse_kv = chain(parallel(k_rotary, Identity()), Concat(0, (kv_rows, kv_rows)))
        for suffix in suffixes(node.query_bias):
            external = (f"{hf}.{self.query}.{suffix}",)
            yield mapping(external, (f"{native}.{QUERY}.{suffix}",), q_rotary)
        for suffix in suffixes(node.key_value_bias):
            kv = (f"{hf}.{self.key}.{suffix}", f"{hf}.{self.value}.{suffix}")
            yield mapping(kv, (f"{native}.{KEY_VALUE}.{suffix}",), fuse_kv)
        for suffix in suffixes(node.dense_bias):
            yield rename(f"{hf}.{self.output}.{suffix}", f"{native}.{DENSE}.{suffix}")
        if node.query_key_norm is not None:
            # one head's features (or the whole projection's), in the rows' rotary order
            query_heads, key_heads = node.query_key_norm_heads
            norms = [
                (self.query_norm, QUERY_NORM, query_heads),
                (self.key_norm, KEY_NORM, key_heads),
            ]
            for name, native_name, heads in norms:
                external = (f"{hf}.{name}.weight",)
                order = rotary_order(node, heads)
                yield mapping(external, (f"{native}.{native_name}.weight",), order)

    def problems(self, path: str, node: Attention, options: Options) -> Iterator[Violation]:
        # An odd head size with rotary cannot reach here: the native schema refuses it.
        return iter(())


def attention(prefix: str = "self_attn", **names: str) -> AttentionWeights:
    """Attention under ``{parent}.{prefix}``; ``names`` override the projection names."""
    return AttentionWeights(prefix, **names)
