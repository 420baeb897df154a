"""Coverage reports: Cobertura XML (coverage.py, Istanbul, simplecov), LCOV tracefiles and JaCoCo XML."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from common.times import parse_timestamp
from evidence.parsers.base import (
    EvidenceParseError,
    clean_text,
    local_name,
    parse_xml,
    refuse_declared_entities,
    warn,
)
from evidence.parsers.results import CoverageReport, FileCoverage

PATH_LIMIT = 1000
_CONDITION_COVERAGE = re.compile(r"\((\d+)\s*/\s*(\d+)\)")


@dataclass
class _FileLines:
    """One file's per-line facts while reading; several records or classes for one file are merged."""

    hit_lines: dict[int, bool] = field(default_factory=dict)  # line number -> covered
    branches: dict[tuple[int, str, str], bool] = field(default_factory=dict)  # branch key -> taken
    branch_counts: dict[int, tuple[int, int]] = field(default_factory=dict)  # line -> (covered, valid)
    measured_branches: bool = False
    stated_lines: tuple[int, int] | None = None  # LCOV LF/LH when no DA lines are given
    stated_branches: tuple[int, int] | None = None  # LCOV BRF/BRH when no BRDA lines are given

    def add_line(self, number: int, covered: bool) -> None:
        self.hit_lines[number] = self.hit_lines.get(number, False) or covered

    def add_condition(self, number: int, covered: int, valid: int) -> None:
        old_covered, old_valid = self.branch_counts.get(number, (0, 0))
        self.branch_counts[number] = (max(old_covered, covered), max(old_valid, valid))
        self.measured_branches = True

    def summary(self, path: str) -> FileCoverage:
        if self.hit_lines or self.stated_lines is None:
            lines_valid = len(self.hit_lines)
            lines_covered = sum(self.hit_lines.values())
        else:
            lines_valid, lines_covered = self.stated_lines
        branches_valid: int | None = None
        branches_covered: int | None = None
        if self.branches:
            branches_valid, branches_covered = len(self.branches), sum(self.branches.values())
        elif self.branch_counts:
            branches_valid = sum(valid for _, valid in self.branch_counts.values())
            branches_covered = sum(covered for covered, _ in self.branch_counts.values())
        elif self.stated_branches is not None:
            branches_valid, branches_covered = self.stated_branches
        elif self.measured_branches:
            branches_valid, branches_covered = 0, 0
        return FileCoverage(
            path=path,
            lines_valid=lines_valid,
            lines_covered=lines_covered,
            branches_valid=branches_valid,
            branches_covered=branches_covered,
        )


def parse_cobertura(data: bytes) -> CoverageReport:
    """Read a Cobertura XML report; totals come from the root attributes, or are summed from the files."""
    root = parse_xml(data)
    refuse_declared_entities(root)
    if local_name(root) != "coverage":
        raise EvidenceParseError(
            f"the root element is <{local_name(root)}>, but a Cobertura report starts with <coverage>; "
            "check that the right file was uploaded as type cobertura",
            location=f"line {root.sourceline}",
        )
    if _is_clover(root):
        warn("this is a Clover XML report, not Cobertura; it was read as Clover (statements as lines)")
        return parse_clover(data, root=root)
    if not any(local_name(child) == "packages" for child in root):
        raise EvidenceParseError(
            "the <coverage> element has no <packages>, so this is not a Cobertura report (coverage.py, Istanbul, "
            "gcovr and simplecov all write one, empty when nothing was measured); check the file and its type",
            location=f"line {root.sourceline}",
        )
    by_path: dict[str, _FileLines] = {}
    # Istanbul writes <class> straight under <packages> when every file sits in one directory, so look
    # for classes anywhere rather than only under <package>/<classes>.
    for cls in root.iter("{*}class"):
        filename = cls.get("filename")
        if filename is None:
            raise EvidenceParseError(
                "a <class> has no filename attribute; Cobertura names each class's source file",
                location=f"line {cls.sourceline}",
            )
        lines = by_path.setdefault(clean_text(filename, limit=PATH_LIMIT), _FileLines())
        # Only the class's own <lines>: the copies under <methods> would count lines twice.
        for lines_element in cls:
            if local_name(lines_element) != "lines":
                continue
            for line in lines_element:
                if local_name(line) == "line":
                    _read_cobertura_line(line, lines)
    files = [lines.summary(path) for path, lines in by_path.items()]
    lines_valid = _int_attribute(root, "lines-valid")
    lines_covered = _int_attribute(root, "lines-covered")
    if lines_valid is None or lines_covered is None:
        lines_valid = sum(f.lines_valid for f in files)
        lines_covered = sum(f.lines_covered for f in files)
    branches_valid = _int_attribute(root, "branches-valid")
    branches_covered = _int_attribute(root, "branches-covered")
    if branches_valid is None or branches_covered is None:
        branches_valid, branches_covered = _sum_branches(files)
    line_rate = _rate_attribute(root, "line-rate")
    if line_rate is None:
        line_rate = _rate(lines_covered, lines_valid)
    branch_rate = _rate_attribute(root, "branch-rate")
    if branch_rate is None and branches_valid is not None:
        branch_rate = _rate(branches_covered or 0, branches_valid)
    return CoverageReport(
        line_rate=line_rate,
        branch_rate=branch_rate,
        lines_valid=lines_valid,
        lines_covered=lines_covered,
        branches_valid=branches_valid,
        branches_covered=branches_covered,
        files=files,
        tool=_cobertura_tool(data),
        generated_at=parse_timestamp(root.get("timestamp")),  # milliseconds or seconds, depending on the tool
    )


