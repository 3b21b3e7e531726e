"""Leaf primitives: each owns a few source keys and/or view fields of one dict level.

| primitive | source side | view side |
|---|---|---|
| ``field`` | one key: required, defaulted or nullable | one or more fields |
| ``constant`` | one key fixed to a value | nothing |
| ``pinned`` | nothing | one field fixed to a value |
| ``passthrough`` | keys kept verbatim by put | nothing |

Relations between view fields are in ``relations``; the escape hatch is in ``custom``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import attrs
from attrs import frozen

from ckptlens.lenses.context import Deferred, NotReady, ReadContext, ViewReader, WriteContext
from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import USER_ERRORS, definition_site, quote
from ckptlens.lenses.footprints import Claim, Footprint
from ckptlens.lenses.paths import (
    ABSENT,
    INVALID,
    Path,
    Sentinel,
    as_path,
    dotted,
    equal_values,
    json_copy,
    jsonpath,
    lookup,
    nest,
    other_member,
    place,
    same,
)
from ckptlens.lenses.values import Bad, Json, ValueType

REQUIRED: Final[Sentinel] = Sentinel("REQUIRED")
"""The default of a field that has none: the key must be there."""
NOT_NULLABLE: Final[Sentinel] = Sentinel("NOT_NULLABLE")
"""The ``null_default`` of a field for which ``null`` is not a way to say the default."""


@frozen
class ViewRule:
    """A value computed from other view fields, given as absolute view paths in ``reads``."""

    compute: Callable[[ViewReader], Any]
    reads: tuple[Path, ...] = attrs.field(converter=lambda paths: tuple(map(as_path, paths)))
    text: str = ""

    def __repr__(self) -> str:
        return f"ViewRule({self.text!r})" if self.text else "ViewRule(...)"


@frozen(repr=False)
class Field(Lens):
    """One source key shown as one or more view fields (several: a key that sets many fields,
    like ``attention_bias`` for every projection; put requires them equal)."""

    views: tuple[Path, ...]
    key: str
    type: ValueType
    default: Any = REQUIRED
    spell_default: bool = True
    null_default: Any = NOT_NULLABLE

    def __repr__(self) -> str:
        views = ", ".join(repr(dotted(v)) for v in self.views)
        views = views if len(self.views) == 1 else f"[{views}]"
        extra = "" if self.default is REQUIRED else f", default={self.default!r}"
        return f"field({views}, {self.key!r}, {self.type!r}{extra})"

    @property
    def footprint(self) -> Footprint:
        subtree = isinstance(self.type, Json)
        deps = [
            path
            for rule in (self.default, self.null_default)
            if isinstance(rule, ViewRule)
            for path in rule.reads
        ]
        return Footprint(
            claims=frozenset({Claim((self.key,), subtree)}),
            view=frozenset(Claim(v) for v in self.views),
            view_deps=frozenset(deps),
        )

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        fragment: dict[str, Any] = {}
        self._read_into(fragment, src, at, ctx)
        return fragment

    def _read_into(self, view: dict, src: Any, at: Path, ctx: ReadContext) -> None:
        if not isinstance(src, dict):
            return
        path = (*at, self.key)
        ctx.claim(path, self, "subtree" if isinstance(self.type, Json) else "leaf")
        if self.key in src and src[self.key] is None and self.null_default is not NOT_NULLABLE:
            value = self._unstated(self.null_default, path)
        elif self.key in src:
            value = self.type.read(src[self.key])
            if isinstance(value, Bad):
                value = ctx.fail(self, path, value.expected, src[self.key])
        elif self.default is REQUIRED:
            value = ctx.fail(self, path, f"key {self.key!r} ({self.type.describe()})", ABSENT)
        else:
            value = self._unstated(self.default, path)
        for where in self.views:
            place(view, where, value)

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        value = self._view_value(view, vat, ctx)
        if value is INVALID:
            return new
        old_raw = lookup(old, (self.key,)) if not ctx.style.normal else ABSENT
        if old_raw is None and self._equals(value, self.null_default, ctx):
            raw = None
        else:
            raw = self.type.write(value, ABSENT if old_raw is None else old_raw)
            if raw is None and self.null_default is not NOT_NULLABLE:
                # A null would read back as ``null_default``, not as this value: leave the
                # key out (yarn's ``truncate``: absent is the default, null means false).
                new.pop(self.key, None)
                return new
        if self._keep_key(value, old, ctx):
            new[self.key] = raw
        else:
            new.pop(self.key, None)
        return new

    def _keep_key(self, value: Any, old: Any, ctx: WriteContext) -> bool:
        """Presence is presentation: a key the old source spelled out stays, one it left
        implicit stays implicit while the value is the default. A fresh source spells
        defaults out when ``spell_default``; the normal form leaves every default implicit."""
        at_default = self._at_default(value, ctx)
        if ctx.style.normal:
            return not at_default
        if ctx.fresh:
            return self.spell_default or not at_default
        return (isinstance(old, dict) and self.key in old) or not at_default

    def _one_key_for_all(self, values: list[Any], vat: Path) -> str:
        """Why fields that one key sets must agree, in the model's terms: which value each
        has, and that this format has a single key for all of them."""
        has = ", ".join(
            f"{dotted(path[-1:])}={quote(value)}"
            for path, value in zip(self.views, values, strict=True)
        )
        return (
            f"{quote(values[0])} like {jsonpath(vat + self.views[0])}: this format's single key "
            f"{self.key!r} sets all {len(self.views)} of them, and this model has {has}"
        )

    def _view_value(self, view: Any, vat: Path, ctx: WriteContext) -> Any:
        if len(self.views) == 1:  # the common case, without the lists
            value = lookup(view, self.views[0])
            if value is ABSENT:
                if not other_member(view, self.views[0]):
                    ctx.fail(self, vat + self.views[0], f"a value for {self.key!r}", ABSENT)
                return INVALID
            bad = self.type.check(value)
            if bad is not None:
                ctx.fail(self, vat + self.views[0], bad.expected, value)
                return INVALID
            return value
        values = [lookup(view, path) for path in self.views]
        ok = True
        for path, value in zip(self.views, values, strict=True):
            if value is ABSENT:
                if not other_member(view, path):
                    ctx.fail(self, vat + path, f"a value for {self.key!r}", ABSENT)
                ok = False
        if not ok:
            return INVALID
        for path, value in zip(self.views[1:], values[1:], strict=True):
            if not equal_values(value, values[0]):
                ctx.fail(self, vat + path, self._one_key_for_all(values, vat), value)
                ok = False
        bad = self.type.check(values[0])
        if bad is not None:
            ctx.fail(self, vat + self.views[0], bad.expected, values[0])
            ok = False
        return values[0] if ok else INVALID

    def _unstated(self, rule: Any, path: Path) -> Any:
        """The view value for a key left unstated (absent, or null where null has a meaning)."""
        if isinstance(rule, ViewRule):
            return Deferred(rule.compute, path, self)
        return json_copy(rule)

    def _at_default(self, value: Any, ctx: WriteContext) -> bool:
        return self._equals(value, self.default, ctx)

    def _equals(self, value: Any, rule: Any, ctx: WriteContext) -> bool:
        """Whether ``value`` is what ``rule`` (a constant or a ``ViewRule``) gives for this view."""
        if rule is REQUIRED or rule is NOT_NULLABLE:
            return False
        if isinstance(rule, ViewRule):
            try:
                rule = rule.compute(ViewReader(ctx.view_root))
            except (NotReady, *USER_ERRORS):
                return False
        return equal_values(value, rule)

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        if self.default is REQUIRED:
            default = ""
        elif isinstance(self.default, ViewRule):
            default = f"= {self.default.text}" if self.default.text else "derived"
        else:
            default = repr(self.default)
        for view in self.views:
            yield Row(
                dotted(vprefix + view),
                dotted((*sprefix, self.key)),
                "field" if len(self.views) == 1 else "field (one key, many fields)",
                default,
                self.type.describe(),
            )

    def _examples(self, vat: Path) -> Any:
        """The key absent, at its default (a derived one is filled in once the rest of the
        source is drawn), off it, or ``null`` where that means the default."""
        from hypothesis import strategies as st

        from ckptlens.laws.strategies import EMPTY, SpellDerived, value_strategy

        off = value_strategy(self.type).map(lambda value: {self.key: value})
        if self.default is REQUIRED:
            return off
        if isinstance(self.default, ViewRule):
            at_default = {self.key: SpellDerived(self, vat + self.views[0])}
        else:
            at_default = {self.key: self.type.write(self.default)}
        options = [EMPTY, st.just(at_default), off]
        if self.null_default is not NOT_NULLABLE:
            options.append(st.just({self.key: None}))
        return st.one_of(options)


def field(
    view: str | Path | Sequence[str | Path],
    key: str,
    type: ValueType,
    *,
    default: Any = REQUIRED,
    spell_default: bool = True,
    null_means_default: bool = False,
    null_default: Any = NOT_NULLABLE,
) -> Field:
    """Source key ``key`` shown at view path(s) ``view``.

    ``default``: the view value when the key is absent (a constant or a ``ViewRule``); put
    leaves the key absent if it was absent and the value is still the default, so presence
    round-trips. ``spell_default``: whether ``create`` writes the key at its default.
    ``null_default``: what a ``null`` value reads as, when null is not simply "no value"
    (transformers reads ``num_key_value_heads: null`` as the head count even where an absent
    key means 8); ``null_means_default`` is the common case where it is the default.
    """
    views = (as_path(view),) if isinstance(view, str | tuple) else tuple(as_path(v) for v in view)
    if null_means_default:
        null_default = default
    return Field(views, key, type, default, spell_default, null_default, site=definition_site())


@frozen(repr=False)
class Constant(Lens):
    """A source key fixed to ``value``; the view holds nothing. Get rejects any other value
    (``accept`` lists tolerated alternatives, such as ``null``). ``keys`` are alternative
    spellings of the key (``rope_type``/``type``): any present must hold ``value``, and put keeps
    the ones the old source used. ``create``: whether a fresh source gets the key."""

    keys: tuple[str, ...]
    value: Any
    required: bool = False
    accept: tuple[Any, ...] = ()
    create: bool = True

    def __repr__(self) -> str:
        key = self.keys[0] if len(self.keys) == 1 else list(self.keys)
        return f"constant({key!r}, {self.value!r})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(claims=frozenset(Claim((key,), True) for key in self.keys))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if not isinstance(src, dict):
            return {}
        present = [key for key in self.keys if key in src]
        for key in present:
            ctx.claim((*at, key), self, "subtree")
            if not any(same(src[key], ok) for ok in (self.value, *self.accept)):
                ctx.fail(self, (*at, key), repr(self.value), src[key])
        if self.required and not present:
            ctx.fail(self, (*at, self.keys[0]), repr(self.value), ABSENT)
        return {}

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        present = [key for key in self.keys if key in new]
        if ctx.style.normal:
            # The normal form states a required constant once, under its canonical key.
            for key in present:
                del new[key]
            if self.required:
                new[self.keys[0]] = json_copy(self.value)
            return new
        for key in present:
            # A branch switch reuses the old key spelling but must state the new value.
            if not any(same(new[key], ok) for ok in self.accept):
                new[key] = json_copy(self.value)
        if not present and (self.required or (ctx.fresh and self.create)):
            new[self.keys[0]] = json_copy(self.value)
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield Row("", dotted((*sprefix, self.keys[0])), "constant", repr(self.value))

    def _examples(self, vat: Path) -> Any:
        from hypothesis import strategies as st

        spellings = [{key: value} for key in self.keys for value in (self.value, *self.accept)]
        if len(self.keys) > 1:
            spellings.append(dict.fromkeys(self.keys, self.value))
        return st.sampled_from(spellings if self.required else [{}, *spellings])


def constant(
    key: str | Sequence[str],
    value: Any,
    *,
    required: bool = False,
    accept: Sequence[Any] = (),
    create: bool = True,
) -> Constant:
    """Source key ``key`` (or alternative spellings) always holds ``value``."""
    keys = (key,) if isinstance(key, str) else tuple(key)
    return Constant(keys, value, required, tuple(accept), create, site=definition_site())


@frozen(repr=False)
class Pinned(Lens):
    """A view field the format cannot vary: get shows ``value``; put rejects anything else."""

    view: Path
    value: Any
    reason: str = ""

    def __repr__(self) -> str:
        return f"pinned({dotted(self.view)!r}, {self.value!r})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(view=frozenset({Claim(self.view, True)}))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        return nest(self.view, json_copy(self.value))

    def _read_into(self, view: dict, src: Any, at: Path, ctx: ReadContext) -> None:
        place(view, self.view, json_copy(self.value))

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        found = lookup(view, self.view)
        if found is ABSENT and other_member(view, self.view):
            return new
        if not equal_values(found, self.value):
            why = f" ({self.reason})" if self.reason else ""
            ctx.fail(self, vat + self.view, f"{self.value!r}{why}", found)
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield Row(dotted(vprefix + self.view), "", "pinned", repr(self.value), self.reason)


def pinned(view: str | Path, value: Any, reason: str = "") -> Pinned:
    """View field ``view`` is always ``value`` in this format (``reason`` says why)."""
    return Pinned(as_path(view), value, reason, site=definition_site())


def tag(view: str | Path, member: str) -> Pinned:
    """The union at ``view`` is always its member ``member`` in this format."""
    return Pinned(
        (*as_path(view), "type"), member, f"the only {member} kind here", site=definition_site()
    )


@frozen(repr=False)
class Passthrough(Lens):
    """Source keys that are not architecture and not worth a view field (``transformers_version``):
    claimed so coverage knows them, kept verbatim by put, absent from a created source."""

    keys: tuple[str, ...]

    def __repr__(self) -> str:
        shown = ", ".join(map(repr, self.keys[:3]))
        return f"passthrough({shown}{', ...' if len(self.keys) > 3 else ''})"

    @property
    def footprint(self) -> Footprint:
        return Footprint(kept=frozenset(Claim((key,), True) for key in self.keys))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if isinstance(src, dict):
            for key in self.keys:
                if key in src:
                    ctx.claim((*at, key), self, "subtree")
        return {}

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        keys = [dotted((*sprefix, key)) for key in self.keys]
        shown = ", ".join(keys[:4]) + (f", ... ({len(keys)} keys)" if len(keys) > 4 else "")
        yield Row("", shown, "passthrough", "", "kept verbatim, not in the view")

    def _examples(self, vat: Path) -> Any:
        from hypothesis import strategies as st

        from ckptlens.laws.strategies import JSON_SCALARS

        present = st.lists(st.sampled_from(self.keys), max_size=3, unique=True)
        return present.flatmap(
            lambda keys: st.fixed_dictionaries(dict.fromkeys(keys, JSON_SCALARS))
        )


def passthrough(*keys: str) -> Passthrough:
    return Passthrough(tuple(keys), site=definition_site())
