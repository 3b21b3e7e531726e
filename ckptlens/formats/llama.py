"""Llama (``LlamaForCausalLM``): the HF config as a table of lenses onto the native model.

Read top to bottom, each line says where one view field comes from. View paths name union
members in angle brackets: ``decoder.<fixed>.block`` is the block of a fixed decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ckptlens.formats import hf_weights as hf
from ckptlens.formats.base import declare
from ckptlens.formats.hf import ACTIVATION, EPSILON, POSITIVE, generic_keys, identity, metadata
from ckptlens.formats.rope import rope
from ckptlens.lenses import (
    Bool,
    Derive,
    Lens,
    constant,
    constraint,
    field,
    pinned,
    record,
    tag,
)
from ckptlens.lenses.fields import Field

BLOCK = "decoder.<fixed>.block"
FINAL_NORM = "head.final_norm.<rms_norm>"

Line = Lens | list[Lens]


def mixer_of(block: str) -> str:
    return f"{block}.mixer.<attention>"


def mlp_of(block: str) -> str:
    return f"{block}.mlp.<mlp>"


def norm_of(block: str) -> str:
    return f"{block}.normalization.<rms_norm>"


MIXER = mixer_of(BLOCK)
MLP = mlp_of(BLOCK)
NORM = norm_of(BLOCK)


def kv_heads_default(block: str) -> Derive:
    """``num_key_value_heads`` defaults to the query heads of the block at ``block``."""
    heads = f"{mixer_of(block)}.heads"
    return Derive(lambda view: view(heads), [heads], "num_attention_heads")


def head_size_default(block: str) -> Derive:
    """``head_dim`` defaults to ``hidden_size // num_attention_heads``."""
    heads = f"{mixer_of(block)}.heads"
    return Derive(
        lambda view: view("hidden_size") // view(heads),
        ["hidden_size", heads],
        "hidden_size // num_attention_heads",
    )


def heads_divide_hidden(block: str) -> Lens:
    """transformers refuses a config whose heads do not divide ``hidden_size``, even with an
    explicit ``head_dim``; so what this format writes must keep to that."""
    heads = f"{mixer_of(block)}.heads"
    return constraint(
        lambda view: view("hidden_size") % view(heads) == 0,
        ["hidden_size", heads],
        "hidden_size divisible by num_attention_heads",
    )


def no_mlp_biases(block: str) -> Line:
    """For formats whose MLP projections are built with ``bias=False`` and no key says so."""
    mlp = mlp_of(block)
    return [
        pinned(f"{mlp}.{name}", False, "no MLP biases in this format")
        for name in ("layer_1_bias", "layer_2_bias")
    ]


METADATA_DEFAULTS = {
    "context_length": 2048,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": None,
    "initializer_range": 0.02,
    "attention_dropout": 0.0,
    "use_cache": True,
}


def with_defaults(lines: dict[str, Line], defaults: Mapping[str, Any]) -> None:
    """Give the fields named in ``defaults`` another default (a config class's own). What a
    ``null`` reads as does not change: transformers maps ``num_key_value_heads: null`` to the
    head count even where an absent key means 8."""
    for name, default in defaults.items():
        line = lines[name]
        assert isinstance(line, Field), f"{name} is not a field"
        lines[name] = attrs.evolve(line, default=default)


