"""The kernel's primitives on small hand-made lenses: behaviour, errors, footprints, REPL."""

from __future__ import annotations

import copy

import pytest

from ckptlens.lenses import (
    MISSING,
    Bad,
    Bool,
    DefinitionError,
    Enum,
    Float,
    Int,
    SourceError,
    ViewError,
    ViewRule,
    at,
    constant,
    constraint,
    derived,
    dict_of,
    field,
    passthrough,
    pinned,
    record,
    same,
    spelling,
    under,
    union,
)


def small() -> record:
    return record(
        constant("kind", "toy", required=True),
        field("width", "hidden", Int(minimum=1)),
        field("depth", "layers", Int(minimum=1), default=2),
        field(
            "size",
            "head",
            Int(minimum=1),
            default=ViewRule(lambda v: v("width") // 2, ["width"], "hidden // 2"),
        ),
        field(
            "act",
            "act",
            Enum({"silu": "silu", "gelu": "gelu"}, aliases={"swish": "silu"}),
            default="silu",
        ),
        field("scale", "scale", Float(positive=True), default=1.0),
        passthrough("note"),
    )


def test_get_reads_defaults_and_derived_defaults() -> None:
    view = small().get({"kind": "toy", "hidden": 8})
    assert view == {"width": 8, "depth": 2, "size": 4, "act": "silu", "scale": 1.0}


def test_put_preserves_presence_spelling_and_order() -> None:
    lens = small()
    source = {"note": [1], "act": "swish", "scale": 2, "hidden": 8, "kind": "toy"}
    assert same(lens.put(lens.get(source), source), source)
    changed = lens.put({**lens.get(source), "depth": 3}, source)
    assert list(changed) == [*source, "layers"]  # a new key goes last, the rest keep order
    assert changed["scale"] == 2 and type(changed["scale"]) is int  # 2 still reads as 2.0
    assert changed["act"] == "swish"


def test_a_changed_value_takes_the_canonical_spelling() -> None:
    lens = small()
    source = {"kind": "toy", "hidden": 8, "act": "swish", "scale": 2}
    view = {**lens.get(source), "act": "gelu", "scale": 2.5}
    out = lens.put(view, source)
    assert out["act"] == "gelu" and out["scale"] == 2.5


def test_create_spells_defaults_out_and_normalize_leaves_them_implicit() -> None:
    lens = small()
    view = lens.get({"kind": "toy", "hidden": 8})
    created = lens.create(view)
    assert created == {
        "kind": "toy",
        "hidden": 8,
        "layers": 2,
        "head": 4,
        "act": "silu",
        "scale": 1.0,
    }
    assert lens.normalize(created) == {"kind": "toy", "hidden": 8}


def test_every_violation_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(SourceError) as raised:
        small().get({"kind": "other", "hidden": "8", "layers": 0, "mystery": 1})
    paths = [v.path for v in raised.value.violations]
    assert paths == ["$.kind", "$.hidden", "$.layers"] or set(paths) >= {
        "$.kind",
        "$.hidden",
        "$.layers",
    }
    text = str(raised.value)
    assert text.count("\n") == len(raised.value.violations)  # a header, then one line each
    assert "test_lenses.py" in text  # the responsible lens's definition site


def test_unknown_keys_are_named() -> None:
    problems = small().check_source({"kind": "toy", "hidden": 8, "mystery": {"deep": 1}})
    assert [v.path for v in problems] == ["$.mystery"]


@pytest.mark.parametrize("garbage", [None, 3, "x", [1, 2], {"kind": []}])
def test_garbage_sources_raise_source_error_only(garbage: object) -> None:
    with pytest.raises(SourceError):
        small().get(garbage)


def test_view_outside_the_domain_raises_view_error_listing_everything() -> None:
    lens = record(field("a", "a", Int(minimum=1)), pinned("b", False, "no b here"))
    with pytest.raises(ViewError) as raised:
        lens.create({"a": 0, "b": True})
    assert [v.path for v in raised.value.violations] == ["$.a", "$.b"]
    assert lens.check_view({"a": 0, "b": True}) == list(raised.value.violations)
    assert lens.check_view({"a": 1, "b": False}) == []


def test_inputs_are_never_modified() -> None:
    lens = small()
    source = {"kind": "toy", "hidden": 8, "note": {"x": [1]}}
    frozen = copy.deepcopy(source)
    view = lens.get(source)
    view_copy = copy.deepcopy(view)
    lens.put({**view, "width": 16}, source)
    assert source == frozen and view == view_copy


def test_overlapping_footprints_are_a_definition_error_naming_both_sites() -> None:
    with pytest.raises(DefinitionError) as raised:
        record(field("a", "x", Int()), field("b", "x", Int()))
    text = str(raised.value)
    assert "$.x" in text and text.count("test_lenses.py") >= 2


def test_one_key_many_fields_requires_them_equal() -> None:
    lens = field(["q", "k"], "bias", Bool(), default=False)
    assert lens.get({"bias": True}) == {"q": True, "k": True}
    problems = lens.check_view({"q": True, "k": False})
    assert [v.path for v in problems] == ["$.k"]


def rope_like() -> record:
    def kind(src: object) -> str | Bad:
        scaling = src.get("scaling") if isinstance(src, dict) else None
        return "plain" if scaling is None else scaling.get("type", "?")

    return union(
        "scaling",
        kind,
        where="scaling.type",
        plain=record(constant("scaling", None, create=False)),
        linear=under(
            "scaling", constant("type", "linear", required=True), field("factor", "factor", Float())
        ),
    )


def test_union_switch_drops_the_old_branch_keys() -> None:
    lens = rope_like()
    linear = {"scaling": {"type": "linear", "factor": 2.0}}
    assert lens.get(linear) == {"type": "linear", "factor": 2.0}
    assert lens.put({"type": "plain"}, linear) == {"scaling": None}
    assert lens.put({"type": "linear", "factor": 3.0}, {"scaling": None}) == {
        "scaling": {"type": "linear", "factor": 3.0}
    }
    with pytest.raises(ViewError, match="plain"):
        lens.create({"type": "yarn"})
    with pytest.raises(SourceError, match=r"\$\.scaling\.type"):
        lens.get({"scaling": {"type": "yarn"}})


def test_spelling_keeps_the_old_spelling_and_refuses_a_mix() -> None:
    lens = spelling(
        "dtype",
        v5=field("d", "dtype", Int(), default=0),
        v4=field("d", "torch_dtype", Int(), default=0),
    )
    assert lens.put({"d": 2}, {"torch_dtype": 1}) == {"torch_dtype": 2}
    assert lens.create({"d": 2}) == {"dtype": 2}
    assert lens.create({"d": 2}, generation="v4") == {"torch_dtype": 2}
    with pytest.raises(SourceError, match="mix"):
        lens.get({"dtype": 1, "torch_dtype": 1})


def test_dict_of_and_focus() -> None:
    lens = under("blocks", dict_of(record(field("n", "n", Int()))))
    lens = at("named", lens)
    source = {"blocks": {"a": {"n": 1}, "b": {"n": 2}}}
    view = lens.get(source)
    assert view == {"named": {"a": {"n": 1}, "b": {"n": 2}}}
    assert lens.put({"named": {"b": {"n": 5}}}, source) == {"blocks": {"b": {"n": 5}}}


def test_derived_and_constraint_check_agreement() -> None:
    lens = record(
        field("a", "a", Int()),
        derived("twice", lambda v: 2 * v("a"), ["a"], "2 * a"),
        constraint(lambda v: v("a") % 2 == 0, ["a"], "a even"),
    )
    assert lens.get({"a": 2}) == {"a": 2, "twice": 4}
    assert [v.path for v in lens.check_source({"a": 3})] == ["$"]
    assert [v.path for v in lens.check_view({"a": 2, "twice": 5})] == ["$.twice"]
    assert [v.path for v in lens.check_view({"a": 3, "twice": 6})] == ["$.a"]


def test_create_is_put_on_missing() -> None:
    lens = small()
    view = lens.get({"kind": "toy", "hidden": 8})
    assert lens.put(view, MISSING) == lens.create(view)


def test_repr_is_short_and_describe_is_a_table() -> None:
    lens = small()
    assert repr(lens).startswith("record(constant('kind', 'toy'), field('width', 'hidden'")
    assert len(repr(lens)) < 160
    table = lens.describe()
    assert table.column("source")[:3] == ["kind", "hidden", "layers"]
    assert "hidden // 2" in str(table)
    explained = lens.explain({"kind": "toy", "hidden": 8})
    assert ("size", "4") in [(row[0], row[1]) for row in explained.rows]
