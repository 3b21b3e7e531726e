"""The one table of element types: safetensors code, torch (and HF config) name, byte size.

Every other dtype mapping in ckptlens is derived from ``DTYPES``, so a new element type (say a
new float8 variant) is one row here.
"""

from __future__ import annotations

from attrs import frozen


@frozen
class DType:
    """One element type. ``floating``: ``--dtype`` may cast it (plain IEEE-like floats only).
    ``in_hf_configs``: HF ``config.json`` may state it as the model dtype. ``aliases``: other
    spellings ``--dtype`` accepts for it."""

    code: str
    name: str
    size: int
    floating: bool = False
    in_hf_configs: bool = True
    aliases: tuple[str, ...] = ()


DTYPES: tuple[DType, ...] = (
    DType("BOOL", "bool", 1),
    DType("U8", "uint8", 1),
    DType("I8", "int8", 1),
    DType("F8_E4M3", "float8_e4m3fn", 1),
    DType("F8_E5M2", "float8_e5m2", 1),
    DType("I16", "int16", 2),
    DType("U16", "uint16", 2, in_hf_configs=False),
    DType("F16", "float16", 2, floating=True, aliases=("fp16", "half")),
    DType("BF16", "bfloat16", 2, floating=True, aliases=("bf16",)),
    DType("I32", "int32", 4),
    DType("U32", "uint32", 4, in_hf_configs=False),
    DType("F32", "float32", 4, floating=True, aliases=("fp32", "float")),
    DType("I64", "int64", 8),
    DType("U64", "uint64", 8, in_hf_configs=False),
    DType("F64", "float64", 8, floating=True, aliases=("fp64",)),
)

BY_CODE: dict[str, DType] = {dtype.code: dtype for dtype in DTYPES}
DTYPE_SIZES: dict[str, int] = {dtype.code: dtype.size for dtype in DTYPES}
FLOAT_CODES = frozenset(dtype.code for dtype in DTYPES if dtype.floating)
HF_CONFIG_NAMES: tuple[str, ...] = tuple(dtype.name for dtype in DTYPES if dtype.in_hf_configs)
FLOAT_CODE_BY_NAME: dict[str, str] = {dtype.name: dtype.code for dtype in DTYPES if dtype.floating}
FLOAT_CODE_BY_SPELLING: dict[str, str] = {
    spelling: dtype.code
    for dtype in DTYPES
    if dtype.floating
    for spelling in (dtype.name, *dtype.aliases)
}
"""Every spelling of a castable float (``bfloat16``, ``bf16``, ...) to its safetensors code."""
RAW_TYPES = {1: "uint8", 2: "uint16", 4: "uint32", 8: "uint64"}
"""The unsigned integer type of each element width: how bytes are moved without reading them."""
