"""The lens kernel: protocol, primitives, combinators, footprints, errors. Knows no models."""

from ckptlens.lenses.combinators import Compose, Record, at, record
from ckptlens.lenses.context import MISSING, Fresh, Style
from ckptlens.lenses.core import Lens
from ckptlens.lenses.custom import Problem, custom
from ckptlens.lenses.errors import DefinitionError, LensError, SourceError, ViewError, Violation
from ckptlens.lenses.fields import REQUIRED, Derive, constant, field, passthrough, pinned, tag
from ckptlens.lenses.footprints import Claim, Footprint
from ckptlens.lenses.paths import ABSENT, Member
from ckptlens.lenses.relations import constraint, derived, mirror
from ckptlens.lenses.structure import dict_of, spelling, structure, under, union, variant
from ckptlens.lenses.values import Bool, Enum, Float, Int, Json, Nullable, Str, TokenIds

__all__ = [
    "ABSENT",
    "MISSING",
    "REQUIRED",
    "Bool",
    "Claim",
    "Compose",
    "DefinitionError",
    "Derive",
    "Enum",
    "Float",
    "Footprint",
    "Fresh",
    "Int",
    "Json",
    "Lens",
    "LensError",
    "Member",
    "Nullable",
    "Problem",
    "Record",
    "SourceError",
    "Str",
    "Style",
    "TokenIds",
    "ViewError",
    "Violation",
    "at",
    "constant",
    "constraint",
    "custom",
    "derived",
    "dict_of",
    "field",
    "mirror",
    "passthrough",
    "pinned",
    "record",
    "spelling",
    "structure",
    "tag",
    "under",
    "union",
    "variant",
]
