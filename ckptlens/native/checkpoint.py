"""The native checkpoint's ``config.json``: the unstructured native model plus a format version."""

from __future__ import annotations

from typing import Any

import cattrs

from ckptlens.lenses import DEEP, SourceError, Violation, quote, too_deep
from ckptlens.lenses.errors import USER_ERRORS
from ckptlens.lenses.structure import cattrs_violations
from ckptlens.native.config import Model
from ckptlens.native.converter import structure, unstructure

FORMAT_NAME = "ckptlens-native"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
HF_SOURCE = "hf_source"
TOP_LEVEL_KEYS = ("format", "format_version", "model", HF_SOURCE)


def native_config_dict(
    model: Model, hf_source: tuple[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The JSON document a native checkpoint stores for ``model``; ``hf_source`` is the HF
    format name and ``config.json`` it was converted from, kept so that converting back to
    that format gives the file back (what the native view does not hold included)."""
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "model": unstructure(model),
    }
    if hf_source is not None:
        document[HF_SOURCE] = {"format": hf_source[0], "config": hf_source[1]}
    return document


def hf_source_of(document: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The HF format and config a native checkpoint was made from, if it recorded them."""
    if HF_SOURCE not in document:
        return None
    recorded = document[HF_SOURCE]
    if (
        not isinstance(recorded, dict)
        or set(recorded) != {"format", "config"}
        or not isinstance(recorded["format"], str)
        or not isinstance(recorded["config"], dict)
    ):
        expected = 'an object {"format": NAME, "config": {...}}'
        raise SourceError([Violation(f"$.{HF_SOURCE}", expected, quote(recorded), "native config")])
    return recorded["format"], recorded["config"]


def model_from_native_config(document: Any) -> Model:
    """Read a native ``config.json`` document; raises ``SourceError`` listing every problem."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else document
        raise SourceError([Violation("$.format", repr(FORMAT_NAME), quote(found), "native config")])
    if document.get("format_version") != FORMAT_VERSION:
        raise SourceError(
            [
                Violation(
                    "$.format_version",
                    str(FORMAT_VERSION),
                    quote(document.get("format_version")),
                    "native config",
                )
            ]
        )
    unknown = [key for key in document if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise SourceError(
            [
                Violation(f"$.{key[:40]}", "a known key", "an unknown key", "native config")
                for key in unknown
            ]
        )
    model = document.get("model")
    if not isinstance(model, dict):
        raise SourceError([Violation("$.model", "a JSON object", quote(model), "native config")])
    if too_deep(model):
        raise SourceError(
            [Violation("$.model", DEEP, "a more deeply nested tree", "native config")]
        )
    try:
        return structure(model, Model)
    except (cattrs.BaseValidationError, *USER_ERRORS) as error:
        raise SourceError(cattrs_violations(error, "$.model")) from None
