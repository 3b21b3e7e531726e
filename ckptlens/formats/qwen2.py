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
from ckptlens.formats.hf import EPSILON, generic_keys, metadata
from ckptlens.formats.llama import (
    BLOCK_LINES,
    FINAL_NORM,
    LLAMA_WEIGHTS,
    METADATA_DEFAULTS,
    Line,
    block_lines,
    flat,
    head_size_default,
    llama_tree,
    mixer_of,
    no_mlp_biases,
)
from ckptlens.formats.windows import fixed_layout, layout_kind, pattern_layout
from ckptlens.lenses import (
    at,
    constant,
    derived,
    field,
    mirror,
    pinned,
    record,
    tag,
    union,
)
from ckptlens.native.config import Attention

FIXED_BLOCK = "decoder.<fixed>.block"
FULL_BLOCK = "decoder.<pattern>.blocks.full"
QWEN2_METADATA = {
    **METADATA_DEFAULTS,
    "context_length": 32768,
    "bos_token_id": None,
    "eos_token_id": None,
}
QWEN2_DEFAULTS = {"intermediate_size": 22016, "kv_heads": 32}

# ---------------------------------------------------------------- the block


def head_size(block: str, reads: str | None = None) -> Line:
    """No ``head_dim`` key: the modeling code uses ``hidden_size // num_attention_heads``."""
    rule = head_size_default(reads or block)
    return derived(f"{mixer_of(block)}.head_size", rule.compute, list(rule.reads), rule.text)


def qkv_biases(block: str) -> Line:
    """q/k/v projections always have biases, the output projection never (hard-wired)."""
    mixer = mixer_of(block)
    return [
        pinned(f"{mixer}.query_bias", True, "q_proj always has a bias"),
        pinned(f"{mixer}.key_value_bias", True, "k_proj and v_proj always have biases"),
        pinned(f"{mixer}.dense_bias", False, "o_proj never has a bias"),
    ]


def qwen2_block(block: str, reads: str, **overrides: Line) -> dict[str, Line]:
    """Llama's block lines with Qwen2's biases, head size and defaults."""
    return block_lines(
        block,
        reads,
        defaults=QWEN2_DEFAULTS,
        head_size=head_size(block, reads),
        attention_bias=qkv_biases(block),
        mlp_bias=no_mlp_biases(block),
        **overrides,
    )


def block_epsilon(block: str) -> Line:
    """One key, ``rms_norm_eps``, sets every norm; it is read into the final norm."""
    return mirror(
        f"{block}.normalization.<rms_norm>.epsilon",
        f"{FINAL_NORM}.epsilon",
        "rms_norm_eps (the final norm's epsilon)",
    )


# ---------------------------------------------------------------- the decoder union

ATTENTION_FIELDS = [a.name for a in Attention.__attrs_attrs__ if a.name != "window"]


def sliding_copy() -> list[Line]:
    """The ``sliding`` block is the ``full`` block with a window: every other field copies."""
    mixer = mixer_of("blocks.sliding")
    return [
        *(
            mirror(f"blocks.sliding.{part}", f"{FULL_BLOCK}.{part}", "as in the 'full' block")
            for part in ("mlp", "normalization")
        ),
        tag("blocks.sliding.mixer", "attention"),
        *(
            mirror(f"{mixer}.{name}", f"{mixer_of(FULL_BLOCK)}.{name}", "as in the 'full' block")
            for name in ATTENTION_FIELDS
        ),
    ]


FIXED = record(
    *flat(
        *qwen2_block("block", FIXED_BLOCK, window=[]).values(),
        block_epsilon("block"),
        fixed_layout(),
    )
)
PATTERN = record(
    *flat(
        *qwen2_block(
            "blocks.full",
            FULL_BLOCK,
            window=pinned(f"{mixer_of('blocks.full')}.window", None, "full-attention layers"),
        ).values(),
        block_epsilon("blocks.full"),
        *sliding_copy(),
        pattern_layout(),
    )
)
DECODER = at(
    "decoder",
    union("decoder layout", layout_kind, where="layer_types", fixed=FIXED, pattern=PATTERN),
)

tree = llama_tree(
    "qwen2",
    ["Qwen2ForCausalLM"],
    defaults={"vocab_size": 151936},
    decoder=DECODER,
    layers=[],
    **{name: [] for name in BLOCK_LINES},  # the decoder union holds the block
    epsilon=field(f"{FINAL_NORM}.epsilon", "rms_norm_eps", EPSILON, default=1e-6),
    metadata=metadata(QWEN2_METADATA),
    # ``use_mrope``: Qwen2-VL's multimodal rotary, a position scheme this format does not run.
    extra=[generic_keys(), constant("use_mrope", False, create=False)],
    rope_interleaved=[],
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
