"""JUnit XML: every real sample, requirement links, odd shapes, a real pytest run, and speed."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.junit import parse_junit
from evidence.parsers.results import TEST_STATUSES
from tests.samples import sample_bytes, sample_names

# file -> (tool, suites, total, passed, failed incl. errors, skipped, started_at)
EXPECTED = {
    "junit/TEST-action.surefire.report.calc.StringUtilsTest.xml": ("surefire", 1, 5, 2, 2, 1, None),
    "junit/TEST-testng-junitreportreporter.xml": (
        "testng",
        1,
        2,
        0,
        1,
        1,
        datetime(2021, 3, 7, 10, 36, 56, tzinfo=UTC),
    ),
    "junit/go-junit-report.xml": ("go-junit-report", 3, 5, 2, 1, 2, datetime(2022, 1, 1, tzinfo=UTC)),
    "junit/jest-junit.xml": ("jest-junit", 2, 6, 1, 4, 1, datetime(2020, 10, 27, 21, 39, 41, tzinfo=UTC)),
    "junit/pytest-raw-single-line.xml": (
        "pytest",
        1,
        3,
        1,
        2,
        0,
        datetime(2020, 10, 12, 18, 46, 11, 226119, tzinfo=UTC),
    ),
    "junit/pytest-with-properties.xml": (
        "pytest",
        1,
        10,
        6,
        2,
        2,
        datetime(2025, 11, 15, 16, 51, 49, 548396, tzinfo=UTC),  # -05:00 converted to UTC
    ),
}


def test_every_junit_sample_is_listed_here():
    assert sorted(EXPECTED) == sample_names("junit") or not sample_names("junit")


@pytest.mark.parametrize("name", sample_names("junit"))
def test_junit_sample_parses_to_the_counts_the_report_states(name):
    report = parse_junit(sample_bytes(name))
    tool, suites, total, passed, failed, skipped, started_at = EXPECTED[name]
    assert (report.tool, report.suites, report.total, report.passed, report.failed, report.skipped) == (
        tool,
        suites,
        total,
        passed,
        failed,
        skipped,
    )
    assert report.started_at == started_at
    if report.started_at is not None:
        assert report.started_at.utcoffset().total_seconds() == 0
    assert all(case.status in TEST_STATUSES for case in report.cases)


def test_surefire_failure_message_loses_its_leading_newline_and_keeps_the_rest():
    report = parse_junit(sample_bytes("junit/TEST-action.surefire.report.calc.StringUtilsTest.xml"))
    require_fail = next(case for case in report.cases if case.name == "require_fail")
    assert require_fail.status == "failed"
    assert require_fail.duration_s == pytest.approx(0.007)
    assert require_fail.message.startswith("Expected: (an instance of java.lang.IllegalArgumentException")
    assert "didn't match condition." in require_fail.message
    assert [case.status for case in report.cases] == ["passed", "failed", "passed", "failed", "skipped"]
    assert require_fail.suite == "action.surefire.report.calc.StringUtilsTest"


def test_testng_same_test_name_twice_keeps_both_runs():
    report = parse_junit(sample_bytes("junit/TEST-testng-junitreportreporter.xml"))
    assert [(case.name, case.status) for case in report.cases] == [
        ("testVersionStrings", "skipped"),
        ("testVersionStrings", "failed"),
    ]
    assert report.cases[1].message == "expected [1.2.1] but found [1.2.0]"


def test_go_junit_report_cases_carry_their_package_suite_and_skip_message():
    report = parse_junit(sample_bytes("junit/go-junit-report.xml"))
    assert [case.suite for case in report.cases] == [
        "package/pass",
        "package/pass",
        "package/fail",
        "package/skip",
        "package/skip",
    ]
    failed = report.cases[2]
    assert (failed.name, failed.status, failed.message, failed.duration_s) == ("TestOne", "failed", "Failed", 0.151)
    assert report.cases[3].message == "Skipped"


def test_jest_junit_failure_without_message_attribute_uses_the_text():
    report = parse_junit(sample_bytes("junit/jest-junit.xml"))
    failing = report.cases[1]
    assert (failing.suite, failing.classname, failing.name) == (
        "__tests__\\main.test.js",
        "Test 1 › Test 1.1",
        "Failing test",
    )
    assert failing.message.startswith("Error: expect(received).toBeTruthy()")
    assert report.cases[4].classname == ""


def test_pytest_sample_reads_testcase_properties_and_xfail_as_skipped():
    report = parse_junit(sample_bytes("junit/pytest-with-properties.xml"))
    by_name = {case.name: case for case in report.cases}
    assert by_name["test_with_record_property"].properties == (("example_key", "1"),)
    assert by_name["test_with_record_property"].requirement_ids == ()
    assert by_name["test_expected_failure"].status == "skipped"
    assert by_name["test_always_fail"].message == "assert False"
    assert by_name["test_with_record_xml_attribute"].classname == "custom_classname"


REQUIREMENTS_REPORT = b"""<?xml version="1.0"?>
<testsuites>
  <testsuite name="outer" timestamp="2024-05-01T10:00:00Z">
    <testsuite name="inner" timestamp="2024-05-01T09:59:00+02:00">
      <testcase classname="tests.REQ-9.Module" name="test_login[REQ-017 REQ-018]" time="1.5">
        <properties>
          <property name="requirement" value="REQ-017"/>
          <property name="requirement" value="REQ-020, REQ-021,REQ-017"/>
          <property name="owner" value="qa"/>
        </properties>
      </testcase>
      <testcase classname="c" name="test_lowercase_req-5_is_not_an_id" time="bad"/>
      <testcase classname="c" name="test_errors"><error message="setup broke"/></testcase>
      <testcase classname="c" name="test_fails_and_errors">
        <error message="teardown"/><failure message="assert"/>
      </testcase>
    </testsuite>
    <testcase classname="c" name="test_directly_in_outer"><skipped/></testcase>
  </testsuite>
