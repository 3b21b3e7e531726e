"""Dream (``DreamModel``, remote code): a Qwen2 checkpoint run as a masked-diffusion model.

Qwen2's block (q/k/v biases, no ``head_dim``), bidirectional attention (every attention module
sets ``is_causal = False``), the mask token, and its config class's defaults. Its modeling code
applies a sliding window only under flash-attention-2, so what a window means depends on the
attention kernel: a config that turns one on is refused; the inert window keys are kept.
"""

from __future__ import annotations

from functools import partial

from ckptlens.formats.base import declare
from ckptlens.formats.blocks import pin
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import auto_map, generic_keys, metadata
from ckptlens.formats.llama import LLAMA_WEIGHTS, METADATA_DEFAULTS
from ckptlens.formats.qwen2 import QWEN2_BLOCK
from ckptlens.formats.rope import rope
from ckptlens.formats.tables import Line, hf_model
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


def no_window(mixer: str) -> Line:
    return [
        pinned(f"{mixer}.window", None, "no window outside flash-attention-2"),
        constant("use_sliding_window", False, create=False),
        # Inert while use_sliding_window is false (``max_window_layers`` is never read).
        passthrough("sliding_window", "max_window_layers"),
    ]


block = QWEN2_BLOCK.but(
    causal=pin("causal", False, "every attention module sets is_causal = False"),
    window=no_window,
    rotary=partial(rope, flat_theta=True),
)
tree = hf_model(
    "dream",
    ["DreamModel"],
    decoder=fixed_decoder(block),
    metadata=metadata(DREAM_METADATA, implicit=("bos_token_id", "eos_token_id")),
    extra=[generic_keys(), auto_map(AUTO_MAP)],
    defaults={"vocab_size": 151936},
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
