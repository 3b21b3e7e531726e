"""A plain one-line progress report on stderr: bytes written, total, throughput."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ckptlens.weights.plan import human_size

REFRESH_SECONDS = 0.2


class ProgressLine:
    """Call with each number of bytes written; ``finish`` prints the final line."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self._shown = 0.0

    def __call__(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self._shown >= REFRESH_SECONDS and self.done < self.total:  # finish shows 100%
            self._shown = now
            self._show(end="\r")

    def finish(self) -> None:
        self._show(end="\n")

    def _show(self, end: str) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        percent = 100.0 * self.done / self.total if self.total else 100.0
        rate = human_size(int(self.done / elapsed))
        line = f"  {human_size(self.done)} / {human_size(self.total)} ({percent:5.1f}%)  {rate}/s"
        self.stream.write(line + end)
        self.stream.flush()
