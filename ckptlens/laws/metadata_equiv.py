"""MetadataEquiv: every metadata field of a view is what transformers' config object reports.

Logits do not depend on metadata (context length, token ids, dtype, initializer range, router
knobs), so ModelEquiv cannot see a metadata key read or written wrongly the same way by get and
put. Here the oracle is the attribute transformers' config class exposes after loading
``create(v)`` and ``put(v, s)``. The attribute names below are transformers' (its
``PretrainedConfig`` API), written here independently of the formats' key tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import reject

from ckptlens.laws.report import LawBroken

# Metadata view field -> the attribute of transformers' config object that holds it.
ATTRIBUTES: dict[str, str] = {
    "context_length": "max_position_embeddings",
    "bos_token_id": "bos_token_id",
    "eos_token_id": "eos_token_id",
    "pad_token_id": "pad_token_id",
    "mask_token_id": "mask_token_id",
    "dtype": "dtype",
    "initializer_range": "initializer_range",
    "attention_dropout": "attention_dropout",
    "use_cache": "use_cache",
    "router_aux_loss_coef": "router_aux_loss_coef",
    "router_jitter_noise": "router_jitter_noise",
    "output_router_logits": "output_router_logits",
    "quantization": "quantization_config",
}


def not_run_reason(fmt: Any) -> str | None:
    if fmt is None or getattr(fmt, "peer", None) is None:
        return "no transformers config class to read metadata with"
    return None


def _plain(value: Any) -> Any:
    """transformers' spelling of a value, comparable with the view's."""
    if isinstance(value, list | tuple):
        return tuple(value)
    if type(value).__module__ == "torch":  # a torch.dtype
        return str(value).removeprefix("torch.")
    return value


def mismatches(view: Any, config: Any) -> list[str]:
    """Each metadata field whose view value differs from ``config``'s attribute."""
    problems = []
    for name, attribute in ATTRIBUTES.items():
        ours = _plain(getattr(view.metadata, name))
        theirs = _plain(getattr(config, attribute, None))
        if ours != theirs or (type(ours) is bool and type(theirs) is not bool):
            problems.append(f"metadata.{name} = {ours!r}, transformers' {attribute} = {theirs!r}")
    return problems


def metadata_equiv(fmt: Any) -> Callable[[Any], None]:
    """The law for ``fmt``: a property of one shared ``Example``."""

    def law(example: Any) -> None:
        lens = fmt.lens
        for label, written in (
            ("create(v)", lambda: lens.create(example.view)),
            ("put(v, s)", lambda: lens.put(example.view, example.source)),
        ):
            config_dict = written()
            try:
                config = _quietly(fmt.peer_config, config_dict)
            except Exception as error:
                if label == "put(v, s)":
                    # transformers is stricter than configs in the wild (a string
                    # ``pretraining_tp`` kept from the source): such a source says nothing.
                    reject()
                raise LawBroken(
                    f"transformers refuses {label}: {type(error).__name__}: {error}",
                    v=example.view,
                    written=config_dict,
                ) from None
            problems = mismatches(example.view, config)
            if problems:
                raise LawBroken(
                    f"transformers reads the metadata of {label} differently",
                    v=example.view,
                    written=config_dict,
                    problems=problems,
                )

    return law


def _quietly(function: Callable[[dict], Any], argument: dict) -> Any:
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return function(argument)
    finally:
        logging.set_verbosity(level)
