"""Qwen3 (``Qwen3ForCausalLM``): Qwen2's table and layer windows, but with a ``head_dim`` key
(default 128), one ``attention_bias`` key for all four projections (Llama's), no MLP biases,
and an RMSNorm per head on queries and keys (``q_norm``/``k_norm``, epsilon ``rms_norm_eps``).

Published FP8 variants carry a ``quantization_config``; the view keeps it whole as metadata
(what the checkpoint's weights are), and conversion refuses such checkpoints until FP8 weight
conversion exists (``weights.convert``).
"""

from __future__ import annotations

from ckptlens.formats.base import declare
from ckptlens.formats.blocks import PER_HEAD_QUERY_KEY_NORM, llama_block, no_mlp_biases
from ckptlens.formats.decoders import layer_windows
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import LLAMA_WEIGHTS
from ckptlens.formats.qwen2 import QWEN2_METADATA
from ckptlens.formats.tables import hf_model
from ckptlens.formats.windows import QWEN2_LAYERS

QWEN3_BLOCK = llama_block(
    query_key_norm=PER_HEAD_QUERY_KEY_NORM,
    mlp_biases=no_mlp_biases(),
    defaults={"intermediate_size": 22016, "num_key_value_heads": 32, "head_dim": 128},
)

tree = hf_model(
    "qwen3",
    ["Qwen3ForCausalLM"],
    decoder=layer_windows(QWEN3_BLOCK, QWEN2_LAYERS),
    metadata=metadata({**QWEN2_METADATA, "quantization": None}, implicit=["quantization"]),
    extra=[generic_keys()],
    defaults={"vocab_size": 151936},
)
# ``LLAMA_WEIGHTS``' attention piece names ``q_norm``/``k_norm`` wherever the node has them.
FORMAT = declare(
    "qwen3",
    tree,
    ("Qwen3ForCausalLM",),
    weights=LLAMA_WEIGHTS,
    peer="Qwen3Config",
    peer_model="Qwen3ForCausalLM",
)
lens = FORMAT.lens
