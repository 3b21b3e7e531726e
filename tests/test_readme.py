"""The README's REPL tour runs as printed."""

from __future__ import annotations

import doctest
import os
import re

from conftest import REPO

FENCED = re.compile(r"```python\n(.*?)```", re.S)


def test_the_readme_tour_works_as_printed() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = [block for block in FENCED.findall(readme) if ">>>" in block]
    assert blocks, "the README has no REPL tour"
    text = "\n".join(blocks)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README.md", str(REPO / "README.md"), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        runner.run(test)
    finally:
        os.chdir(cwd)
    results = runner.summarize(verbose=False)
    assert results.failed == 0 and results.attempted > 10
