"""The laws harness: check any lens or format against the laws of ``docs/DESIGN.md``.

    from ckptlens import laws
    report = laws.check(my_format)      # a Report: each law, pass/fail, counterexample
    laws.assert_lawful(my_format)       # the assert form for tests

Besides the lens laws, ``model_equiv`` and ``metadata_equiv`` check a format against
transformers' own model and config classes, and ``weight_round_trip`` its weight lens (see
``laws.model_equiv``). Strategies (``laws.sources``, ``laws.views``) are derived from the
lens declarations; the pytest plugin (``ckptlens.laws.plugin``) turns a format into one test
per law in one line.

The harness needs Hypothesis (the ``[laws]`` extra). Names are imported on first use, so that
the pytest plugin registered by an install without that extra (and ``ckptlens --help``) can
import this package.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "assert_lawful": "checks",
    "check": "checks",
    "examples": "checks",
    "run_law": "checks",
    "target_of": "checks",
    "PROFILES": "profiles",
    "profile_name": "profiles",
    "LAWS": "properties",
    "SEMANTIC_LAWS": "properties",
    "Example": "properties",
    "Target": "properties",
    "LawResult": "report",
    "Report": "report",
    "sources": "strategies",
    "views": "strategies",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ckptlens.laws' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ckptlens.laws.{_HOMES[name]}"), name)


__all__ = sorted(_HOMES)
