"""The native checkpoint's ``config.json``: the unstructured native model plus a format version."""

from __future__ import annotations

from typing import Any

import cattrs

from ckptlens.lenses.errors import SourceError, Violation
from ckptlens.lenses.structure import cattrs_violations
from ckptlens.native.config import Model
from ckptlens.native.converter import structure, unstructure

FORMAT_NAME = "ckptlens-native"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"


def native_config_dict(model: Model) -> dict[str, Any]:
    """The JSON document a native checkpoint stores for ``model``."""
    return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "model": unstructure(model)}


def model_from_native_config(document: Any) -> Model:
    """Read a native ``config.json`` document; raises ``SourceError`` listing every problem."""
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        found = document.get("format") if isinstance(document, dict) else document
        raise SourceError([Violation("$.format", repr(FORMAT_NAME), repr(found), "native config")])
    if document.get("format_version") != FORMAT_VERSION:
        raise SourceError(
            [
                Violation(
                    "$.format_version",
                    str(FORMAT_VERSION),
                    repr(document.get("format_version")),
                    "native config",
                )
            ]
        )
    try:
        return structure(document.get("model"), Model)
    except (cattrs.BaseValidationError, ValueError, TypeError) as error:
        raise SourceError(cattrs_violations(error, "$.model")) from None
