"""Run every benchmarks/bench_*.py on a throwaway database and write docs/benchmarks.md."""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "custody_bench"


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    only = set(argv)
    modules = [
        name
        for _, name, _ in pkgutil.iter_modules([str(Path(__file__).parent)])
        if name.startswith("bench_") and (not only or name in only or name.removeprefix("bench_") in only)
    ]
    # Never the configured database: a fresh one per module, made and dropped by Django's test-database
    # utilities, so one benchmark's rows never skew another's (the audit chain must start empty).
    connection.settings_dict.setdefault("TEST", {})["NAME"] = os.environ.get("CUSTODY_BENCH_DATABASE", BENCH_DATABASE)
    results, failures = [], []
    for name in sorted(modules):
        print(f"running {name} …", file=sys.stderr, flush=True)
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        try:
            results.extend(importlib.import_module(f"benchmarks.{name}").run())
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            traceback.print_exc()
            failures.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)
    report = render(results, failures, vendor=connection.vendor)
    print(report)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text(report)
    return 0 if not failures and all(result.meets_target for result in results) else 1


def render(results, failures, *, vendor: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`); do not edit by hand. Each benchmark measures its floor —",
        "the unavoidable work done the cheapest way — in the same run, so the ratio floor / measured does not",
        "depend on the machine. Times are the best of three runs.",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.python_implementation()} {platform.python_version()},"
        f" {platform.machine()}, database: {vendor}.",
        "",
        "| benchmark | size | measured (s) | floor (s) | ratio floor/measured | target | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "meets target" if r.meets_target else "MISSES target"
        cells = [r.name, r.size, f"{r.measured_seconds:.3f}", f"{r.floor_seconds:.3f}", f"{r.ratio:.2f}"]
        lines.append("| " + " | ".join([*cells, f"≥ {r.target_ratio:.2f}", verdict]) + " |")
    notes = [f"- **{r.name}**: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    if failures:
        lines += ["", "Benchmarks that failed to run:", "", *[f"- {failure}" for failure in failures]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
