"""The HF formats ckptlens supports, and detection of a ``config.json``'s format.

Each format module declares its mapping as a table of lenses and a ``FORMAT``; this registry
lists them. Importing it imports neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ckptlens.formats import (
    deepseek_v3,
    diffusion_llama,
    dream,
    gemma2,
    llama,
    mistral,
    mixtral,
    mtp_llama,
    olmo2,
    phi3,
    qwen2,
    qwen3,
)
from ckptlens.formats.base import Format
from ckptlens.lenses import SourceError, Violation, quote

FORMATS: Mapping[str, Format] = {
    fmt.name: fmt
    for fmt in (
        llama.FORMAT,
        mistral.FORMAT,
        qwen2.FORMAT,
        phi3.FORMAT,
        qwen3.FORMAT,
        olmo2.FORMAT,
        mixtral.FORMAT,
        mtp_llama.FORMAT,
        diffusion_llama.FORMAT,
        dream.FORMAT,
        gemma2.FORMAT,
        deepseek_v3.FORMAT,
    )
}


def names() -> tuple[str, ...]:
    """The names of every supported format."""
    return tuple(FORMATS)


def get(name: str) -> Format:
    """The format called ``name``; ``SourceError`` naming the supported ones otherwise."""
    if name not in FORMATS:
        raise SourceError(
            [Violation("format", f"one of {list(FORMATS)}", quote(name), "formats.get")]
        )
    return FORMATS[name]


def detect(hf_config: Any) -> Format:
    """The format of an HF ``config.json`` dict, from its ``model_type`` and ``architectures``.

    ``model_type`` decides; ``architectures``, when present, must be the format's. Anything
    else raises a ``SourceError`` that names what was found and lists what is supported.
    """
    if not isinstance(hf_config, dict):
        raise SourceError([Violation("$", "a config object", type(hf_config).__name__)])
    model_type = hf_config.get("model_type")
    architectures = hf_config.get("architectures")
    matches = [fmt for fmt in FORMATS.values() if fmt.model_type == model_type]
    supported = ", ".join(
        f"{fmt.model_type} ({'/'.join(fmt.architectures)})" for fmt in FORMATS.values()
    )
    if not matches:
        raise SourceError(
            [
                Violation(
                    "$.model_type",
                    f"a supported model_type: {supported}",
                    f"{quote(model_type)} with architectures {quote(architectures)} "
                    "(unsupported format)",
                    "formats.detect",
                )
            ]
        )
    if architectures is None:
        return matches[0]
    for fmt in matches:
        if isinstance(architectures, list) and list(fmt.architectures) == architectures:
            return fmt
    expected = " or ".join(repr(list(fmt.architectures)) for fmt in matches)
    raise SourceError(
        [
            Violation(
                "$.architectures",
                f"{expected} for model_type {model_type!r}",
                quote(architectures),
                "formats.detect",
            )
        ]
    )


__all__ = ["FORMATS", "Format", "detect", "get", "names"]
