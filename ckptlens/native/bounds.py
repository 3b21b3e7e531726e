"""Sane bounds on the counts a config states (layers, experts, prediction heads).

Code allocates per layer and per expert (layer patterns, tensor names, plans), so a count read
from a file is checked before anything grows with it: ``num_hidden_layers: 10**12`` must be a
violation, not a ``MemoryError`` or a loop without end. The bound is far above any published
model (the deepest decoders have about 130 layers, the widest mixtures a few hundred experts)
and far below what would exhaust memory; a conversion also checks the layer count against the
tensors actually on disk.
"""

from __future__ import annotations

from typing import Any

import attrs

MAX_COUNT = 10_000


def count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An attrs validator: an integer in ``1 .. MAX_COUNT``."""
    if type(value) is not int or not 1 <= value <= MAX_COUNT:
        raise ValueError(
            f"{attribute.name} must be an integer from 1 to {MAX_COUNT}, got "
            f"{value if type(value) is not int or value.bit_length() < 64 else 'a huge integer'}"
        )
