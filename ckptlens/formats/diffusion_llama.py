"""Diffusion-Llama (``DiffusionLlamaModel``, remote code): Llama's keys and tensors, run as a
masked-diffusion model.

What differs from Llama is what its modeling file does with them: attention is
bidirectional (no causal mask is ever built; the causal line is commented out), only
``default`` and its own ``yarn`` rotary exist, the flat ``rope_theta`` is what it reads, and the
mask token and ``use_cache: false`` are its defaults.
"""

from __future__ import annotations

from functools import partial

from ckptlens.formats.base import declare
from ckptlens.formats.blocks import llama_block, pin
from ckptlens.formats.decoders import fixed_decoder
from ckptlens.formats.hf import auto_map, generic_keys, metadata
from ckptlens.formats.llama import LLAMA_WEIGHTS, METADATA_DEFAULTS
from ckptlens.formats.rope import rope, yarn_keys
from ckptlens.formats.tables import hf_model

AUTO_MAP = {
    "AutoConfig": "configuration_diffusion_llama.DiffusionLlamaConfig",
    "AutoModel": "modeling_diffusion_llama.DiffusionLlamaModel",
}
DIFFUSION_METADATA = {**METADATA_DEFAULTS, "use_cache": False, "mask_token_id": 131072}

# Its yarn takes the correction range from ``original_max_position_embeddings`` (required,
# no fallback to ``max_position_embeddings``) and knows no mscale or truncate keys.
DIFFUSION_ROPE = partial(
    rope,
    types=("default", "yarn"),
    parameters={"yarn": yarn_keys(original_required=True, extended=False)},
    flat_theta=True,
)

block = llama_block(
    causal=pin("causal", False, "the modeling code never builds a causal mask"),
    rotary=DIFFUSION_ROPE,
)
tree = hf_model(
    "diffusion_llama",
    ["DiffusionLlamaModel"],
    decoder=fixed_decoder(block),
    metadata=metadata(DIFFUSION_METADATA),
    extra=[generic_keys("pretraining_tp"), auto_map(AUTO_MAP)],
)
FORMAT = declare(
    "diffusion_llama",
    tree,
    ("DiffusionLlamaModel",),
    weights=LLAMA_WEIGHTS,
    remote_code=True,
    notes=("bidirectional attention, as its modeling code runs by default",),
)
lens = FORMAT.lens
