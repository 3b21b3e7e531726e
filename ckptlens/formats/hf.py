"""Lenses for what many HF configs share: identity, generic keys, metadata, value types.

Each function returns lenses for a format table to include; the values that differ between
formats (defaults, which rope types a modeling file supports) are parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ckptlens.dtypes import HF_CONFIG_NAMES
from ckptlens.lenses import (
    Bool,
    Enum,
    Float,
    Int,
    Json,
    Lens,
    Nullable,
    TokenIds,
    constant,
    field,
    passthrough,
    pinned,
    spelling,
)
from ckptlens.native.bounds import MAX_COUNT
from ckptlens.native.config import Metadata

POSITIVE = Int(minimum=1)
# Layers, experts, prediction heads: code allocates per item, so the count is bounded first.
COUNT = Int(minimum=1, maximum=MAX_COUNT)
NON_NEGATIVE = Float(nonnegative=True)
EPSILON = Float(positive=True)

ACTIVATION = Enum(
    {"silu": "silu", "gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"},
    aliases={"swish": "silu", "gelu_new": "gelu_pytorch_tanh"},
)

# Keys every transformers ``PretrainedConfig`` may write that say nothing about the model:
# bookkeeping, task heads, and the generation defaults that v4 configs used to carry.
GENERIC_KEYS = (
    "transformers_version",
    "_name_or_path",
    "_commit_hash",
    "_attn_implementation_autoset",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "torchscript",
    "use_bfloat16",
    "tf_legacy_loss",
    "pruned_heads",
    "tie_encoder_decoder",
    "is_decoder",
    "is_encoder_decoder",
    "cross_attention_hidden_size",
    "add_cross_attention",
    "chunk_size_feed_forward",
    "finetuning_task",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "tokenizer_class",
    "prefix",
    "sep_token_id",
    "decoder_start_token_id",
    "task_specific_params",
    "max_length",
    "min_length",
    "do_sample",
    "early_stopping",
    "num_beams",
    "num_beam_groups",
    "diversity_penalty",
    "temperature",
    "top_k",
    "top_p",
    "typical_p",
    "repetition_penalty",
    "length_penalty",
    "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size",
    "bad_words_ids",
    "num_return_sequences",
    "output_scores",
    "return_dict_in_generate",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "remove_invalid_values",
    "exponential_decay_length_penalty",
    "suppress_tokens",
    "begin_suppress_tokens",
)


def generic_keys(*more: str) -> Lens:
    """Passthrough for the generic keys plus a format's own non-model keys."""
    return passthrough(*GENERIC_KEYS, *more)


def identity(model_type: str, architectures: Iterable[str]) -> list[Lens]:
    """``model_type`` must match; ``architectures`` may be absent or null but not another list."""
    return [
        constant("model_type", model_type, required=True),
        constant("architectures", list(architectures), accept=[None]),
    ]


def auto_map(entries: Mapping[str, str]) -> Lens:
    """``auto_map`` of a remote-code format, exactly as its exporter writes it. The view means
    what *these* modeling files compute (causality, rotary), so a config pointing at other
    code is refused rather than misread; ``create`` writes it so the files are found."""
    return constant("auto_map", dict(entries))


# ---------------------------------------------------------------- metadata

# view field -> (HF key, value type); ``dtype`` is separate because it has two spellings.
METADATA_KEYS: Mapping[str, tuple[str, Any]] = {
    "context_length": ("max_position_embeddings", POSITIVE),
    # transformers types bos/pad as one id and lets eos be a list (chat models stop on several).
    "bos_token_id": ("bos_token_id", Nullable(Int(minimum=0))),
    "eos_token_id": ("eos_token_id", Nullable(TokenIds())),
    "pad_token_id": ("pad_token_id", Nullable(Int(minimum=0))),
    "mask_token_id": ("mask_token_id", Nullable(Int(minimum=0))),
    # transformers v5 validates 0 <= initializer_range <= 1 when it loads a config.
    "initializer_range": ("initializer_range", Float(nonnegative=True, maximum=1.0)),
    "attention_dropout": ("attention_dropout", NON_NEGATIVE),
    "use_cache": ("use_cache", Bool()),
    "router_aux_loss_coef": ("router_aux_loss_coef", NON_NEGATIVE),
    "router_jitter_noise": ("router_jitter_noise", NON_NEGATIVE),
    "output_router_logits": ("output_router_logits", Bool()),
    # A quantized checkpoint's scheme (Qwen3's FP8 releases), kept whole as its exporter wrote
    # it: it says what the stored weights are, not what the model computes.
    "quantization": ("quantization_config", Nullable(Json())),
}


def metadata(defaults: Mapping[str, Any], implicit: Iterable[str] = ()) -> list[Lens]:
    """A field for each metadata name in ``defaults`` (with the format's default), the dtype
    spellings, and every other ``Metadata`` field pinned to ``None``: a view carrying, say,
    router knobs into a format without a router is rejected, never silently emptied.
    ``implicit`` names keys the format's config class does not write at their default."""
    implicit = set(implicit)
    lenses: list[Lens] = []
    for name, default in defaults.items():
        key, value_type = METADATA_KEYS[name]
        lenses.append(
            field(
                f"metadata.{name}",
                key,
                value_type,
                default=default,
                spell_default=name not in implicit,
            )
        )
    lenses.append(dtype())
    for attribute in attrs.fields(Metadata):
        if attribute.name not in defaults and attribute.name != "dtype":
            lenses.append(pinned(f"metadata.{attribute.name}", None, "this format has no such key"))
    return lenses


def dtype() -> Lens:
    """``dtype`` (v5) or ``torch_dtype`` (v4): one view field, the source's own spelling kept."""
    value = Nullable(Enum({name: name for name in HF_CONFIG_NAMES}))
    return spelling(
        "dtype",
        v5=field("metadata.dtype", "dtype", value, default=None),
        v4=field("metadata.dtype", "torch_dtype", value, default=None),
    )
