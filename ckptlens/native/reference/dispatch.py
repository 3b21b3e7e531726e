"""Dispatch by node class: each family module registers the forward of its own node types.

``@forward.register(Attention)`` beside the attention forward is all a new node type needs;
the block and the model call ``forward(node, x, tensors, prefix)`` without knowing which
classes exist. A node with no registered forward is a ``SourceError``, not a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.nn import functional

from ckptlens.lenses.errors import SourceError, Violation

Tensors = Mapping[str, torch.Tensor]
LENS_NAME = "native reference"


class Dispatch:
    """A function of a node, chosen by the node's exact class among the registered ones."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.by_type: dict[type, Callable[..., Any]] = {}

    def register(self, *node_types: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            for node_type in node_types:
                self.by_type[node_type] = function
            return function

        return decorate

    def __call__(self, node: Any, *args: Any) -> Any:
        function = self.by_type.get(type(node))
        if function is None:
            expected = f"a node with a {self.what} ({sorted(t.__name__ for t in self.by_type)})"
            raise SourceError([Violation("$", expected, repr(node), LENS_NAME)])
        return function(node, *args)


forward = Dispatch("reference forward")
"""``forward(node, x, tensors, prefix) -> tensor``: the node applied to ``x`` with its native
tensors under ``prefix``."""


def linear(x: torch.Tensor, tensors: Tensors, prefix: str, bias: bool) -> torch.Tensor:
    """The native linear layer ``prefix`` (``.weight`` and, when ``bias``, ``.bias``)."""
    return functional.linear(
        x, tensors[f"{prefix}.weight"], tensors[f"{prefix}.bias"] if bias else None
    )
