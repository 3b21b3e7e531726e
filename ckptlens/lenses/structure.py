"""Structural combinators: focus under a source key, tagged unions, spellings, dicts of lenses,
and the final iso between the native dict and its attrs object."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs
import cattrs
from attrs import frozen

from ckptlens.lenses.combinators import Record
from ckptlens.lenses.context import ReadContext, WriteContext
from ckptlens.lenses.core import Lens, Row
from ckptlens.lenses.errors import USER_ERRORS, Violation, definition_site
from ckptlens.lenses.footprints import Claim, Footprint, cached_footprint
from ckptlens.lenses.paths import (
    ABSENT,
    ANY_KEY,
    INVALID,
    TAG_KEY,
    Member,
    Path,
    as_path,
    jsonpath,
    lookup,
)
from ckptlens.lenses.tracing import report, trace
from ckptlens.lenses.values import Bad

TAG = TAG_KEY


def _one(parts: Sequence[Lens]) -> Lens:
    return parts[0] if len(parts) == 1 else Record(parts, site=definition_site())


@frozen(repr=False)
class Under(Lens):
    """Focus on the source side: ``inner`` reads and writes the dict at ``source[key]``.

    ``optional``: the key may be absent or ``null``; ``inner`` then reads an empty dict (so its
    defaults apply), and put leaves it absent/``null`` if ``inner`` writes nothing."""

    key: str
    inner: Lens
    optional: bool = False

    def __repr__(self) -> str:
        return f"under({self.key!r}, {self.inner!r})"

    def children(self) -> Sequence[Lens]:
        return (self.inner,)

    @cached_footprint
    def footprint(self) -> Footprint:
        inner = self.inner.footprint.under(source_prefix=(self.key,))
        return inner | Footprint(claims=frozenset({Claim((self.key,), container=True)}))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if not isinstance(src, dict):
            return {}
        path = (*at, self.key)
        sub = src.get(self.key, ABSENT)
        if sub is ABSENT or (sub is None and self.optional):
            if not self.optional:
                return ctx.fail(self, path, "an object", ABSENT)
            ctx.claim(path, self, "subtree" if sub is None else "container")
            return self.inner._read({}, path, ctx)
        if not isinstance(sub, dict):
            ctx.claim(path, self, "subtree")
            return ctx.fail(self, path, "an object", sub)
        ctx.claim(path, self, "container")
        return self.inner._read(sub, path, ctx)

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        old_sub = old.get(self.key, ABSENT) if isinstance(old, dict) else ABSENT
        new_sub = new.get(self.key)
        result = self.inner._write(
            view,
            vat,
            new_sub if isinstance(new_sub, dict) else {},
            old_sub if isinstance(old_sub, dict) else ABSENT,
            (*at, self.key),
            ctx,
        )
        if not self.optional or result or (isinstance(old_sub, dict) and not ctx.style.normal):
            new[self.key] = result
        elif old_sub is None and not ctx.style.normal:
            new[self.key] = None
        else:
            new.pop(self.key, None)
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield from self.inner._rows(vprefix, (*sprefix, self.key))

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        sub = src.get(self.key) if isinstance(src, dict) else None
        yield from self.inner._live_rows(sub or {}, vprefix, (*sprefix, self.key))

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        sub = src.get(self.key) if isinstance(src, dict) else None
        self.inner._strays(sub if isinstance(sub, dict) else {}, (*at, self.key), view, strays)

    def _examples(self, vat: Path) -> Any:
        from hypothesis import strategies as st

        def wrap(sub: dict[str, Any]) -> Any:
            if not sub and self.optional:
                return st.sampled_from([{}, {self.key: None}, {self.key: {}}])
            return st.just({self.key: sub})

        return self.inner._examples(vat).flatmap(wrap)


def under(key: str, *parts: Lens, optional: bool = False) -> Under:
    """Apply ``parts`` (a record if several) to the dict at source key ``key``."""
    return Under(key, _one(parts), optional, site=definition_site())


@frozen(repr=False)
class Union(Lens):
    """A tagged union. Get picks the branch with ``choose(source)``; put picks it by the view's
    ``type`` tag. A view tag with no branch is outside the domain. Switching branch removes
    every source key the old branch owned that the new one does not."""

    branches: Mapping[str, Lens] = attrs.field(converter=dict)
    choose: Callable[[Any], str | Bad]
    label: str = "union"
    where: Path = ()

    def __repr__(self) -> str:
        return f"union({self.label!r}, {list(self.branches)})"

    def children(self) -> Sequence[Lens]:
        return tuple(self.branches.values())

    @cached_footprint
    def footprint(self) -> Footprint:
        total = Footprint(view=frozenset({Claim((TAG,))}))
        for tag, branch in self.branches.items():
            total = total | branch.footprint.under(view_prefix=(Member(tag),))
        return total

    def _choose(self, src: Any) -> Any:
        """The discriminator's answer; a discriminator that fails is a bad source, not a crash."""
        try:
            tag = self.choose(src)
        except USER_ERRORS as error:
            return Bad(f"a readable {self.label} ({error})")
        return tag if isinstance(tag, Bad | str) else Bad(f"a {self.label} name")

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        tag = self._choose(src)
        if isinstance(tag, Bad) or tag not in self.branches:
            # No branch can read this; own every key any branch would, so the one error
            # names the discriminator instead of each key as unknown.
            claim_present(self, src, at, ctx)
            if isinstance(tag, Bad):
                return ctx.fail(self, at + self.where, tag.expected, lookup(src, self.where))
            supported = f"a supported {self.label}: one of {list(self.branches)}"
            return ctx.fail(self, at + self.where, supported, tag)
        fragment = self.branches[tag]._read(src, at, ctx)
        return {TAG: tag, **fragment} if isinstance(fragment, dict) else fragment

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        tag = view.get(TAG) if isinstance(view, dict) else ABSENT
        branch = self.branches.get(tag) if isinstance(tag, str) else None
        if branch is None:
            ctx.fail(self, (*vat, TAG), f"one of {list(self.branches)} ({self.label})", tag)
            return new
        old_tag = self._choose(old) if isinstance(old, dict) else None
        if isinstance(old_tag, str) and old_tag != tag and old_tag in self.branches:
            drop_owned(new, self.branches[old_tag].footprint, branch.footprint)
        return branch._write(view, vat, new, old, at, ctx)

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        for tag, branch in self.branches.items():
            yield from branch._rows((*vprefix, Member(tag)), sprefix)

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        tag = self._choose(src)
        if isinstance(tag, str) and tag in self.branches:
            yield from self.branches[tag]._live_rows(src, (*vprefix, Member(tag)), sprefix)

    def _view_claims(self, prefix: Path) -> list[tuple[Claim, Lens]]:
        claims: list[tuple[Claim, Lens]] = [(Claim((*prefix, TAG)), self)]
        for tag, branch in self.branches.items():
            claims.extend(branch._view_claims((*prefix, Member(tag))))
        return claims

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        choice_strays(self, self.choose, src, at, view, strays)

    def _examples(self, vat: Path) -> Any:
        return any_child_examples(self, vat)


