"""The laws harness: check any lens or format against the laws of DESIGN.md.

    from ckptlens import laws
    report = laws.check(my_format)      # a Report: each law, pass/fail, counterexample
    laws.assert_lawful(my_format)       # the assert form for tests

Besides the lens laws, ``model_equiv`` and ``metadata_equiv`` check a format against
transformers' own model and config classes, and ``weight_round_trip`` its weight lens (see
``laws.model_equiv``). Strategies (``laws.sources``, ``laws.views``) are derived from the lens
declarations; the
pytest plugin (``ckptlens.laws.plugin``) turns a format into one test per law in one line.
"""

from ckptlens.laws.checks import assert_lawful, check, examples, run_law, target_of
from ckptlens.laws.profiles import PROFILES, profile_name
from ckptlens.laws.properties import LAWS, SEMANTIC_LAWS, Example, Target
from ckptlens.laws.report import LawResult, Report
from ckptlens.laws.strategies import sources, views

__all__ = [
    "LAWS",
    "PROFILES",
    "SEMANTIC_LAWS",
    "Example",
    "LawResult",
    "Report",
    "Target",
    "assert_lawful",
    "check",
    "examples",
    "profile_name",
    "run_law",
    "sources",
    "target_of",
    "views",
]