</testsuites>
"""


def test_requirement_ids_come_from_properties_then_name_then_classname_deduplicated():
    report = parse_junit(REQUIREMENTS_REPORT)
    linked = report.cases[0]
    assert linked.requirement_ids == ("REQ-017", "REQ-020", "REQ-021", "REQ-018", "REQ-9")
    assert ("owner", "qa") in linked.properties
    assert linked.duration_s == 1.5


def test_lowercase_requirement_lookalikes_are_not_links_and_bad_durations_are_unknown():
    case = parse_junit(REQUIREMENTS_REPORT).cases[1]
    assert case.requirement_ids == ()
    assert case.duration_s is None


def test_nested_suites_errors_and_the_earliest_timestamp():
    report = parse_junit(REQUIREMENTS_REPORT)
    assert report.suites == 2
    assert [case.suite for case in report.cases] == ["inner", "inner", "inner", "inner", "outer"]
    assert [case.status for case in report.cases] == ["passed", "passed", "error", "failed", "skipped"]
    assert report.cases[3].message == "assert"  # a failure outranks an error on the same case
    assert report.failed == 2
    assert report.started_at == datetime(2024, 5, 1, 7, 59, tzinfo=UTC)
    assert report.tool == "junit"


def test_a_lone_testsuite_root_with_a_namespace_is_read():
    data = b'<testsuite xmlns="urn:example" name="s"><testcase name="t" classname="k"/></testsuite>'
    report = parse_junit(data)
    assert (report.suites, report.total, report.cases[0].suite) == (1, 1, "s")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"<testsuites><testsuite name='s'><testcase name='t'>", "line 1"),
        (b"<?xml version='1.0'?>\n<coverage/>", "line 2: the root element is <coverage>"),
        (b"<testsuite>\n<testcase classname='x'/>\n</testsuite>", "line 2: a <testcase> has no name"),
        (b"this is not xml", "not well-formed"),
    ],
)
def test_malformed_reports_raise_one_clear_error(data, expected):
    with pytest.raises(EvidenceParseError, match=expected):
        parse_junit(data)


def test_a_real_pytest_junit_report_links_requirements(tmp_path):
    test_file = tmp_path / "test_generated.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import pytest

            def test_dose_limit(record_property):
                record_property("requirement", "REQ-017")
                assert 2 + 2 == 4

            def test_alarm_REQ_fails():
                assert 1 == 2, "alarm did not sound"

            @pytest.mark.skip(reason="hardware not attached")
            def test_pump():
                pass
            """
        )
    )
    report_path = tmp_path / "report.xml"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--junitxml={report_path}",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr  # one test fails on purpose
    report = parse_junit(report_path.read_bytes())
    assert (report.total, report.passed, report.failed, report.skipped) == (3, 1, 1, 1)
    assert report.tool == "pytest"
    assert report.started_at is not None and report.started_at.tzinfo is not None
    by_name = {case.name: case for case in report.cases}
    assert by_name["test_dose_limit"].requirement_ids == ("REQ-017",)
    assert by_name["test_dose_limit"].properties == (("requirement", "REQ-017"),)
    assert by_name["test_dose_limit"].classname == "test_generated"
    assert "alarm did not sound" in by_name["test_alarm_REQ_fails"].message
    assert by_name["test_alarm_REQ_fails"].requirement_ids == ()
    assert "hardware not attached" in by_name["test_pump"].message


def _large_report(cases: int) -> bytes:
    parts = [b'<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="%d">' % cases]
    for i in range(cases):
        if i % 40 == 0:
            parts.append(
                b'<testcase classname="tests.test_module_%d" name="test_case_%d[param]" time="0.012">'
                b'<failure message="AssertionError: assert 1 == 2">def test():\n&gt;  assert 1 == 2\nE  AssertionError'
                b"</failure></testcase>" % (i % 97, i)
            )
        else:
            parts.append(
                b'<testcase classname="tests.test_module_%d" name="test_case_%d[param]" time="0.001" />' % (i % 97, i)
            )
    parts.append(b"</testsuite></testsuites>")
    return b"".join(parts)


def test_a_100000_case_report_parses_completely():
    # Speed against bare lxml is measured by `make bench` (benchmarks/bench_evidence_ingest.py), not here.
    report = parse_junit(_large_report(100_000))
    assert (report.total, report.failed) == (100_000, 2_500)
