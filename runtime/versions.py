"""Version ordering for "is this component version in that range": PEP 440 first, then plain semver.

One comparator serves the affected-release search (a range typed by a person) and OSV advisory matching (ranges
of introduced/fixed events). Two versions are compared as semver 2.0
(`1.2.3-alpha.beta+build`) when both are semver, else as PEP 440 (`packaging.version`, which also reads
`1.2.3-rc.1` as `1.2.3rc1` and `1.0` as `1.0.0`) when both are; anything else (Debian epochs, git hashes,
calendar tags with letters) is not ordered and never falls in a range — only `==` on the exact text matches it.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from common.errors import ValidationFailed

RANGE_SYNTAX = (
    "comparisons joined by commas, each one of == != < <= > >= and a version (e.g. '>=1.2,<1.4.5'), "
    "or a bare version for exactly that version; PEP 440 and semver versions are compared"
)
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_CLAUSE = re.compile(r"^(==|!=|<=|>=|<|>)?\s*([0-9A-Za-z][^\s<>=!,^~*|]*)$")
_OPERATORS = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@functools.total_ordering
@dataclass(frozen=True)
class _SemverKey:
    """A semver 2.0 precedence key: a release sorts after its pre-releases, identifiers compare as the spec says."""

    core: tuple[int, int, int]
    pre: tuple[tuple[int, int | str], ...] | None

    def _order(self):
        # No pre-release sorts last; numeric identifiers sort before alphanumeric ones.
        return (self.core, (1,) if self.pre is None else (0, self.pre))

    def __lt__(self, other: _SemverKey) -> bool:
        return self._order() < other._order()


@functools.lru_cache(maxsize=65536)
def version_keys(text: str) -> dict[str, object]:
    """The comparable keys of a version string by scheme: "semver" and/or "pep440"; empty when neither reads it."""
    text = (text or "").strip()
    keys: dict[str, object] = {}
    match = _SEMVER.match(text)
    if match is not None:
        pre = None
        if match.group(4):
            pre = tuple((0, int(part)) if part.isdigit() else (1, part) for part in match.group(4).split("."))
        keys["semver"] = _SemverKey(core=(int(match.group(1)), int(match.group(2)), int(match.group(3))), pre=pre)
    with contextlib.suppress(InvalidVersion):
        keys["pep440"] = Version(text)
    return keys


def compare(version: str, operator: str, bound: str) -> bool:
    """Does `version operator bound` hold? Semver when both sides are semver (it orders `alpha.beta` the way npm
    does), else PEP 440 when both are; two versions no common scheme reads compare only as == / != on the text."""
    if operator == "==" and version.strip() == bound.strip():
        return True
    left, right = version_keys(version), version_keys(bound)
    for scheme in ("semver", "pep440"):
        if scheme in left and scheme in right:
            return _OPERATORS[operator](left[scheme], right[scheme])
    return operator == "!=" and version.strip() != bound.strip()


@dataclass(frozen=True)
class VersionRange:
    """A conjunction of comparisons, as a person types it in the search: `>=1.2,<1.4.5`."""

    text: str
    clauses: tuple[tuple[str, str], ...]

    def contains(self, version: str) -> bool:
        return all(compare(version, operator, bound) for operator, bound in self.clauses)


def parse_range(text: str, *, name: str = "version") -> VersionRange | None:
    """The range a caller typed; None for an empty one; 400 naming the accepted syntax for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    clauses = []
    for part in text.split(","):
        match = _CLAUSE.match(part.strip())
        if match is None:
            raise ValidationFailed(
                f"{name} {text[:80]!r} is not a range this search reads: use {RANGE_SYNTAX} "
                "('vers:' strings, npm '^'/'~', '||' and '*' ranges are not accepted)",
                errors={name: [RANGE_SYNTAX]},
            )
        operator, bound = match.group(1) or "==", match.group(2)
        if operator not in ("==", "!=") and not version_keys(bound):
            raise ValidationFailed(
                f"{name}: {bound[:60]!r} is neither a PEP 440 nor a semver version, so nothing can be ordered "
                f"against it; use {RANGE_SYNTAX}",
                errors={name: [RANGE_SYNTAX]},
            )
        clauses.append((operator, bound))
    return VersionRange(text=text, clauses=tuple(clauses))