def choice_strays(
    lens: Lens,
    discriminator: Callable[[Any], Any],
    src: Any,
    at: Path,
    view: Any,
    strays: list[str],
) -> None:
    """Footprint honesty of a lens that picks one of its children: what its discriminator
    reads must be declared, and each child answers for itself."""
    log: set[Path] = set()
    discriminator(trace(src, at, log))
    report(lens, log, at, strays, "read")
    for child in lens.children():
        child._strays(src, at, view, strays)


def any_child_examples(lens: Lens, vat: Path) -> Any:
    """Source fragments of a lens that picks one of its children: any child's."""
    from hypothesis import strategies as st

    return st.one_of([child._examples(vat) for child in lens.children()])


def claim_present(lens: Lens, src: Any, at: Path, ctx: ReadContext) -> None:
    """Claim, as opaque subtrees, the top-level keys of ``src`` that ``lens`` owns."""
    if isinstance(src, dict):
        for key in _top_keys(lens):
            if key in src:
                ctx.claim((*at, key), lens, "subtree")


def union(
    label: str, choose: Callable[[Any], str | Bad], *, where: str = "", **branches: Lens
) -> Union:
    """A tagged union named ``label``: ``choose`` reads the source's discriminator, found at
    source path ``where`` (for error messages)."""
    return Union(branches, choose, label, as_path(where), site=definition_site())


def variant(tag: str, *parts: Lens) -> Union:
    """A one-member union: this format only has ``tag`` here; any other view tag is rejected."""
    return Union({tag: _one(parts)}, lambda _src: tag, tag, site=definition_site())


