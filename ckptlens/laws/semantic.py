"""The semantic laws' own Hypothesis run: tiny models drawn once, each law fed every one.

They build real models, so they draw fewer examples than the other laws
(``profiles.SEMANTIC_EXAMPLES``) and report, per format, how many drawn models reached each
case where a misreading changes the function (``tiny.cases``).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis.errors import UnsatisfiedAssumption

from ckptlens.laws import model_equiv as equiv
from ckptlens.laws.profiles import profile_settings, semantic_examples
from ckptlens.laws.report import LawBroken, LawResult
from ckptlens.laws.tiny import TinyExample, cases, tiny_examples

SEMANTIC_LAWS = ("model_equiv", "weight_round_trip")
HEALTH = list(HealthCheck)


def not_run_reason(law: str, fmt: Any) -> str | None:
    if law == "model_equiv":
        return equiv.not_run_reason(fmt)
    if fmt is None or not hasattr(fmt, "weights"):
        return "no weight lens (a bare lens, not a format)"
    return None


class _Stop(BaseException):
    """Ends the run once every law has failed."""


def run_semantic(target: Any, laws: Sequence[str], profile: str | None) -> list[LawResult]:
    """``laws`` (a subset of ``SEMANTIC_LAWS``) on ``target``'s format."""
    fmt = target.format
    reasons = {law: not_run_reason(law, fmt) for law in laws}
    runnable = [law for law in laws if reasons[law] is None]
    failures: dict[str, str] = {}
    if "model_equiv" in runnable:
        problems = equiv.activation_problems(fmt.lens)
        if problems:
            failures["model_equiv"] = LawBroken(
                "the activation table disagrees with transformers' ACT2FN", problems=problems
            ).text
    seen = equiv.Comparison()
    properties: dict[str, Callable[[TinyExample], None]] = {
        "model_equiv": lambda example: equiv.model_equiv(fmt, example, seen),
        "weight_round_trip": lambda example: equiv.weight_round_trip(fmt, example),
    }
    counts: Counter[str] = Counter()
    tally: Counter[str] = Counter()
    started = time.perf_counter()
    wanted = semantic_examples(profile)

    accept = equiv.peer_accepts(fmt) if "model_equiv" in runnable else None

    @settings(
        profile_settings(profile),
        max_examples=wanted,
        suppress_health_check=HEALTH,
        report_multiple_bugs=False,
    )
    @given(tiny_examples(fmt.lens, accept) if runnable else _nothing())
    def run(example: TinyExample) -> None:
        tally.update(cases(example))
        for law in runnable:
            if law in failures:
                continue
            counts[law] += 1
            try:
                properties[law](example)
            except UnsatisfiedAssumption:
                counts[law] -= 1
                raise
            except LawBroken as broken:
                failures[law] = broken.text
            except Exception as error:  # the law's own machinery failing is a failure too
                where = _innermost(error)
                failures[law] = f"{law} raised {type(error).__name__}: {error} ({where})"
        if all(law in failures for law in runnable):
            raise _Stop

    if runnable:
        with contextlib.suppress(_Stop):
            run()
    seconds = time.perf_counter() - started
    drawn = max(counts.values(), default=0)
    notes = _notes(tally, drawn, seen)
    results = []
    for law in laws:
        if reasons[law] is not None:
            results.append(LawResult(law, False, 0, 0.0, not_run=reasons[law] or ""))
            continue
        text = failures.get(law, "")
        law_notes = notes if law == "model_equiv" else ()
        results.append(LawResult(law, not text, counts[law], seconds, text, notes=law_notes))
    return results


def _innermost(error: Exception) -> str:
    """Where ``error`` was raised: file and line of the innermost frame."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    return f"at {frames[-1].filename}:{frames[-1].lineno}" if frames else "no traceback"


def _nothing() -> Any:
    from hypothesis import strategies as st

    return st.nothing()


def _notes(tally: Counter[str], drawn: int, seen: equiv.Comparison) -> tuple[str, ...]:
    lines = [
        f"largest difference {seen.largest:.2e} of the logit scale"
        f" (tolerance {equiv.TOLERANCE:g}) over {drawn} models, float64",
        "cases reached (drawn models): "
        + ", ".join(f"{case} {count}" for case, count in sorted(tally.items())),
    ]
    lines += [
        f"not compared, transformers cannot build the drawn source ({count}x): {error}"
        for error, count in seen.unbuildable.items()
    ]
    return tuple(lines)
