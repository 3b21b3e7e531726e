"""The harness must catch bugs: each deliberately broken Llama lens fails the law it breaks.

Every broken lens is the real Llama table with one lens replaced, so a failure can only come
from that lens.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

from ckptlens import laws
from ckptlens.formats import llama
from ckptlens.lenses import (
    ABSENT,
    Int,
    Lens,
    Record,
    Spelling,
    Union,
    ViewRule,
    custom,
    field,
    structure,
)
from ckptlens.native.config import Model
from ckptlens.native.converter import converter


def part(text: str) -> Any:
    """The one lens of Llama's table whose repr contains ``text``."""
    (found,) = [lens for lens in llama.tree.parts if text in repr(lens)]
    return found


def broken_llama(name: str, replace: Any = None, by: Any = ()) -> laws.Target:
    """Llama's table with the lens ``replace`` replaced by the lenses ``by``."""
    by = [by] if isinstance(by, Lens) else list(by)
    parts = [new for lens in llama.tree.parts for new in (by if lens is replace else [lens])]
    lens = Record(tuple(parts)) >> structure(Model, converter)
    return attrs.evolve(laws.target_of(llama.FORMAT), name=name, lens=lens)


def failures(target: laws.Target, law: str) -> list[str]:
    return laws.check(target, laws=[law], profile="ci").failed()


VOCAB_EXAMPLES = st.fixed_dictionaries({}, optional={"vocab_size": st.integers(1, 64)})


def test_the_real_llama_lens_passes_the_laws_these_tests_use() -> None:
    target = laws.target_of(llama.FORMAT)
    assert laws.check(target, laws=["put_get", "footprint", "get_put"], profile="dev").ok


def test_a_lens_that_drops_a_field_on_put_fails_put_get() -> None:
    drops = custom(
        "vocab that put ignores",
        read=lambda src: {"vocab_size": src.get("vocab_size", 32000)},
        write=lambda view, old: {},
        keys=["vocab_size"],
        views=["vocab_size"],
        examples=VOCAB_EXAMPLES,
    )
    assert "put_get" in failures(
        broken_llama("drops vocab", part("'vocab_size'"), drops), "put_get"
    )


def test_a_lens_whose_footprint_lies_fails_footprint() -> None:
    def read(src: dict) -> dict:
        src.get("hidden_size")  # an undeclared read
        return {"vocab_size": src.get("vocab_size", 32000)}

    def write(view: dict, old: Any) -> dict:
        spelled = isinstance(old, dict) and "vocab_size" in old
        keep = spelled or view["vocab_size"] != 32000
        return {"vocab_size": view["vocab_size"] if keep else ABSENT}

    lies = custom(
        "vocab",
        read=read,
        write=write,
        keys=["vocab_size"],
        views=["vocab_size"],
        examples=VOCAB_EXAMPLES,
    )
    target = broken_llama("lying footprint", part("'vocab_size'"), lies)
    assert failures(target, "footprint") == ["footprint"]
    assert failures(target, "get_put") == []  # the lie is invisible to the round trips


@attrs.frozen(repr=False)
class AlwaysV5(Spelling):
    """Writes the v5 rope spelling whatever the old source used."""

    def _write(self, view, vat, new, old, at, ctx):  # type: ignore[no-untyped-def]
        return self.spellings["v5"]._write(view, vat, new, old, at, ctx)


def test_a_lens_that_rewrites_v4_rope_as_v5_fails_get_put() -> None:
    original = part("rotary")
    rewrites = attrs.evolve(
        original, inner=AlwaysV5(original.inner.spellings, original.inner.label)
    )
    assert "get_put" in failures(broken_llama("v4 as v5", original, rewrites), "get_put")


def test_a_wrong_derived_default_fails_get_equiv_against_transformers() -> None:
    mixer = "decoder.<fixed>.block.mixer.<attention>"
    wrong = ViewRule(
        lambda v: v("hidden_size") // v(f"{mixer}.kv_heads"),
        ["hidden_size", f"{mixer}.kv_heads"],
        "hidden_size // num_key_value_heads",
    )
    head_size = field(f"{mixer}.head_size", "head_dim", Int(minimum=1), default=wrong)
    target = broken_llama("wrong head_dim default", part("'head_dim'"), head_size)
    assert failures(target, "get_equiv") == ["get_equiv"]


@attrs.frozen(repr=False)
class SortsKeys(Record):
    """A record whose put returns the keys sorted."""

    def _write(self, view, vat, new, old, at, ctx):  # type: ignore[no-untyped-def]
        written = super()._write(view, vat, new, old, at, ctx)
        return dict(sorted(written.items()))


def test_a_lens_that_reorders_keys_fails_get_put() -> None:
    lens = SortsKeys(llama.tree.parts) >> structure(Model, converter)
    target = attrs.evolve(laws.target_of(llama.FORMAT), name="sorts keys", lens=lens)
    assert failures(target, "get_put") == ["get_put"]


@attrs.frozen(repr=False)
class KeepsOldBranch(Union):
    """A union that switches branch without dropping the old branch's keys."""

    def _write(self, view, vat, new, old, at, ctx):  # type: ignore[no-untyped-def]
        return self.branches[view["type"]]._write(view, vat, new, old, at, ctx)


def test_a_union_that_forgets_the_old_branch_keys_fails_put_get() -> None:
    rope = part("rotary")
    v5 = rope.inner.spellings["v5"]
    leaky = attrs.evolve(
        v5, inner=KeepsOldBranch(v5.inner.branches, v5.inner.choose, v5.inner.label)
    )
    spellings = {**rope.inner.spellings, "v5": leaky}
    broken = attrs.evolve(rope, inner=attrs.evolve(rope.inner, spellings=spellings))
    assert "put_get" in failures(broken_llama("leaky union", rope, broken), "put_get")


def test_a_lens_that_forgets_a_view_field_fails_coverage() -> None:
    target = broken_llama("no causal line", part(".causal'"))
    report = laws.check(target, laws=["coverage"], profile="dev")
    assert report.failed() == ["coverage"]
    assert "causal" in str(report)


def test_a_failure_shows_the_counterexample_with_both_sides() -> None:
    target = broken_llama("sorts keys")
    target = attrs.evolve(target, lens=SortsKeys(llama.tree.parts) >> structure(Model, converter))
    result = laws.check(target, laws=["get_put"], profile="dev").results[0]
    assert not result.passed
    lines = result.counterexample.splitlines()
    assert lines[0] == "put(get(s), s) != s"
    assert lines[1].startswith("s: {") and lines[2].startswith("put_get_s: {")
