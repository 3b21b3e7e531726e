"""Apply each mutant of ``catalogue.py`` to a copy of the package and run ``ckptlens check``.

    python tests/mutants/run.py [--profile dev] [--only SUBSTRING] [--laws LAW ...]

Not part of the default test run (it takes minutes). Prints one row per mutant: caught or
not, the laws that failed, and the seconds it took; then the totals.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from catalogue import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]


def apply(mutant: Mutant, package: Path) -> None:
    for path, search, replacement in mutant.edits:
        file = package / path
        text = file.read_text()
        count = text.count(search)
        if count != 1:
            raise SystemExit(f"{mutant.name}: {search!r} occurs {count} times in {path}")
        file.write_text(text.replace(search, replacement))


def run(mutant: Mutant, profile: str, laws: list[str]) -> tuple[str, str, float]:
    with tempfile.TemporaryDirectory() as root:
        shutil.copytree(ROOT / "ckptlens", Path(root) / "ckptlens")
        apply(mutant, Path(root) / "ckptlens")
        failed: list[str] = []
        started = time.perf_counter()
        verdict = "missed"
        for fmt in mutant.formats:
            command = [
                sys.executable,
                "-c",
                "import sys; from ckptlens.cli import main; sys.exit(main())",
                "check",
                fmt,
                "--profile",
                profile,
                *(["--laws", *laws] if laws else []),
            ]
            env = {**os.environ, "PYTHONPATH": root}
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
            failed += re.findall(r"^FAIL\s+(\w+)", done.stdout, flags=re.MULTILINE)
            laws_failed = re.findall(r"^FAIL\s+(\w+)", done.stdout, flags=re.MULTILINE)
            if done.returncode == 1 and laws_failed:
                verdict = "CAUGHT"
            elif done.returncode != 0:  # a crash (exit 1 without a failed law) is no catch
                verdict = "error"
                failed.append(done.stderr.strip().splitlines()[-1][:80] if done.stderr else "?")
        return verdict, ", ".join(failed), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="dev")
    parser.add_argument("--only", default="")
    parser.add_argument("--laws", nargs="*", default=[])
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.only in m.name]
    caught = 0
    print("| mutant | kind | format | verdict | failing laws | s |\n|---|---|---|---|---|---|")
    for mutant in chosen:
        verdict, laws, seconds = run(mutant, args.profile, args.laws)
        caught += verdict == "CAUGHT"
        print(
            f"| {mutant.name} | {mutant.kind} | {','.join(mutant.formats)} | {verdict} "
            f"| {laws} | {seconds:.0f} |",
            flush=True,
        )
    print(
        f"\n{caught} of {len(chosen)} mutants caught by `ckptlens check --profile {args.profile}`"
    )


if __name__ == "__main__":
    main()
