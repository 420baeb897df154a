"""What the test-report, coverage, static-analysis and SBOM parsers return: plain frozen values, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

TEST_STATUSES = ("passed", "failed", "error", "skipped")
SARIF_LEVELS = ("error", "warning", "note", "none")
SEVERITIES = ("critical", "high", "medium", "low", "unknown")


@dataclass(frozen=True, slots=True)
class TestCaseResult:
    """One test case as a test report recorded it."""

    __test__ = False  # pytest: this is a value, not a test class

    suite: str
    classname: str
    name: str
    status: str  # one of TEST_STATUSES
    duration_s: float | None
    message: str
    requirement_ids: tuple[str, ...]
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class TestReport:
    """A whole JUnit-style test report."""

    __test__ = False

    cases: list[TestCaseResult]
    suites: int
    started_at: datetime | None
    tool: str

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.status == "passed")

    @property
    def failed(self) -> int:
        """Failures and errors together: either one means the test did not pass."""
        return sum(1 for case in self.cases if case.status in ("failed", "error"))

    @property
    def skipped(self) -> int:
        return sum(1 for case in self.cases if case.status == "skipped")


@dataclass(frozen=True, slots=True)
class FileCoverage:
    """Line and branch coverage of one source file; branches are None when the tool measured none."""

    path: str
    lines_valid: int
    lines_covered: int
    branches_valid: int | None
    branches_covered: int | None


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """A coverage report: totals as the tool stated them (or summed from files), and the files."""

    line_rate: float | None
    branch_rate: float | None
    lines_valid: int
    lines_covered: int
    branches_valid: int | None
    branches_covered: int | None
    files: list[FileCoverage]
    tool: str
    generated_at: datetime | None


@dataclass(frozen=True, slots=True)
class StaticFinding:
    """One static-analysis result; (tool, rule_id, fingerprint) identifies it across runs."""

    rule_id: str
    level: str  # one of SARIF_LEVELS
    severity: str  # one of SEVERITIES
    message: str
    path: str
    start_line: int | None
    fingerprint: str
    suppressed: bool
    tool: str


@dataclass(frozen=True, slots=True)
class StaticAnalysisReport:
    """All findings of a SARIF log, over all its runs."""

    findings: list[StaticFinding]
    tools: list[str]


@dataclass(frozen=True, slots=True)
class SbomComponent:
    """One component of an SBOM; hashes are (algorithm like "SHA-256", lowercase hex) pairs."""

    name: str
    version: str
    purl: str
    license_expression: str  # SPDX id or expression; "unknown" when the text could not be normalised; "" if none
    hashes: tuple[tuple[str, str], ...]
    bom_ref: str
    kind: str
    group: str = ""  # CycloneDX group / Maven groupId; "" when the format has none
    license_declared: str = ""  # the licence text as the SBOM wrote it, when it differs from the expression


@dataclass(frozen=True, slots=True)
class SbomDocument:
    """An SBOM: what it describes, when it was made, and its components (nested ones flattened)."""

    format: str  # "cyclonedx" or "spdx"
    spec_version: str
    components: list[SbomComponent]
    subject_name: str
    created_at: datetime | None
    serial: str
    tools: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------- vulnerability scans and VEX

FIX_STATES = ("fixed", "not-fixed", "wont-fix", "unknown")
VEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
SUPPRESSING_VEX_STATUSES = frozenset({"not_affected", "fixed"})


@dataclass(frozen=True, slots=True)
class Vulnerability:
    """One vulnerability found in one package version."""

    vuln_id: str
    aliases: tuple[str, ...]
    package_name: str
    package_version: str
    purl: str
    severity: str  # critical | high | medium | low | unknown
    cvss_score: float | None
    fix_state: str  # fixed | not-fixed | wont-fix | unknown
    fixed_versions: tuple[str, ...]
    title: str
    source_tool: str


@dataclass(frozen=True, slots=True)
class VulnerabilityReport:
    """What one scanner run found, and about which target."""

    vulnerabilities: list[Vulnerability]
    tool: str
    tool_version: str
    target: str
    scanned_at: datetime | None


@dataclass(frozen=True, slots=True)
class VexStatement:
    """A supplier's statement about whether one vulnerability affects some products."""

    vuln_id: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]  # purls or other identifiers; empty means the whole document's subject
    status: str  # not_affected | affected | fixed | under_investigation
    justification: str
    impact_statement: str
    timestamp: datetime | None


@dataclass(frozen=True, slots=True)
class VexDocument:
    """One VEX document and its statements."""

    format: str  # openvex | cyclonedx-vex
    document_id: str
    author: str
    statements: list[VexStatement]
    issued_at: datetime | None
