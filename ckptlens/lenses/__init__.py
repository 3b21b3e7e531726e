"""The lens kernel: protocol, primitives, combinators, footprints, errors. Knows no models.

This module is the kernel's public API: formats, native code, the laws and tests import from
here only. The submodules (``core``, ``fields``, ``paths``, ``context``, ...) are its
implementation; their other names may change. Two kinds of name are exported:

- for writing tables: the lens constructors (``field``, ``pinned``, ``record``, ``union``, ...),
  value types, ``ViewRule`` (a value computed from view fields: a derived default, a
  constraint), ``custom`` and ``Problem`` for lenses the primitives cannot express, and the
  path helpers a custom lens needs (``as_path``, ``lookup``, ``dotted``, ``is_prefix``);
- for tools over lenses (the laws, ``describe``): the lens classes a walker may need to name,
  footprints and claims, sentinels and path markers, and ``tracing``.

Walkers over lens trees are methods of ``Lens`` (``_rows``, ``_live_rows``, ``_view_claims``,
``_strays``, ``_examples``): a new combinator overrides them in its own class.
"""

from ckptlens.lenses import tracing
from ckptlens.lenses.combinators import At, Compose, Record, at, record
from ckptlens.lenses.context import MISSING, Fresh, Style, ViewReader
from ckptlens.lenses.core import DEEP, Lens, Row
from ckptlens.lenses.custom import Custom, Problem, custom
from ckptlens.lenses.describe import Table
from ckptlens.lenses.errors import (
    ArgumentError,
    DefinitionError,
    LensError,
    SourceError,
    ViewError,
    Violation,
    quote,
    table_builder,
)
from ckptlens.lenses.fields import (
    NOT_NULLABLE,
    REQUIRED,
    Constant,
    Field,
    Passthrough,
    Pinned,
    ViewRule,
    constant,
    field,
    passthrough,
    pinned,
    tag,
)
from ckptlens.lenses.footprints import Claim, Footprint
from ckptlens.lenses.paths import (
    ABSENT,
    ANY_KEY,
    INVALID,
    TAG_KEY,
    Member,
    Path,
    Sentinel,
    as_path,
    data_path,
    dotted,
    equal_values,
    is_prefix,
    lookup,
    same,
    too_deep,
)
from ckptlens.lenses.relations import Constraint, Derived, Mirror, constraint, derived, mirror
from ckptlens.lenses.structure import (
    DictOf,
    Spelling,
    Structured,
    Under,
    Union,
    dict_of,
    spelling,
    structure,
    under,
    union,
    variant,
)
from ckptlens.lenses.values import (
    Bad,
    Bool,
    Enum,
    Float,
    Int,
    Json,
    Nullable,
    Share,
    Str,
    TokenIds,
    ValueType,
)

__all__ = [
    "ABSENT",
    "ANY_KEY",
    "DEEP",
    "INVALID",
    "MISSING",
    "NOT_NULLABLE",
    "REQUIRED",
    "TAG_KEY",
    "ArgumentError",
    "At",
    "Bad",
    "Bool",
    "Claim",
    "Compose",
    "Constant",
    "Constraint",
    "Custom",
    "DefinitionError",
    "Derived",
    "DictOf",
    "Enum",
    "Field",
    "Float",
    "Footprint",
    "Fresh",
    "Int",
    "Json",
    "Lens",
    "LensError",
    "Member",
    "Mirror",
    "Nullable",
    "Passthrough",
    "Path",
    "Pinned",
    "Problem",
    "Record",
    "Row",
    "Sentinel",
    "Share",
    "SourceError",
    "Spelling",
    "Str",
    "Structured",
    "Style",
    "Table",
    "TokenIds",
    "Under",
    "Union",
    "ValueType",
    "ViewError",
    "ViewReader",
    "ViewRule",
    "Violation",
    "as_path",
    "at",
    "constant",
    "constraint",
    "custom",
    "data_path",
    "derived",
    "dict_of",
    "dotted",
    "equal_values",
    "field",
    "is_prefix",
    "lookup",
    "mirror",
    "passthrough",
    "pinned",
    "quote",
    "record",
    "same",
    "spelling",
    "structure",
    "table_builder",
    "tag",
    "too_deep",
    "tracing",
    "under",
    "union",
    "variant",
]
