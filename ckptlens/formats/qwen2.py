"""Qwen2 (``Qwen2ForCausalLM``): Llama's keys with q/k/v-only biases, no ``head_dim`` key, and
per-layer sliding windows.

The view shows which layers slide (see ``windows``): a ``FixedDecoder`` when every layer is
alike, else a ``PatternDecoder`` with the blocks ``full`` and ``sliding`` (identical but for
the window) and the expanded pattern. Window keys that have no effect (``sliding_window: 32768``
next to ``use_sliding_window: false`` in the real Qwen configs) are presentation: put keeps
them, the view does not show them.
"""

from __future__ import annotations

from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block, no_mlp_biases, qkv_only_biases
from ckptlens.formats.decoders import layer_windows
from ckptlens.formats.hf import generic_keys, metadata
from ckptlens.formats.llama import LLAMA_WEIGHTS, METADATA_DEFAULTS
from ckptlens.formats.tables import hf_model
from ckptlens.formats.windows import QWEN2_LAYERS
from ckptlens.lenses import constant

QWEN2_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 32768,
    "bos_token_id": None,
    "eos_token_id": None,
}

# No ``head_dim`` key: the modeling code uses ``hidden_size // num_attention_heads``.
QWEN2_BLOCK = llama_block(
    biases=qkv_only_biases,
    head_dim_key=None,
    mlp_biases=no_mlp_biases(),
    defaults={"intermediate_size": 22016, "num_key_value_heads": 32},
)

tree = hf_model(
    "qwen2",
    ["Qwen2ForCausalLM"],
    decoder=layer_windows(QWEN2_BLOCK, QWEN2_LAYERS),
    metadata=metadata(QWEN2_METADATA),
    # ``use_mrope``: Qwen2-VL's multimodal rotary, a position scheme this format does not run.
    extra=[generic_keys(), constant("use_mrope", False, create=False)],
    defaults={"vocab_size": 151936},
)
FORMAT = declare(
    "qwen2",
    tree,
    ("Qwen2ForCausalLM",),
    weights=LLAMA_WEIGHTS,
    peer="Qwen2Config",
    peer_model="Qwen2ForCausalLM",
)
lens = FORMAT.lens
