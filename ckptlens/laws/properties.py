"""The laws of DESIGN.md, each a property of one drawn ``Example``.

An example is a source and two views drawn from the lens declarations, plus a seed for the
laws that bend their inputs. Every law sees every example, so one draw serves them all.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import attrs
from attrs import frozen
from hypothesis import reject

from ckptlens.laws import coverage
from ckptlens.laws.report import LawBroken
from ckptlens.laws.strategies import tree_of
from ckptlens.lenses import TAG_KEY, Lens, LensError, equal_values, same, tracing

UNKNOWN_KEYS = ("zz_unknown", "num_layers", "rope_thetas")


@frozen
class Target:
    """What the laws need to know about a lens: optional peer normalisation and schema."""

    name: str
    lens: Lens
    canonical: Callable[[dict], dict] | None = None
    schema: type | None = None
    unions: dict = attrs.field(factory=dict)
    generations: tuple[str, ...] = ("v5", "v4")
    # The ``Format`` (``None`` for a bare lens): the semantic laws need its model and weights.
    format: Any = None


@frozen
class Example:
    """One draw: ``source`` in the domain, ``view`` and ``other_view`` read from two others."""

    source: dict
    view: Any
    other_view: Any
    seed: int


# ---------------------------------------------------------------- the laws


def _get_put(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        source = example.source
        back = t.lens.put(t.lens.get(source), source)
        if not same(back, source):
            raise LawBroken("put(get(s), s) != s", s=source, put_get_s=back)

    return law


def _put_get(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        source, view = example.source, example.view
        written = t.lens.put(view, source)
        back = t.lens.get(written)
        if not equal_values(back, view):
            raise LawBroken(
                "get(put(v, s)) != v", s=source, v=view, put_v_s=written, get_of_it=back
            )

    return law


def _create_get(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        view = example.view
        for generation in t.generations:
            created = t.lens.create(view, generation=generation)
            back = t.lens.get(created)
            if not equal_values(back, view):
                raise LawBroken(
                    f"get(create(v, {generation})) != v", v=view, created=created, get_of_it=back
                )

    return law


def _put_put(t: Target) -> Callable[[Example], None]:
    # Exact PutPut cannot coexist with exact GetPut: a key the source left implicit must be
    # written once a view moves off its default, and nothing remembers it was implicit; keys
    # that appear are appended in the order the puts happened. So PutPut is checked up to
    # ``normalize`` (canonical spellings, implicit defaults) and key order, which still sees
    # every stale key, lost passthrough key or changed value. GetPut checks order exactly.
    def law(example: Example) -> None:
        source, first, second = example.source, example.view, example.other_view
        twice = t.lens.put(second, t.lens.put(first, source))
        once = t.lens.put(second, source)
        if not same(_sorted(t.lens.normalize(twice)), _sorted(t.lens.normalize(once))):
            raise LawBroken(
                "put(v2, put(v1, s)) != put(v2, s) (up to normalize)",
                s=source,
                v1=first,
                v2=second,
                twice=twice,
                once=once,
            )

    return law


def _sorted(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _sorted(tree[key]) for key in sorted(tree, key=str)}
    return tree


def _get_equiv(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        source = example.source
        view = t.lens.get(source)
        normal = t.lens.normalize(source)
        if not equal_values(t.lens.get(normal), view):
            raise LawBroken("get(s) != get(normalize(s))", s=source, normalized=normal)
        if t.canonical is not None:
            try:
                peer = t.canonical(source)
            except Exception:
                # The peer may be stricter than configs in the wild (transformers v5 refuses
                # ``"initializer_range": 0``, an int, which v4 wrote); such sources say nothing
                # about equivalence. What ``create`` writes must satisfy it: see
                # canonical_create.
                reject()
            _agrees_with_peer(t, peer, view, "get(s) != get(peer(s))", s=source)

    return law


def _agrees_with_peer(t: Target, peer: dict, view: Any, message: str, **sides: Any) -> None:
    """The lens reads the peer's normalisation ``peer`` back to ``view``."""
    peer_view = t.lens.get(peer)
    if not equal_values(peer_view, view):
        raise LawBroken(message, **sides, peer_normalised=peer, view=view, peer_view=peer_view)


