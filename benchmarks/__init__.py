"""Benchmarks (`make bench`): each `bench_*.py` module measures something and, in the same run, its floor.

To add one, create `benchmarks/bench_<what>.py` with a `run() -> list[Result]` function. `python -m benchmarks`
sets Django up on a throwaway database (created and destroyed around the run), calls every module's `run()`
and writes the table to stdout and docs/benchmarks.md. A floor is the cost of the unavoidable work measured
the cheapest way (e.g. hashing records already in memory); the ratio floor / measured says how close the
real code path comes to it (1.0 = no overhead at all).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """One measurement against its floor, and the ratio it must reach."""

    name: str
    size: str
    measured_seconds: float
    floor_seconds: float
    target_ratio: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.floor_seconds / self.measured_seconds if self.measured_seconds else 0.0

    @property
    def meets_target(self) -> bool:
        return self.ratio >= self.target_ratio


def timed(function: Callable[[], T], *, repeat: int = 3) -> tuple[float, T]:
    """The best wall-clock time of `repeat` runs (best-of filters out noise from other processes), and a result."""
    best, value = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value
