"""What a format is: one declaration that yields the config lens and the weight lens."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from attrs import frozen

from ckptlens.lenses import Lens
from ckptlens.native.config import Model

if TYPE_CHECKING:
    from ckptlens.formats.hf_weights import DecoderWeights
    from ckptlens.weights.lens import WeightLens


@frozen
class Format:
    """An HF checkpoint format.

    ``lens`` relates the HF ``config.json`` dict to a native ``Model``. ``weight_naming`` is the
    format's HF tensor names, assembled from per-node pieces (``ckptlens.formats.hf_weights``)
    in the format's own module; ``weights(model)`` gives the tensor lens for that model, built
    from the same native nodes the config lens produces, so the two cannot disagree.
    ``peer`` names the transformers config class, when transformers has one: tests and
    ``canonical`` use it as the independent reference for defaults and spellings.
    ``peer_model`` names the transformers model class (``"LlamaForCausalLM"``): declaring it
    opts the format into the ModelEquiv law, which builds that model from ``create(v)`` and
    compares its logits with the native reference. ``peer_inputs``, when a model needs more
    than token ids (images, say), maps ``(view, tokens)`` to the model's keyword arguments.
    """

    name: str
    model_type: str
    architectures: tuple[str, ...]
    lens: Lens = attrs.field(repr=False)
    weight_naming: DecoderWeights | None = attrs.field(default=None, repr=False)
    peer: str | None = None
    peer_model: str | None = None
    peer_inputs: Callable[[Model, Any], dict[str, Any]] | None = attrs.field(
        default=None, repr=False
    )
    remote_code: bool = False
    notes: tuple[str, ...] = ()

    def weights(self, model: Model, **options: Any) -> WeightLens:
        """The weight lens of ``model`` in this format; ``options`` are ``hf_weights.Options``
        fields (``moe_layout``, ``tied_output_on_disk``)."""
        return self._naming().lens(model, label=f"hf {self.name}", **options)

    def weight_options(self, tensor_names: Iterable[str]) -> dict[str, Any]:
        """The ``weights`` options a checkpoint's tensor names reveal (expert layout, a tied
        output projection stored anyway)."""
        return self._naming().detect(tensor_names)

    def _naming(self) -> DecoderWeights:
        if self.weight_naming is None:
            raise LookupError(f"{self.name} declares no weight naming")
        return self.weight_naming

    def peer_config(self, hf_dict: dict[str, Any]) -> Any:
        """The transformers config object for ``hf_dict`` (imports transformers)."""
        if self.peer is None:
            raise LookupError(f"{self.name} has no config class in transformers")
        import transformers

        # ``from_dict`` standardises rope keys in place, nested dicts included: give it a copy.
        return getattr(transformers, self.peer).from_dict(copy.deepcopy(hf_dict))

    def canonical(self, hf_dict: dict[str, Any]) -> dict[str, Any]:
        """``hf_dict`` as transformers normalises it: defaults spelled out, v5 rope spelling."""
        # transformers writes rope defaults into the dict it is given: hand it a copy.
        return self.peer_config(copy.deepcopy(hf_dict)).to_dict()

    def example(self) -> Model:
        """A small valid native model in this format's domain (drawn by the laws strategies)."""
        from ckptlens.laws.strategies import example_view

        return example_view(self)


def declare(
    name: str,
    tree: Lens,
    architectures: tuple[str, ...],
    *,
    weights: DecoderWeights,
    **options: Any,
) -> Format:
    """The format ``name`` whose config lens is ``tree >> structure(Model)``: the HF tree lens
    onto the native dict, then the native dict as attrs objects, and whose tensors are named
    by ``weights`` (``hf_weights.decoder(...)``). ``model_type`` defaults to the name;
    ``options`` are the other ``Format`` fields."""
    from ckptlens.lenses import structure
    from ckptlens.native.converter import converter

    options.setdefault("model_type", name)
    lens = tree >> structure(Model, converter)
    return Format(
        name=name, architectures=architectures, lens=lens, weight_naming=weights, **options
    )