def _canonical_create(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        view = example.view
        for generation in t.generations:
            first = t.lens.create(view, generation=generation)
            again = t.lens.create(view, generation=generation)
            if not same(first, again):
                raise LawBroken("create is not deterministic", v=view, first=first, again=again)
            round_trip = t.lens.create(t.lens.get(first), generation=generation)
            if not same(round_trip, first):
                raise LawBroken(
                    "create(get(create(v))) != create(v)",
                    v=view,
                    created=first,
                    recreated=round_trip,
                )
            if t.canonical is not None:
                peer = t.canonical(first)
                _agrees_with_peer(
                    t, peer, view, "the peer reads create(v) differently", created=first
                )

    return law


def _domain(t: Target) -> Callable[[Example], None]:
    def law(example: Example) -> None:
        source, view, seed = example.source, example.view, example.seed
        bent_view = _bend_view(view, random.Random(seed))
        if bent_view is not None:
            _agree(
                bent_view, lambda: t.lens.create(bent_view), t.lens.check_view(bent_view), "view"
            )
        bent_source = _bend_source(source, random.Random(seed))
        _agree(
            bent_source, lambda: t.lens.get(bent_source), t.lens.check_source(bent_source), "source"
        )

    return law


def _agree(value: Any, attempt: Callable[[], Any], predicted: list, side: str) -> None:
    try:
        attempt()
    except LensError as error:
        if list(error.violations) != predicted:
            raise LawBroken(
                f"the raised violations differ from check_{side}",
                input=value,
                raised=[str(v) for v in error.violations],
                predicted=[str(v) for v in predicted],
            ) from None
        if not predicted:
            raise LawBroken(f"raised although check_{side} found nothing", input=value) from None
        return
    if predicted:
        raise LawBroken(
            f"succeeded although check_{side} found violations",
            input=value,
            predicted=[str(v) for v in predicted],
        )


def _bend_view(view: Any, rng: random.Random) -> Any:
    """``view`` with one leaf moved to another value of its type (None if that is invalid)."""
    if not attrs.has(type(view)):
        return None
    from ckptlens.native.converter import structure, unstructure

    data = unstructure(view)
    if not _bend_a_leaf(data, rng):
        return None
    try:
        return structure(data, type(view))
    except Exception:
        return None


def _bend_source(source: dict, rng: random.Random) -> dict:
    """``source`` with one leaf changed, or (three times in ten) a key added."""
    bent = json.loads(json.dumps(source))
    if rng.random() < 0.7 and _bend_a_leaf(bent, rng):
        return bent
    bent[rng.choice(["unknown_key", "num_layers", "rope"])] = rng.choice([1, None, "x", {"a": 1}])
    return bent


def _bend_a_leaf(tree: dict, rng: random.Random) -> bool:
    """Change one leaf of ``tree`` in place; False if it has none."""
    leaves = list(_leaves(tree, ()))
    if not leaves:
        return False
    path, value = rng.choice(leaves)
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = _other_value(value, rng)
    return True


def _leaves(tree: Any, at: tuple) -> Any:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key != TAG_KEY:
                yield from _leaves(value, (*at, key))
    else:
        yield at, tree


def _other_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value * 2 + 1, 0, -1, 3])
    if isinstance(value, float):
        return rng.choice([value * 2 + 1, 0.0, -1.0, value + 0.5])
    if value is None:
        return rng.choice([1, 5, 0.5, True, "x"])
    return rng.choice([None, 7, "other"])


def _footprint(t: Target) -> Callable[[Example], None]:
    tree = tree_of(t.lens)
    writable = list(tree.footprint.claims)

    def law(example: Example) -> None:
        source, view = example.source, example.view
        strays = coverage.footprint_strays(tree, source, _plain(t.lens, view))
        if strays:
            raise LawBroken(
                "a lens touched source paths outside its footprint", s=source, strays=strays
            )
        written = t.lens.put(view, source)
        changed = [
            p
            for p in tracing.changed_paths(source, written)
            if not tracing.declared(p, writable, [])
        ]
        if changed:
            raise LawBroken(
                "put changed source paths outside its write footprint",
                s=source,
                v=view,
                changed=[str(p) for p in changed],
            )

    return law


def _plain(lens: Lens, view: Any) -> Any:
    """The view as the tree lens sees it (the unstructured native dict)."""
    if attrs.has(type(view)) and tree_of(lens) is not lens:
        return lens.second.converter.unstructure(view)
    return view


def _coverage(t: Target) -> Callable[[Example], None]:
    schema_problems = (
        coverage.view_coverage_problems(t.lens, t.schema, t.unions) if t.schema is not None else []
    )

    def law(example: Example) -> None:
        if schema_problems:
            raise LawBroken("the view schema is not covered", problems=schema_problems)
        source = example.source
        key = UNKNOWN_KEYS[example.seed % len(UNKNOWN_KEYS)]
        if key in source:
            return
        polluted = {**source, key: 1}
        paths = [v.path for v in t.lens.check_source(polluted)]
        if f"$.{key}" not in paths:
            raise LawBroken("an unknown key was not reported", s=polluted, violations=paths)

    return law


def _metadata_equiv(t: Target) -> Callable[[Example], None]:
    from ckptlens.laws.metadata_equiv import metadata_equiv

    return metadata_equiv(t.format)


LAW_PROPERTIES: dict[str, Callable[[Target], Callable[[Example], None]]] = {
    "get_put": _get_put,
    "put_get": _put_get,
    "create_get": _create_get,
    "put_put": _put_put,
    "get_equiv": _get_equiv,
    "canonical_create": _canonical_create,
    "domain": _domain,
    "footprint": _footprint,
    "coverage": _coverage,
    "metadata_equiv": _metadata_equiv,
}
# The semantic laws run on their own tiny models (``laws.semantic``), after these.
SEMANTIC_LAWS = ("model_equiv", "weight_round_trip")
LAWS = (*LAW_PROPERTIES, *SEMANTIC_LAWS)


def not_run_reason(t: Target, law: str) -> str | None:
    """Why ``law`` cannot be checked on ``t`` (``None``: it can)."""
    if law == "metadata_equiv":
        from ckptlens.laws.metadata_equiv import not_run_reason as reason

        return reason(t.format)
    if law in SEMANTIC_LAWS:
        from ckptlens.laws.semantic import not_run_reason as semantic_reason

        return semantic_reason(law, t.format)
    return None
