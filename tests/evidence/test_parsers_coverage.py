"""Coverage: every real Cobertura, LCOV and JaCoCo sample, odd shapes, and a real coverage.py run."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.coverage import parse_cobertura, parse_jacoco, parse_lcov
from evidence.parsers.results import FileCoverage
from tests.samples import sample_bytes, sample_names

# file -> (tool, line_rate, branch_rate, lines_valid, lines_covered, branches_valid, branches_covered,
#          number of files, generated_at)
EXPECTED = {
    "coverage/cobertura-coveragepy-branch.xml": (
        "coverage.py",
        0.8,
        0.5,
        5,
        4,
        2,
        1,
        1,
        datetime(2018, 8, 21, 11, 3, 43, 448000, tzinfo=UTC),
    ),
    "coverage/cobertura-istanbul-flat.xml": (
        "cobertura",
        1.0,
        1.0,
        51,
        51,
        35,
        35,
        2,
        datetime(2019, 12, 23, 23, 11, 32, 246000, tzinfo=UTC),
    ),
    "coverage/cobertura-simplecov.xml": (
        "simplecov",
        0.97,
        None,
        362,
        350,
        None,
        None,
        13,
        datetime(2022, 2, 17, 1, 7, 32, tzinfo=UTC),
    ),
    "coverage/jacoco-aggregate-groups.xml": (
        "jacoco",
        7593 / 9823,
        1268 / 2066,
        9823,
        7593,
        2066,
        1268,
        5,
        datetime(2021, 9, 1, 5, 57, 24, 131000, tzinfo=UTC),
    ),
    "coverage/jacoco-single-line.xml": (
        "jacoco",
        5 / 6,
        0.5,
        6,
        5,
        4,
        2,
        1,
        datetime(2023, 3, 7, 10, 17, 0, 155000, tzinfo=UTC),
    ),
    "coverage/lcov-istanbul.info": ("lcov", 16 / 17, 7 / 8, 17, 16, 8, 7, 3, None),
    "coverage/lcov-llvm-cov-swift.info": ("lcov", 0.0, None, 354, 0, None, None, 4, None),
}


def _parse(name: str, data: bytes):
    if name.endswith(".info"):
        return parse_lcov(data)
    if "jacoco" in name:
        return parse_jacoco(data)
    return parse_cobertura(data)


def test_every_coverage_sample_is_listed_here():
    assert sorted(EXPECTED) == sample_names("coverage") or not sample_names("coverage")


@pytest.mark.parametrize("name", sample_names("coverage"))
def test_coverage_sample_parses_to_the_figures_the_tool_wrote(name):
    report = _parse(name, sample_bytes(name))
    tool, line_rate, branch_rate, lines_valid, lines_covered, branches_valid, branches_covered, files, when = EXPECTED[
        name
    ]
    assert report.tool == tool
    assert report.line_rate == pytest.approx(line_rate)
    assert report.branch_rate == (pytest.approx(branch_rate) if branch_rate is not None else None)
    assert (report.lines_valid, report.lines_covered) == (lines_valid, lines_covered)
    assert (report.branches_valid, report.branches_covered) == (branches_valid, branches_covered)
    assert len(report.files) == files
    assert report.generated_at == when


def test_coveragepy_branch_data_is_read_per_file():
    report = parse_cobertura(sample_bytes("coverage/cobertura-coveragepy-branch.xml"))
    assert report.files == [
        FileCoverage(path="y.py", lines_valid=5, lines_covered=4, branches_valid=2, branches_covered=1)
    ]


def test_istanbul_flat_classes_under_packages_are_found_and_method_lines_not_double_counted():
    report = parse_cobertura(sample_bytes("coverage/cobertura-istanbul-flat.xml"))
    assert [(f.path, f.lines_valid, f.lines_covered, f.branches_valid) for f in report.files] == [
        ("src/action.js", 33, 33, 8),
        ("src/cobertura.js", 18, 18, 8),
    ]
    assert sum(f.lines_valid for f in report.files) == report.lines_valid


def test_simplecov_without_branch_attributes_and_with_crlf_has_no_branch_figures():
    data = sample_bytes("coverage/cobertura-simplecov.xml")
    assert b"\r\n" in data
    report = parse_cobertura(data)
    access_token = next(f for f in report.files if f.path == "lib/oauth2/access_token.rb")
    assert (access_token.lines_valid, access_token.lines_covered, access_token.branches_valid) == (68, 65, None)


def test_jacoco_aggregate_reads_sourcefiles_of_every_group_and_skips_empty_ones():
    report = parse_jacoco(sample_bytes("coverage/jacoco-aggregate-groups.xml"))
    assert [f.path for f in report.files] == [
        "com/madrapps/text/StringOp.java",
        "com/madrapps/math/Math.kt",
        "com/madrapps/playground/ActivityViewModelLazy.kt",
        "com/madrapps/playground/MainActivity.kt",
        "com/madrapps/playground/MainViewModel.kt",
    ]
    assert report.files[1] == FileCoverage(
        path="com/madrapps/math/Math.kt", lines_valid=7, lines_covered=5, branches_valid=0, branches_covered=0
    )


def test_lcov_istanbul_quirks_no_tn_define_path_and_a_2_to_the_64_hit_count():
    report = parse_lcov(sample_bytes("coverage/lcov-istanbul.info"))
    assert [f.path for f in report.files] == [
        "dist/<define:DATA>",
        "spec/fixtures/lcov/index.js",
        "spec/fixtures/lcov/lib/run.js",
    ]
    run = report.files[2]
    assert (run.lines_valid, run.lines_covered, run.branches_valid, run.branches_covered) == (14, 13, 8, 7)


def test_llvm_cov_lcov_counts_the_da_lines_it_lists():
    report = parse_lcov(sample_bytes("coverage/lcov-llvm-cov-swift.info"))
    ledger = report.files[0]
    assert ledger.path.endswith("/LedgerLookup.swift")
    # llvm-cov states LF:92 but lists only 70 DA lines; the listed lines are what can be checked.
    assert (ledger.lines_valid, ledger.lines_covered, ledger.branches_valid) == (70, 0, None)


def test_cobertura_totals_are_summed_from_files_when_the_root_has_none():
    data = b"""<coverage><packages><package name="p"><classes>
      <class name="a" filename="a.py"><lines>
        <line number="1" hits="3"/><line number="2" hits="0" branch="true" condition-coverage="25% (1/4)"/>
      </lines></class>
      <class name="a$inner" filename="a.py"><lines>
        <line number="2" hits="1"/><line number="9" hits="0"/>
      </lines></class>
    </classes></package></packages></coverage>"""
    report = parse_cobertura(data)
    assert report.files == [
        FileCoverage(path="a.py", lines_valid=3, lines_covered=2, branches_valid=4, branches_covered=1)
    ]
    assert (report.line_rate, report.branch_rate) == (pytest.approx(2 / 3), 0.25)
    assert report.tool == "cobertura" and report.generated_at is None


def test_lcov_merges_records_for_the_same_file_and_reads_untaken_branches():
    data = (
        b"TN:a\nSF:x.c\nDA:1,0\nDA:2,5\nBRDA:2,0,0,-\nBRDA:2,0,1,3\nend_of_record\n"
        b"TN:b\nSF:x.c\nDA:1,1\nend_of_record\n"
    )
    report = parse_lcov(data)
    assert report.files == [
        FileCoverage(path="x.c", lines_valid=2, lines_covered=2, branches_valid=2, branches_covered=1)
    ]


def test_lcov_falls_back_to_lf_and_lh_when_no_da_lines_are_given():
    report = parse_lcov(b"SF:a.js\nLF:10\nLH:7\nBRF:4\nBRH:1\nend_of_record\n")
    assert (report.lines_valid, report.lines_covered, report.branches_valid, report.branches_covered) == (10, 7, 4, 1)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "no SF: records"),
        (b"SF:a.c\nDA:1,1\n", "line 1: the last record has no end_of_record"),
        (b"SF:a.c\nDA:one,1\nend_of_record\n", "line 2: cannot read DA"),
        (b"DA:1,1\nend_of_record\n", "line 1: DA: appears outside a record"),
        (b"SF:a.c\nSF:b.c\n", "line 2: a new SF: record"),
        (b"SF:a.c\nBRDA:1,0\nend_of_record\n", "line 2: cannot read BRDA"),
    ],
)
def test_malformed_lcov_names_the_line(data, expected):
    with pytest.raises(EvidenceParseError, match=expected):
        parse_lcov(data)


@pytest.mark.parametrize(
    ("parser", "data", "expected"),
    [
        (parse_cobertura, b"<report/>", "root element is <report>"),
        (parse_cobertura, b"<coverage>\n<packages><class name='x'/></packages></coverage>", "line 2: a <class> has no"),
        (
            parse_cobertura,
            b"<coverage><packages><class filename='a'><lines>\n<line number='1' hits='many'/></lines></class>"
            b"</packages></coverage>",
            "line 2: <line> hits='many'",
        ),
        (
            parse_cobertura,
            b"<coverage line-rate='7'><packages/></coverage>",
            "line-rate='7' is not a number between 0 and 1",
        ),
        (parse_cobertura, b"<coverage>\n<packages>", "line 2"),
        (parse_jacoco, b"<coverage/>", "root element is <coverage>"),
        (parse_jacoco, b"<report><package name='p'>\n<sourcefile name='A.java'><counter type='LINE'/>", "line 2"),
        (
            parse_jacoco,
            b"<report><package name='p'><sourcefile name='A.java'>\n<counter type='LINE' covered='1'/>"
            b"</sourcefile></package></report>",
            "line 2: <counter> has no missed attribute",
        ),
    ],
)
def test_malformed_xml_coverage_names_the_line(parser, data, expected):
    with pytest.raises(EvidenceParseError, match=expected):
        parser(data)


def test_real_coveragepy_xml_and_lcov_reports_agree(tmp_path):
    module = tmp_path / "dosage.py"
    module.write_text(
        textwrap.dedent(
            """
            def dose(weight, child):
                if child:
                    return weight * 0.5
                return weight * 1.0

            def unused():
                return "never called"

            print(dose(70, child=False))
            """
        )
    )

    def coverage(*arguments):
        completed = subprocess.run(
            [sys.executable, "-m", "coverage", *arguments],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr

    coverage("run", "--branch", "dosage.py")
    coverage("xml", "-o", "coverage.xml")
    coverage("lcov", "-o", "coverage.info")

    cobertura = parse_cobertura((tmp_path / "coverage.xml").read_bytes())
    lcov = parse_lcov((tmp_path / "coverage.info").read_bytes())
    # Statements: def, if, return (child), return, def, return (unused), print = 7; the child branch
    # and the body of unused() never ran.
    assert (cobertura.lines_valid, cobertura.lines_covered) == (7, 5)
    assert (cobertura.branches_valid, cobertura.branches_covered) == (2, 1)
    assert cobertura.tool == "coverage.py"
    assert cobertura.generated_at is not None and cobertura.generated_at.year >= 2024
    assert [f.path for f in cobertura.files] == ["dosage.py"]
    assert (lcov.lines_valid, lcov.lines_covered) == (7, 5)
    assert (lcov.branches_valid, lcov.branches_covered) == (2, 1)
    assert lcov.files[0].path.endswith("dosage.py")
