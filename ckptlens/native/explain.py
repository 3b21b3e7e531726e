"""``ckptlens explain`` on a native ``config.json``: each native field with its value.

An HF config is explained through its format's lens (where each view field comes from); a
native config *is* the view, so its explanation is the view itself, field by field, plus the
HF format it was converted from when it recorded one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ckptlens.lenses import Table, quote
from ckptlens.native.checkpoint import hf_source_of, model_from_native_config
from ckptlens.native.converter import TAG_KEY, unstructure


def explain_native(document: dict[str, Any]) -> Table:
    """Rows ``(field, value)`` of the native model in ``document`` (checked first: a bad
    native config raises ``SourceError`` listing every problem)."""
    model = model_from_native_config(document)
    rows = list(_rows(unstructure(model), "", ""))
    source = hf_source_of(document)
    if source is not None:
        rows.append(("hf_source", f"the {source[0]} config.json it was converted from"))
    return Table(("field", "value"), tuple(rows))


def _rows(value: Any, path: str, member: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        tag = value.get(TAG_KEY)
        for key, item in value.items():
            if key == TAG_KEY:
                continue
            inner = f"{path}.{key}" if path else key
            yield from _rows(item, inner, f" [{tag}]" if isinstance(tag, str) else "")
        return
    yield (f"{path}{member}", quote(value))