def _is_clover(root: etree._Element) -> bool:
    """Clover XML shares Cobertura's <coverage> root; it has a clover attribute or a <project> inside."""
    return root.get("clover") is not None or any(local_name(child) == "project" for child in root)


def parse_clover(data: bytes, *, root: etree._Element | None = None) -> CoverageReport:
    """Read a Clover XML report (PHPUnit, Istanbul/nyc `clover`, OpenClover): per-file <metrics> counts.

    Statements are read as lines and conditionals as branches, as the tools that write Clover count them.
    """
    if root is None:
        root = parse_xml(data)
        refuse_declared_entities(root)
    project = next((child for child in root if local_name(child) == "project"), None)
    if local_name(root) != "coverage" or project is None:
        raise EvidenceParseError(
            "a Clover report is <coverage> with a <project> inside; this file has neither",
            location=f"line {root.sourceline}",
        )
    files = [_clover_file(element) for element in project.iter("{*}file")]
    return _summed_report(
        files,
        tool="clover",
        generated_at=parse_timestamp(root.get("generated")),
        totals=_clover_metrics(project),
    )


def _summed_report(
    files: list[FileCoverage],
    *,
    tool: str,
    generated_at,
    totals: tuple[int, int, int | None, int | None] | None = None,
) -> CoverageReport:
    """A report whose totals are the tool's stated (lines, covered, branches, covered), else the files' sums."""
    if totals is None:
        branches_valid, branches_covered = _sum_branches(files)
        totals = (
            sum(f.lines_valid for f in files),
            sum(f.lines_covered for f in files),
            branches_valid,
            branches_covered,
        )
    lines_valid, lines_covered, branches_valid, branches_covered = totals
    return CoverageReport(
        line_rate=_rate(lines_covered, lines_valid),
        branch_rate=_rate(branches_covered or 0, branches_valid) if branches_valid is not None else None,
        lines_valid=lines_valid,
        lines_covered=lines_covered,
        branches_valid=branches_valid,
        branches_covered=branches_covered,
        files=files,
        tool=tool,
        generated_at=generated_at,
    )


def _clover_metrics(element: etree._Element) -> tuple[int, int, int, int] | None:
    """(statements, covered statements, conditionals, covered conditionals) of the element's own <metrics>."""
    metrics = next((child for child in element if local_name(child) == "metrics"), None)
    if metrics is None or metrics.get("statements") is None:
        return None
    return (
        _required_int(metrics, "statements"),
        _required_int(metrics, "coveredstatements"),
        _int_attribute(metrics, "conditionals") or 0,
        _int_attribute(metrics, "coveredconditionals") or 0,
    )


def _clover_file(element: etree._Element) -> FileCoverage:
    path = clean_text(element.get("path") or element.get("name") or "", limit=PATH_LIMIT)
    stated = _clover_metrics(element)
    if stated is not None:
        lines_valid, lines_covered, branches_valid, branches_covered = stated
        return FileCoverage(path, lines_valid, lines_covered, branches_valid, branches_covered)
    lines = _FileLines()
    for line in element:
        if local_name(line) != "line" or line.get("type") == "method":
            continue
        number = _required_int(line, "num")
        lines.add_line(number, (_int_attribute(line, "count") or 0) > 0)
        if line.get("type") == "cond":
            taken = sum(1 for side in ("truecount", "falsecount") if (_int_attribute(line, side) or 0) > 0)
            lines.add_condition(number, taken, 2)
    return lines.summary(path)