def block_lines(
    block: str = BLOCK,
    reads: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    **overrides: Line,
) -> dict[str, Line]:
    """The lines of one decoder block, its view at ``block``; ``reads`` is the block's absolute
    view path when ``block`` is relative (inside a union), for derived defaults. ``overrides``
    replace lines by name, ``defaults`` change field defaults by name."""
    reads = reads or block
    mixer, mlp = mixer_of(block), mlp_of(block)
    lines: dict[str, Line] = {
        "mixer": tag(f"{block}.mixer", "attention"),
        "heads": field(f"{mixer}.heads", "num_attention_heads", POSITIVE, default=32),
        "heads_divide_hidden": heads_divide_hidden(reads),
        "kv_heads": field(
            f"{mixer}.kv_heads",
            "num_key_value_heads",
            POSITIVE,
            default=kv_heads_default(reads),
            null_means_default=True,
        ),
        "head_size": field(
            f"{mixer}.head_size",
            "head_dim",
            POSITIVE,
            default=head_size_default(reads),
            null_means_default=True,
        ),
        "attention_bias": field(
            [f"{mixer}.query_bias", f"{mixer}.key_value_bias", f"{mixer}.dense_bias"],
            "attention_bias",
            Bool(),
            default=False,
        ),
        "causal": pinned(f"{mixer}.causal", True, "causal language model"),
        "window": pinned(f"{mixer}.window", None, "no sliding window"),
        "softmax_scale": pinned(f"{mixer}.softmax_scale", None, "scale is head_dim ** -0.5"),
        "query_key_norm": pinned(f"{mixer}.query_key_norm", None, "no per-head q/k norm"),
        "rope": rope(f"{mixer}.rotary"),
        "mlp": tag(f"{block}.mlp", "mlp"),
        "intermediate_size": field(
            f"{mlp}.intermediate_size", "intermediate_size", POSITIVE, default=11008
        ),
        "gated": pinned(f"{mlp}.gated", True, "gate_proj is always there"),
        "activation": field(f"{mlp}.activation", "hidden_act", ACTIVATION, default="silu"),
        "mlp_bias": field(
            [f"{mlp}.layer_1_bias", f"{mlp}.layer_2_bias"], "mlp_bias", Bool(), default=False
        ),
        "norm": tag(f"{block}.normalization", "rms_norm"),
    }
    unknown = sorted(set(overrides) - set(lines))
    if unknown:
        raise TypeError(f"block_lines has no lines {unknown}; known: {sorted(lines)}")
    lines.update(overrides)
    with_defaults(lines, defaults or {})
    return lines


BLOCK_LINES = tuple(block_lines())


def llama_tree(
    model_type: str,
    architectures: list[str],
    defaults: Mapping[str, Any] | None = None,
    **overrides: Line,
) -> Lens:
    """The Llama table; ``overrides`` replace lines by name (block lines included) for formats
    built on Llama's keys, ``defaults`` change the defaults of field lines by name. A line
    overridden with ``[]`` is dropped."""
    lines: dict[str, Line] = {
        "identity": identity(model_type, architectures),
        "hidden_size": field("hidden_size", "hidden_size", POSITIVE, default=4096),
        "vocab_size": field("vocab_size", "vocab_size", POSITIVE, default=32000),
        "tied": field("tied_embeddings", "tie_word_embeddings", Bool(), default=False),
        "decoder": tag("decoder", "fixed"),
        "layers": field("decoder.<fixed>.num_blocks", "num_hidden_layers", POSITIVE, default=32),
        **block_lines(BLOCK),
        "final_norm": tag("head.final_norm", "rms_norm"),
        "epsilon": field(
            [f"{NORM}.epsilon", f"{FINAL_NORM}.epsilon"], "rms_norm_eps", EPSILON, default=1e-6
        ),
        "prediction_heads": pinned("head.prediction_heads", 1, "one output head"),
        "metadata": metadata(METADATA_DEFAULTS),
        # ``pretraining_tp`` only splits matmuls for bit-compatibility with Meta's original
        # tensor-parallel run; the function is the same, so it is kept but not a view field.
        # ``is_llama_config`` is a nanotron export marker.
        "extra": generic_keys("pretraining_tp", "is_llama_config"),
        # transformers always rotates half-split pairs; a config claiming interleaved rotary
        # would describe weights that transformers computes differently, so it is refused.
        "rope_interleaved": constant("rope_interleaved", False, create=False),
    }
    unknown = sorted(set(overrides) - set(lines))
    if unknown:
        raise TypeError(f"llama_tree has no lines {unknown}; known: {sorted(lines)}")
    lines.update(overrides)
    with_defaults(lines, defaults or {})
    return record(*flat(*lines.values()))


def flat(*lines: Line) -> list[Lens]:
    """The lenses of ``lines`` in order (a line is a lens or a list of them)."""
    parts: list[Lens] = []
    for line in lines:
        parts.extend(line if isinstance(line, list) else [line])
    return parts


tree = llama_tree("llama", ["LlamaForCausalLM"])
# The tensor names every Llama-derived format shares (formats reuse it like the config lines).
LLAMA_WEIGHTS = hf.decoder("model.layers.{i}", mixer=hf.attention("self_attn"), mlp=hf.mlp("mlp"))
FORMAT = declare(
    "llama",
    tree,
    ("LlamaForCausalLM",),
    weights=LLAMA_WEIGHTS,
    peer="LlamaConfig",
    peer_model="LlamaForCausalLM",
)
lens = FORMAT.lens
