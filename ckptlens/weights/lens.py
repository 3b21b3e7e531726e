"""Weight lenses: a checkpoint layout as a list of tensor isomorphisms onto the native names.

A ``TensorMapping`` says: these external tensors, through this op, are exactly these native
tensors. A ``WeightLens`` is the list of mappings for one model in one layout; it covers every
native tensor of the model exactly once (checked at construction), and its external shapes are
*derived* from the native ones through the inverse op, so a layout cannot disagree with the
config it was built from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from attrs import field, frozen

from ckptlens.lenses.errors import DefinitionError, Violation
from ckptlens.native.config import Model
from ckptlens.native.names import model_tensors
from ckptlens.weights.ops import Identity, Shape, ShapeError, TensorOp


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen
class TensorMapping:
    """``op`` maps the ``external`` tensors (in order) to the ``native`` tensors (in order)."""

    external: tuple[str, ...] = field(converter=_names)
    native: tuple[str, ...] = field(converter=_names)
    op: TensorOp = field(factory=Identity)

    def __attrs_post_init__(self) -> None:
        if self.op.arity_in != len(self.external) or self.op.arity_out != len(self.native):
            raise DefinitionError(
                [
                    Violation(
                        self.native[0] if self.native else "$",
                        f"{self.op!r} to take {len(self.external)} and give {len(self.native)}",
                        f"arity {self.op.arity_in} -> {self.op.arity_out}",
                        "TensorMapping",
                    )
                ]
            )

    def external_shapes(self, native_shapes: dict[str, Shape]) -> dict[str, Shape]:
        shapes = self.op.inverse().output_shapes([native_shapes[n] for n in self.native])
        return dict(zip(self.external, shapes, strict=True))


@frozen
class WeightLens:
    """All tensors of ``model`` in one layout named ``layout``."""

    layout: str
    model: Model
    mappings: tuple[TensorMapping, ...] = field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        problems = _coverage_problems(self)
        if problems:
            raise DefinitionError(problems)

    def native_shapes(self) -> dict[str, Shape]:
        return model_tensors(self.model)

    def external_shapes(self) -> dict[str, Shape]:
        """Every external tensor name with the shape the model implies, in layout order."""
        native = self.native_shapes()
        shapes: dict[str, Shape] = {}
        for mapping in self.mappings:
            shapes.update(mapping.external_shapes(native))
        return shapes

    def by_external(self) -> dict[str, TensorMapping]:
        return {name: mapping for mapping in self.mappings for name in mapping.external}

    def by_native(self) -> dict[str, TensorMapping]:
        return {name: mapping for mapping in self.mappings for name in mapping.native}

    def describe(self) -> str:
        """One line per mapping: external names -> op -> native names."""
        lines = [f"weight lens {self.layout!r}: {len(self.mappings)} mappings"]
        for mapping in self.mappings:
            lines.append(
                f"  {', '.join(mapping.external)} -> {mapping.op!r} -> {', '.join(mapping.native)}"
            )
        return "\n".join(lines)


def native_weights(model: Model) -> WeightLens:
    """The native layout itself: every native tensor under its own name."""
    names = model_tensors(model)
    return WeightLens("native", model, [TensorMapping((n,), (n,)) for n in names])


def _coverage_problems(lens: WeightLens) -> list[Violation]:
    """Every native tensor produced exactly once, every external name used once, shapes agree."""
    expected = lens.native_shapes()
    produced = Counter(n for m in lens.mappings for n in m.native)
    consumed = Counter(n for m in lens.mappings for n in m.external)
    site = f"weight lens {lens.layout!r}"
    problems = [
        Violation(name, "produced exactly once", f"produced {count} times", site)
        for name, count in produced.items()
        if count != 1 or name not in expected
    ]
    problems += [
        Violation(name, "produced by a mapping", "no mapping produces it", site)
        for name in expected
        if name not in produced
    ]
    problems += [
        Violation(name, "one external tensor per name", f"used {count} times", site)
        for name, count in consumed.items()
        if count != 1
    ]
    if problems:
        return problems
    for mapping in lens.mappings:
        try:
            mapping.external_shapes(expected)
        except ShapeError as error:
            problems.append(Violation(mapping.native[0], "consistent shapes", str(error), site))
    return problems