def _read_cobertura_line(line: etree._Element, lines: _FileLines) -> None:
    number = _required_int(line, "number")
    hits = _required_int(line, "hits")
    lines.add_line(number, hits > 0)
    if line.get("branch") is not None:
        lines.measured_branches = True
    condition = line.get("condition-coverage")
    if condition:
        match = _CONDITION_COVERAGE.search(condition)
        if match is None:
            raise EvidenceParseError(
                f"condition-coverage={condition!r} is not like '50% (1/2)'", location=f"line {line.sourceline}"
            )
        lines.add_condition(number, int(match.group(1)), int(match.group(2)))


def _cobertura_tool(data: bytes) -> str:
    head = data[:2048]
    if b"coverage.py" in head:
        return "coverage.py"
    if b"simplecov" in head:
        return "simplecov"
    return "cobertura"


def parse_lcov(data: bytes) -> CoverageReport:
    """Read an LCOV tracefile (lcov, Istanbul, llvm-cov, c8 ...); records for one file are merged."""
    text = data.decode("utf-8-sig", errors="replace")  # paths are shown, never matched byte for byte
    by_path: dict[str, _FileLines] = {}
    current: _FileLines | None = None
    current_at = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        key, _, value = line.partition(":")
        if key == "SF":
            if current is not None:
                raise EvidenceParseError(
                    f"a new SF: record starts before the record from line {current_at} ended with end_of_record",
                    location=f"line {number}",
                )
            current = by_path.setdefault(clean_text(value, limit=PATH_LIMIT), _FileLines())
            current_at = number
        elif line == "end_of_record":
            if current is None:
                raise EvidenceParseError("end_of_record without an SF: line before it", location=f"line {number}")
            current = None
        elif key in ("DA", "BRDA", "LF", "LH", "BRF", "BRH"):
            if current is None:
                raise EvidenceParseError(
                    f"{key}: appears outside a record; every record starts with SF:<path>", location=f"line {number}"
                )
            _read_lcov_entry(key=key, value=value, lines=current, number=number)
        # TN:, FN:, FNDA:, FNF:, FNH:, VER: and unknown keys do not change line or branch coverage.
    if current is not None:
        raise EvidenceParseError(
            "the last record has no end_of_record; the tracefile looks truncated", location=f"line {current_at}"
        )
    if not by_path:
        raise EvidenceParseError("no SF: records found; this is not an LCOV tracefile (lcov.info)")
    files = [lines.summary(path) for path, lines in by_path.items()]
    return _summed_report(files, tool="lcov", generated_at=None)  # LCOV carries no timestamp


def _read_lcov_entry(*, key: str, value: str, lines: _FileLines, number: int) -> None:
    parts = value.split(",")
    try:
        if key == "DA":
            # DA:<line>,<hits>[,<checksum>]; hits can be 2^64-1 (a counter overflow) or "-1" from gcov
            # bugs: any positive count is covered, and Python ints do not overflow.
            lines.add_line(int(parts[0]), int(parts[1]) > 0)
        elif key == "BRDA":
            # BRDA:<line>,<block>,<branch>,<taken>; "-" means the block never ran, so the branch was not taken.
            if len(parts) < 4:
                raise ValueError
            line_number, block, branch, taken = parts[0], parts[1], ",".join(parts[2:-1]), parts[-1]
            covered = taken.strip() not in ("-", "") and int(taken) > 0
            branch_key = (int(line_number), block, branch)
            lines.branches[branch_key] = lines.branches.get(branch_key, False) or covered
            lines.measured_branches = True
        elif key in ("LF", "LH"):
            found, hit = lines.stated_lines or (0, 0)
            lines.stated_lines = (int(value), hit) if key == "LF" else (found, int(value))
        else:  # BRF, BRH
            found, hit = lines.stated_branches or (0, 0)
            lines.stated_branches = (int(value), hit) if key == "BRF" else (found, int(value))
            lines.measured_branches = True
    except (ValueError, IndexError):
        raise EvidenceParseError(f"cannot read {key}:{value!r} (expected whole numbers)", location=f"line {number}")


