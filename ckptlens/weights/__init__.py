"""Tensor lenses, the conversion planner, and the streaming safetensors reader and writer.

This is the generic machinery; the HF tensor names of each format are declared with the
format (``ckptlens.formats.hf_weights``).

Importing this package imports neither torch nor transformers (nor numpy): plans are data.
"""

from ckptlens.weights.convert import Side, convert, convert_between
from ckptlens.weights.destination import DestinationError
from ckptlens.weights.lens import TensorMapping, WeightLens, native_weights
from ckptlens.weights.plan import Plan, build_plan
from ckptlens.weights.safetensors_header import read_checkpoint, read_header

__all__ = [
    "DestinationError",
    "Plan",
    "Side",
    "TensorMapping",
    "WeightLens",
    "build_plan",
    "convert",
    "convert_between",
    "native_weights",
    "read_checkpoint",
    "read_header",
]
