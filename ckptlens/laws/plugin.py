"""The pytest plugin: a third-party format gets the whole law suite in one line.

    # test_my_format.py
    from ckptlens.laws.plugin import law_tests
    test_my_format_laws = law_tests(my_format)      # one test per law

``pytest --ckptlens-profile=ci`` (or ``CKPTLENS_PROFILE=ci``) picks the thorough profile.
The plugin is registered through the ``pytest11`` entry point when ckptlens is installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from ckptlens.laws.profiles import PROFILE_NAMES

# Registered for every pytest run where ckptlens is installed, with or without its ``[laws]``
# extra: nothing here imports Hypothesis until a law test is declared.


def law_tests(
    thing: Any, *, laws: Sequence[str] | None = None, profile: str | None = None
) -> Callable[[str], None]:
    """A pytest test function, parametrized over ``laws`` (default: every law that can run on
    ``thing``), checking ``thing`` (a format or a lens). All laws share one run (the first test
    item triggers it); each item then asserts its own law passed on at least the profile's
    example count, and a failure shows the law's shrunk counterexample with both sides.

    A law that cannot run on ``thing`` (ModelEquiv without runnable model code) gets no item
    rather than a skipped one: ``ckptlens check`` reports it as not run, with the reason.
    Asking for such a law by name is an error."""
    from ckptlens.laws.checks import check, target_of
    from ckptlens.laws.profiles import law_examples
    from ckptlens.laws.properties import LAWS, not_run_reason
    from ckptlens.laws.report import Report

    target = target_of(thing)
    reasons = {law: not_run_reason(target, law) for law in (LAWS if laws is None else laws)}
    if laws is not None and any(reasons.values()):
        why = "; ".join(f"{law}: {reason}" for law, reason in reasons.items() if reason)
        raise ValueError(f"laws that cannot run on {target.name} were asked for ({why})")
    laws = [law for law, reason in reasons.items() if reason is None]
    reports: list[Report] = []

    @pytest.mark.parametrize("law", laws)
    def test_law(law: str) -> None:
        if not reports:
            reports.append(check(target, laws=laws, profile=profile))
        result = next(r for r in reports[0].results if r.law == law)
        assert result.passed, str(result)
        wanted = law_examples(law, profile)
        assert result.examples >= wanted, f"{law} ran {result.examples} < {wanted} examples"

    test_law.__name__ = f"test_laws_of_{target.name}"
    return test_law


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ckptlens-profile",
        choices=PROFILE_NAMES,
        default=None,
        help="Hypothesis profile for ckptlens law tests (default: ci under CI, else dev)",
    )


def pytest_configure(config: pytest.Config) -> None:
    profile = config.getoption("--ckptlens-profile", default=None)
    if profile:
        os.environ["CKPTLENS_PROFILE"] = profile
