"""What a law check returns: per law, pass or fail, and a counterexample a person can read."""

from __future__ import annotations

import json
from typing import Any

import attrs
from attrs import frozen


@frozen
class LawResult:
    """One law's outcome. ``examples``: how many examples it was checked on. ``seconds``: the
    run it was checked in (all laws share one run), plus its shrinking when it failed.
    ``counterexample``: the failed equation, then each side, one per line. ``not_run``: why the
    law could not be checked on this target (then ``passed`` is false and it is no failure
    either: a law that did not run is never reported as passed). ``notes``: what the law
    measured (the semantic laws: how many drawn examples reached each case, the noise)."""

    law: str
    passed: bool
    examples: int
    seconds: float
    counterexample: str = ""
    not_run: str = ""
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return not self.passed and not self.not_run

    def __str__(self) -> str:
        if self.not_run:
            return f"{'n/a':4}  {self.law:17} not run: {self.not_run}"
        status = "pass" if self.passed else "FAIL"
        line = f"{status:4}  {self.law:17} {self.examples:5d} examples  {self.seconds:6.2f}s"
        lines = [line, *(f"      {note}" for note in self.notes)]
        if not self.passed:
            lines.append(_indent(self.counterexample))
        return "\n".join(lines)


@frozen
class Report:
    """Every law checked on one target; ``str()`` is a table, failures with their sides."""

    target: str
    results: tuple[LawResult, ...]

    @property
    def ok(self) -> bool:
        """No law failed (laws that could not run are listed, not counted as passed)."""
        return not self.failed()

    def failed(self) -> list[str]:
        return [result.law for result in self.results if result.failed]

    def not_run(self) -> list[str]:
        return [result.law for result in self.results if result.not_run]

    def __str__(self) -> str:
        verdict = "no failure" if self.ok else "FAILED " + ", ".join(self.failed())
        if self.not_run():
            verdict += "; not run: " + ", ".join(self.not_run())
        elif self.ok:
            verdict = "all pass"
        head = f"laws for {self.target}: {verdict}"
        return "\n".join([head, *(str(result) for result in self.results)])

    def assert_ok(self) -> Report:
        if not self.ok:
            raise AssertionError(str(self))
        return self


class LawBroken(Exception):
    """A counterexample: ``sides`` shows each side of the failed equation."""

    def __init__(self, message: str, **sides: Any) -> None:
        self.text = "\n".join(
            [message, *(f"{name}: {_show(value)}" for name, value in sides.items())]
        )
        super().__init__(self.text)


def _show(value: Any) -> str:
    if attrs.has(type(value)):
        return repr(value)
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