def parse_jacoco(data: bytes) -> CoverageReport:
    """Read a JaCoCo XML report (single module or report-aggregate with <group>s); files are <sourcefile>s."""
    root = parse_xml(data)
    refuse_declared_entities(root)
    if local_name(root) != "report":
        raise EvidenceParseError(
            f"the root element is <{local_name(root)}>, but a JaCoCo report starts with <report>; "
            "check that the right file was uploaded as type jacoco",
            location=f"line {root.sourceline}",
        )
    files: list[FileCoverage] = []
    for package in root.iter("{*}package"):
        package_name = package.get("name") or ""
        for sourcefile in package:
            if local_name(sourcefile) != "sourcefile":
                continue
            counters = _jacoco_counters(sourcefile)
            if "LINE" not in counters:
                continue  # interfaces and annotation-only files have no executable lines
            name = sourcefile.get("name") or ""
            path = f"{package_name}/{name}" if package_name else name
            lines_covered, lines_missed = counters["LINE"]
            branches_covered, branches_missed = counters.get("BRANCH", (0, 0))  # JaCoCo omits empty counters
            files.append(
                FileCoverage(
                    path=clean_text(path, limit=PATH_LIMIT),
                    lines_valid=lines_covered + lines_missed,
                    lines_covered=lines_covered,
                    branches_valid=branches_covered + branches_missed,
                    branches_covered=branches_covered,
                )
            )
    totals = _jacoco_counters(root)
    if "LINE" in totals:
        lines_covered, lines_missed = totals["LINE"]
        lines_valid = lines_covered + lines_missed
        branches_covered, branches_missed = totals.get("BRANCH", (0, 0))
        branches_valid = branches_covered + branches_missed
    else:
        lines_valid = sum(f.lines_valid for f in files)
        lines_covered = sum(f.lines_covered for f in files)
        branches_valid = sum(f.branches_valid or 0 for f in files)
        branches_covered = sum(f.branches_covered or 0 for f in files)
    # The session dumps are when the coverage data was taken; the latest one dates the report.
    dumps = [parse_timestamp(s.get("dump")) for s in root if local_name(s) == "sessioninfo"]
    dumped = [d for d in dumps if d is not None]
    return CoverageReport(
        line_rate=_rate(lines_covered, lines_valid),
        branch_rate=_rate(branches_covered, branches_valid),
        lines_valid=lines_valid,
        lines_covered=lines_covered,
        branches_valid=branches_valid,
        branches_covered=branches_covered,
        files=files,
        tool="jacoco",
        generated_at=max(dumped) if dumped else None,
    )


def _jacoco_counters(element: etree._Element) -> dict[str, tuple[int, int]]:
    """The element's own <counter>s as type -> (covered, missed)."""
    counters = {}
    for counter in element:
        if local_name(counter) == "counter":
            counters[counter.get("type") or ""] = (
                _required_int(counter, "covered"),
                _required_int(counter, "missed"),
            )
    return counters


def _required_int(element: etree._Element, attribute: str) -> int:
    value = element.get(attribute)
    if value is None:
        raise EvidenceParseError(
            f"<{local_name(element)}> has no {attribute} attribute", location=f"line {element.sourceline}"
        )
    try:
        return int(value)
    except ValueError:
        try:
            # Some writers emit "1.0"; a fractional count is still a count.
            return int(float(value))
        except (ValueError, OverflowError):
            raise EvidenceParseError(
                f"<{local_name(element)}> {attribute}={value!r} is not a whole number",
                location=f"line {element.sourceline}",
            ) from None


def _int_attribute(element: etree._Element, attribute: str) -> int | None:
    if element.get(attribute) in (None, ""):
        return None
    return _required_int(element, attribute)


def _rate_attribute(element: etree._Element, attribute: str) -> float | None:
    value = element.get(attribute)
    if value in (None, ""):
        return None
    try:
        rate = float(value)
    except ValueError:
        raise EvidenceParseError(
            f"{attribute}={value!r} is not a number between 0 and 1", location=f"line {element.sourceline}"
        ) from None
    if rate != rate:  # NaN: MATLAB and others write it when there was nothing to measure (0/0)
        warn(f'{attribute}="{value}" was recomputed from the counts', location=f"line {element.sourceline}")
        return None
    if not 0.0 <= rate <= 1.0:
        raise EvidenceParseError(
            f"{attribute}={value!r} is not a number between 0 and 1", location=f"line {element.sourceline}"
        )
    return rate


def _rate(covered: int, valid: int) -> float | None:
    return covered / valid if valid else None


def _sum_branches(files: list[FileCoverage]) -> tuple[int | None, int | None]:
    measured = [f for f in files if f.branches_valid is not None]
    if not measured:
        return None, None
    return sum(f.branches_valid or 0 for f in measured), sum(f.branches_covered or 0 for f in measured)


__all__ = ["parse_clover", "parse_cobertura", "parse_jacoco", "parse_lcov"]
