"""Hypothesis profiles: ``dev`` is quick for the edit loop, ``ci`` is thorough.

The profile comes from the ``profile`` argument, else ``CKPTLENS_PROFILE``, else ``ci`` when
the ``CI`` environment variable is set, else ``dev``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis import settings

# Plain options, so that the names are known without importing Hypothesis (``ckptlens --help``
# and the pytest plugin work on an install without the ``[laws]`` extra).
PROFILE_OPTIONS: dict[str, dict[str, Any]] = {
    "dev": {"max_examples": 30, "deadline": None, "derandomize": False},
    # CI draws the same examples every run: a red run is a real failure, reproducible anywhere.
    "ci": {"max_examples": 200, "deadline": None, "derandomize": True, "database": None},
    "thorough": {"max_examples": 2000, "deadline": None},
}
PROFILE_NAMES = tuple(PROFILE_OPTIONS)


def __getattr__(name: str) -> Any:
    if name == "PROFILES":  # the Hypothesis settings of each profile, built on first use
        return {profile: profile_settings(profile) for profile in PROFILE_NAMES}
    raise AttributeError(name)


# The semantic laws (model_equiv, weight_round_trip) build and run a real transformers model
# per example, about a second each on this project's machine, so they draw their own, smaller
# number of tiny models per profile. ``ci`` is the "at least 25 models per format" of the brief.
SEMANTIC_EXAMPLES: dict[str, int] = {"dev": 5, "ci": 25, "thorough": 200}


def semantic_examples(profile: str | None = None) -> int:
    return SEMANTIC_EXAMPLES[profile_name(profile)]


def law_examples(law: str, profile: str | None = None) -> int:
    """How many examples ``law`` must have passed on under ``profile``."""
    if law in ("model_equiv", "weight_round_trip"):
        return semantic_examples(profile)
    return int(PROFILE_OPTIONS[profile_name(profile)]["max_examples"])


# How long a failing law may spend shrinking its counterexample before it is reported.
SHRINK_SECONDS: dict[str, float] = {"dev": 2.0, "ci": 5.0, "thorough": 60.0}


def shrink_seconds(profile: str | None = None) -> float:
    return SHRINK_SECONDS[profile_name(profile)]


def profile_name(profile: str | None = None) -> str:
    name = (
        profile or os.environ.get("CKPTLENS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    )
    if name not in PROFILE_OPTIONS:
        raise ValueError(f"unknown ckptlens profile {name!r}; known: {list(PROFILE_NAMES)}")
    return name


def profile_settings(profile: str | None = None) -> settings:
    """The Hypothesis ``settings`` of the chosen profile."""
    from hypothesis import settings

    return settings(**PROFILE_OPTIONS[profile_name(profile)])