def drop_owned(new: dict, old: Footprint, keep: Footprint) -> None:
    """Remove from ``new`` what ``old`` owned and ``keep`` does not; deepest paths first."""
    kept = {claim.path for claim in keep.claims}
    for claim in sorted(old.claims, key=lambda c: -len(c.path)):
        if claim.path in kept:
            continue
        parent = new
        for key in claim.path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or claim.path[-1] not in parent:
            continue
        if not claim.container or parent[claim.path[-1]] in ({}, None):
            del parent[claim.path[-1]]


@frozen(repr=False)
class Spelling(Lens):
    """One view, several source spellings (v4 ``rope_theta`` + ``rope_scaling`` or v5
    ``rope_parameters``; ``torch_dtype`` or ``dtype``). Get reads whichever the source uses; put
    keeps the old source's spelling; create uses the style's generation (or the first)."""

    spellings: Mapping[str, Lens] = attrs.field(converter=dict)
    label: str = "spelling"

    def __repr__(self) -> str:
        return f"spelling({self.label!r}, {list(self.spellings)})"

    def children(self) -> Sequence[Lens]:
        return tuple(self.spellings.values())

    @cached_footprint
    def footprint(self) -> Footprint:
        total = Footprint()
        for lens in self.spellings.values():
            fp = lens.footprint
            total = total | Footprint(fp.claims, fp.kept, fp.deps, fp.view, fp.view_deps)
        return total

    def detect(self, src: Any) -> str | Bad | None:
        """The spelling ``src`` uses: by which spelling's top-level keys are present."""
        if not isinstance(src, dict):
            return None
        owned = {name: _top_keys(lens) for name, lens in self.spellings.items()}
        shared = frozenset.intersection(*owned.values()) if owned else frozenset()
        used = [name for name, keys in owned.items() if (keys - shared) & src.keys()]
        if len(used) > 1:
            spelled = {name: sorted((owned[name] - shared) & src.keys()) for name in used}
            return Bad(f"one spelling of {self.label}, not a mix: {spelled}")
        return used[0] if used else None

    def preferred(self, ctx_style: Any) -> str:
        generation = getattr(ctx_style, "generation", None)
        return generation if generation in self.spellings else next(iter(self.spellings))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        name = self.detect(src)
        if isinstance(name, Bad):
            claim_present(self, src, at, ctx)
            return ctx.fail(self, at, name.expected, "<both>")
        return self.spellings[name or next(iter(self.spellings))]._read(src, at, ctx)

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        name = None if ctx.fresh else self.detect(old)
        if not isinstance(name, str):
            name = self.preferred(ctx.style) if ctx.fresh else next(iter(self.spellings))
        return self.spellings[name]._write(view, vat, new, old, at, ctx)

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        for name, lens in self.spellings.items():
            for row in lens._rows(vprefix, sprefix):
                yield attrs.evolve(row, primitive=f"{row.primitive} [{name}]")

    def _live_rows(self, src: Any, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        name = self.detect(src)
        chosen = self.spellings.get(name) if isinstance(name, str) else None
        yield from (chosen or next(iter(self.spellings.values())))._live_rows(src, vprefix, sprefix)

    def _view_claims(self, prefix: Path) -> list[tuple[Claim, Lens]]:
        # Every spelling shows the same view; count the fields once.
        return next(iter(self.spellings.values()))._view_claims(prefix)

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        choice_strays(self, self.detect, src, at, view, strays)

    def _examples(self, vat: Path) -> Any:
        return any_child_examples(self, vat)


_TOP_KEYS: dict[int, tuple[Lens, frozenset[str]]] = {}


def _top_keys(lens: Lens) -> frozenset[str]:
    """The top-level source keys ``lens`` owns (cached: lenses are immutable, and detection
    runs on every get and put)."""
    cached = _TOP_KEYS.get(id(lens))
    if cached is None or cached[0] is not lens:
        fp = lens.footprint
        cached = (lens, frozenset(claim.path[0] for claim in fp.claims | fp.kept if claim.path))
        _TOP_KEYS[id(lens)] = cached
    return cached[1]


def spelling(label: str, **spellings: Lens) -> Spelling:
    """Alternative source spellings of the same view; the first is the default."""
    return Spelling(spellings, label, site=definition_site())


@frozen(repr=False)
class DictOf(Lens):
    """A dict of named entries, each through the same lens (named blocks, per-layer configs)."""

    entry: Lens

    def __repr__(self) -> str:
        return f"dict_of({self.entry!r})"

    def children(self) -> Sequence[Lens]:
        return (self.entry,)

    @cached_footprint
    def footprint(self) -> Footprint:
        return self.entry.footprint.under((ANY_KEY,), (ANY_KEY,))

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        if not isinstance(src, dict):
            return ctx.fail(self, at, "an object of named entries", src)
        view = {}
        for name, sub in src.items():
            ctx.claim((*at, name), self, "container")
            if not isinstance(sub, dict):
                view[name] = ctx.fail(self, (*at, name), "an object", sub)
            else:
                view[name] = self.entry._read(sub, (*at, name), ctx)
        return view

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        if not isinstance(view, dict):
            ctx.fail(self, vat, "an object of named entries", view)
            return new
        for name in [name for name in new if name not in view]:
            del new[name]
        for name, entry in view.items():
            old_entry = old.get(name, ABSENT) if isinstance(old, dict) else ABSENT
            current = new.get(name)
            new[name] = self.entry._write(
                entry,
                (*vat, name),
                current if isinstance(current, dict) else {},
                old_entry,
                (*at, name),
                ctx,
            )
        return new

    def _rows(self, vprefix: Path, sprefix: Path) -> Iterator[Row]:
        yield from self.entry._rows((*vprefix, ANY_KEY), (*sprefix, ANY_KEY))

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        for name, sub in (src or {}).items():
            self.entry._strays(sub, (*at, name), lookup(view, (name,)), strays)

    def _examples(self, vat: Path) -> Any:
        from hypothesis import strategies as st

        entries = {name: self.entry._examples((*vat, name)) for name in ("a", "b", "c")}
        names = st.lists(st.sampled_from(sorted(entries)), min_size=1, max_size=3, unique=True)
        return names.flatmap(lambda chosen: st.fixed_dictionaries({n: entries[n] for n in chosen}))


def dict_of(entry: Lens) -> DictOf:
    return DictOf(entry, site=definition_site())


@frozen(repr=False)
class Structured(Lens):
    """The iso between a plain dict and an attrs object, through a cattrs converter."""

    cls: type
    converter: cattrs.Converter = attrs.field(eq=False)
    iso: ClassVar[bool] = True

    def __repr__(self) -> str:
        return f"structure({self.cls.__name__})"

    @cached_footprint
    def footprint(self) -> Footprint:
        return Footprint()

    def _strays(self, src: Any, at: Path, view: Any, strays: list[str]) -> None:
        return  # reads and writes no source key: its source is the view of the lens before

    def _read(self, src: Any, at: Path, ctx: ReadContext) -> Any:
        try:
            return self.converter.structure(src, self.cls)
        except (cattrs.BaseValidationError, ValueError, TypeError) as error:
            for violation in cattrs_violations(error, jsonpath(at)):
                ctx.violations.append(attrs.evolve(violation, lens=self.name, site=self.site))
            return INVALID

    def _write(self, view: Any, vat: Path, new: Any, old: Any, at: Path, ctx: WriteContext) -> Any:
        if not isinstance(view, self.cls):
            ctx.fail(self, vat, f"a {self.cls.__name__}", type(view).__name__)
            return new
        return self.converter.unstructure(view)


def structure(cls: type, converter: cattrs.Converter) -> Structured:
    return Structured(cls, converter, site=definition_site())


def _reason(error: BaseException, cls: Any) -> str:
    """What was wrong, in the validator's own words (which field and why) when it gave some;
    cattrs' default says only "invalid value"."""
    from cattrs.v import format_exception

    if isinstance(error, ValueError | TypeError | ArithmeticError) and error.args:
        text = (
            str(error.args[0]) if isinstance(error.args[0], str) else format_exception(error, cls)
        )
        return text if len(text) <= 200 else text[:197] + "..."
    return format_exception(error, cls)


def cattrs_violations(error: Exception, root: str) -> list[Violation]:
    """Every problem a cattrs structuring error holds, each with its JSONPath."""
    if isinstance(error, cattrs.BaseValidationError):
        messages = cattrs.transform_error(error, path=root, format_exception=_reason)
    else:
        messages = [f"{_reason(error, None)} @ {root}"]
    violations = []
    for message in messages:
        text, _, path = message.rpartition(" @ ")
        violations.append(Violation(path or root, "a valid value", text or message))
    return violations
