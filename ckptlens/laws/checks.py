"""Run the laws: one shared Hypothesis run feeds every law the same examples; a law that
fails is then run alone so Hypothesis can shrink its counterexample.

``check`` returns a ``Report`` (each law, pass/fail, examples, shrunk counterexample with both
sides); ``assert_lawful`` raises with that report when any law fails.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from ckptlens.laws.profiles import profile_settings, shrink_seconds
from ckptlens.laws.properties import (
    LAW_PROPERTIES,
    LAWS,
    SEMANTIC_LAWS,
    Example,
    Target,
    not_run_reason,
)
from ckptlens.laws.report import LawBroken, LawResult, Report
from ckptlens.laws.strategies import sources_and_views
from ckptlens.lenses import Lens

__all__ = ["LAWS", "Target", "assert_lawful", "check", "examples", "run_law", "target_of"]

HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]


def target_of(thing: Any, canonical: Callable[[dict], dict] | None = None) -> Target:
    """A ``Target`` for a ``Format`` (with its peer and the native schema) or a bare lens."""
    if isinstance(thing, Target):
        return thing
    if isinstance(thing, Lens):
        return Target(repr(thing)[:40], thing, canonical)
    from ckptlens.native.config import UNION_MEMBERS, Model

    peer = canonical
    if peer is None and getattr(thing, "peer", None):
        peer = _quiet(thing.canonical)
    return Target(thing.name, thing.lens, peer, Model, dict(UNION_MEMBERS), format=thing)


def _quiet(function: Callable[[dict], dict]) -> Callable[[dict], dict]:
    def call(source: dict) -> dict:
        from transformers.utils import logging

        level = logging.get_verbosity()
        logging.set_verbosity_error()
        try:
            return function(source)
        finally:
            logging.set_verbosity(level)

    return call


def examples(lens: Lens) -> st.SearchStrategy[Example]:
    """Examples for every law: a source and two views from the lens's own declarations."""
    pairs = sources_and_views(lens)
    return st.builds(
        lambda first, second, third, seed: Example(first[0], second[1], third[1], seed),
        pairs,
        pairs,
        pairs,
        st.integers(0, 2**32),
    )


def _settings(profile: str | None) -> settings:
    return settings(
        profile_settings(profile), suppress_health_check=HEALTH, report_multiple_bugs=False
    )


def _as_broken(law: str, error: Exception, example: Example) -> LawBroken:
    if isinstance(error, LawBroken):
        return error
    return LawBroken(f"{law} raised {type(error).__name__}: {error}", example=example)


def _shared_run(
    target: Target, laws: Sequence[str], profile: str | None
) -> tuple[dict[str, int], dict[str, str], float]:
    properties = {law: LAW_PROPERTIES[law](target) for law in laws}
    counts = dict.fromkeys(laws, 0)
    failures: dict[str, str] = {}
    started = time.perf_counter()

    @_settings(profile)
    @given(examples(target.lens))
    def run(example: Example) -> None:
        for law, prop in properties.items():
            if law in failures:
                continue
            counts[law] += 1
            try:
                prop(example)
            except UnsatisfiedAssumption:
                counts[law] -= 1
            except Exception as error:  # every failure is reported, none stops the others
                failures[law] = _as_broken(law, error, example).text
        if len(failures) == len(properties):
            raise _Stop  # nothing left to learn from more examples

    with contextlib.suppress(_Stop):
        run()
    return counts, failures, time.perf_counter() - started


class _Stop(BaseException):
    """Ends a Hypothesis run early: a BaseException, so Hypothesis lets it through."""


class _ShrinkBudgetSpent(_Stop):
    """Raised past the shrink budget."""


def _shrink(target: Target, law: str, profile: str | None, found: str) -> str:
    """The smallest counterexample for ``law`` that shrinking reaches within the budget."""
    prop = LAW_PROPERTIES[law](target)
    budget = shrink_seconds(profile)
    smallest = found
    first_failure: float | None = None

    @_settings(profile)
    @given(examples(target.lens))
    def run(example: Example) -> None:
        nonlocal smallest, first_failure
        if first_failure is not None and time.perf_counter() - first_failure > budget:
            raise _ShrinkBudgetSpent
        try:
            prop(example)
        except UnsatisfiedAssumption:
            raise
        except Exception as error:
            first_failure = first_failure or time.perf_counter()
            broken = _as_broken(law, error, example)
            smallest = broken.text
            raise broken from None

    try:
        run()
    except LawBroken as broken:
        return broken.text
    except _ShrinkBudgetSpent:
        return f"{smallest}\n(shrinking stopped after {budget:g}s; this example failed)"
    return found  # the failure did not recur in this run: report the one first found


def run_law(target: Target, law: str, profile: str | None = None) -> LawResult:
    """One law on its own (a single-law ``check``)."""
    return check(target, laws=[law], profile=profile).results[0]


def check(
    thing: Any,
    *,
    laws: Sequence[str] = LAWS,
    profile: str | None = None,
    canonical: Callable[[dict], dict] | None = None,
) -> Report:
    """Run ``laws`` on a format or lens; ``canonical`` is an independent normaliser (a peer)."""
    target = target_of(thing, canonical)
    semantic = [law for law in laws if law in SEMANTIC_LAWS]
    reasons = {law: not_run_reason(target, law) for law in laws if law not in SEMANTIC_LAWS}
    skipped = {law: reason for law, reason in reasons.items() if reason}
    shared = [law for law in laws if law not in SEMANTIC_LAWS and law not in skipped]
    by_law = {law: LawResult(law, False, 0, 0.0, not_run=reason) for law, reason in skipped.items()}
    by_law.update(_check_shared(target, shared, profile))
    if semantic:
        from ckptlens.laws.semantic import run_semantic

        by_law.update({r.law: r for r in run_semantic(target, semantic, profile)})
    return Report(target.name, tuple(by_law[law] for law in laws))


def _check_shared(target: Target, laws: Sequence[str], profile: str | None) -> dict[str, LawResult]:
    if not laws:
        return {}
    wanted = profile_settings(profile).max_examples
    counts, failures, seconds = _shared_run(target, laws, profile)
    for _ in range(_TOP_UPS):
        # A law may skip examples (the peer refusing a source); run again for those laws
        # until each has seen as many examples as the profile asks for.
        short = [law for law in laws if law not in failures and counts[law] < wanted]
        if not short:
            break
        more, more_failures, more_seconds = _shared_run(target, short, profile)
        seconds += more_seconds
        failures.update(more_failures)
        for law in short:
            counts[law] += more[law]
    results = {}
    for law in laws:
        if law not in failures and counts[law] == 0:
            # a law checked on nothing has not passed: say so rather than report it green
            why = "checked on no example: every example drawn was skipped (assumptions unmet)"
            results[law] = LawResult(law, False, 0, seconds, why)
            continue
        if law not in failures:
            results[law] = LawResult(law, True, counts[law], seconds)
            continue
        started = time.perf_counter()
        text = _shrink(target, law, profile, failures[law])
        spent = seconds + time.perf_counter() - started
        results[law] = LawResult(law, False, counts[law], spent, text)
    return results


_TOP_UPS = 3


def assert_lawful(thing: Any, **options: Any) -> Report:
    """``check`` that raises ``AssertionError`` with the whole report when any law fails."""
    return check(thing, **options).assert_ok()
