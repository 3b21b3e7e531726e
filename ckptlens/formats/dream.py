"""Dream (``DreamModel``, remote code): a Qwen2 checkpoint run as a masked-diffusion model.

Qwen2's block (q/k/v biases, no ``head_dim``), bidirectional attention (every attention module
sets ``is_causal = False``), the mask token, and its config class's defaults. Its modeling code
applies a sliding window only under flash-attention-2, so what a window means depends on the
attention kernel: a config that turns one on is refused; the inert window keys are kept.
"""

from __future__ import annotations

from ckptlens.formats.base import declare
from ckptlens.formats.hf import auto_map, generic_keys, metadata
from ckptlens.formats.llama import (
    BLOCK,
    LLAMA_WEIGHTS,
    METADATA_DEFAULTS,
    MIXER,
    llama_tree,
    no_mlp_biases,
)
from ckptlens.formats.qwen2 import QWEN2_DEFAULTS, head_size, qkv_biases
from ckptlens.formats.rope import rope
from ckptlens.lenses import constant, passthrough, pinned

AUTO_MAP = {
    "AutoConfig": "configuration_dream.DreamConfig",
    "AutoModel": "modeling_dream.DreamModel",
}
DREAM_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 32768,
    "bos_token_id": None,
    "eos_token_id": None,
    "use_cache": False,
    "mask_token_id": 151666,
}


tree = llama_tree(
    "dream",
    ["DreamModel"],
    defaults={**QWEN2_DEFAULTS, "vocab_size": 151936},
    head_size=head_size(BLOCK),
    attention_bias=qkv_biases(BLOCK),
    mlp_bias=no_mlp_biases(BLOCK),
    causal=pinned(f"{MIXER}.causal", False, "every attention module sets is_causal = False"),
    window=[
        pinned(f"{MIXER}.window", None, "no window outside flash-attention-2"),
        constant("use_sliding_window", False, create=False),
        # Inert while use_sliding_window is false (``max_window_layers`` is never read).
        passthrough("sliding_window", "max_window_layers"),
    ],
    rope=rope(f"{MIXER}.rotary", flat_theta=True),
    metadata=metadata(DREAM_METADATA, implicit=("bos_token_id", "eos_token_id")),
    extra=[generic_keys(), auto_map(AUTO_MAP)],
    rope_interleaved=[],
)
FORMAT = declare(
    "dream",
    tree,
    ("DreamModel",),
    weights=LLAMA_WEIGHTS,
    remote_code=True,
    notes=("bidirectional attention; a sliding window is refused",),
)
lens = FORMAT.lens
