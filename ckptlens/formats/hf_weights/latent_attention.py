"""HF names of DeepSeek's multi-head latent attention (``DeepseekV3Attention``).

Every tensor is a rename: DeepSeek checkpoints store the rotary rows interleaved
(``rope_interleave: true``), which is the native order, and ``kv_b_proj`` keeps its per-head
order (keys then values of each head), so FP8 weights convert as bytes with their scales.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from attrs import frozen

from ckptlens.formats.hf_weights.norms import norm
from ckptlens.formats.hf_weights.pieces import Options, join, rename, suffixes
from ckptlens.lenses.errors import Violation
from ckptlens.native.nodes import latent_attention as native_names
from ckptlens.native.nodes.latent_attention import LatentAttention

if TYPE_CHECKING:
    from ckptlens.weights.lens import TensorMapping


@frozen
class LatentAttentionWeights:
    prefix: str = "self_attn"
    query: str = "q_proj"
    query_a: str = "q_a_proj"
    query_norm: str = "q_a_layernorm"
    query_b: str = "q_b_proj"
    key_value_a: str = "kv_a_proj_with_mqa"
    key_value_norm: str = "kv_a_layernorm"
    key_value_b: str = "kv_b_proj"
    output: str = "o_proj"
    node_types: ClassVar[tuple[type, ...]] = (LatentAttention,)

    def mappings(
        self, hf: str, native: str, node: LatentAttention, options: Options
    ) -> Iterator[TensorMapping]:
        hf = join(hf, self.prefix)

        def linear(hf_name: str, native_name: str, bias: bool) -> Iterator[TensorMapping]:
            for suffix in suffixes(bias):
                yield rename(f"{hf}.{hf_name}.{suffix}", f"{native}.{native_name}.{suffix}")

        def latent_norm(hf_name: str, native_name: str) -> Iterator[TensorMapping]:
            yield from norm(hf_name).mappings(
                hf, f"{native}.{native_name}", node.latent_norm, options
            )

        if node.query_rank is None:
            yield from linear(self.query, native_names.QUERY, node.query_bias)
        else:
            yield from linear(self.query_a, native_names.QUERY_A, node.query_bias)
            yield from latent_norm(self.query_norm, native_names.QUERY_NORM)
            yield from linear(self.query_b, native_names.QUERY_B, False)
        yield from linear(self.key_value_a, native_names.KEY_VALUE_A, node.key_value_bias)
        yield from latent_norm(self.key_value_norm, native_names.KEY_VALUE_NORM)
        yield from linear(self.key_value_b, native_names.KEY_VALUE_B, False)
        yield from linear(self.output, native_names.DENSE, node.dense_bias)

    def problems(self, path: str, node: LatentAttention, options: Options) -> Iterator[Violation]:
        # Every bias combination has names; the config lens ties them to ``attention_bias``.
        return iter(())


def latent_attention(prefix: str = "self_attn", **names: str) -> LatentAttentionWeights:
    """Latent attention under ``{parent}.{prefix}``; ``names`` override the projection names."""
    return LatentAttentionWeights(prefix, **names)
