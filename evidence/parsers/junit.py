"""JUnit XML test reports (pytest, Surefire, TestNG, go-junit-report, jest-junit and friends), streamed."""

from __future__ import annotations

import re
from datetime import datetime

from lxml import etree

from common.times import parse_timestamp
from evidence.parsers.base import (
    EvidenceParseError,
    clean_text,
    iterparse_xml,
    local_name,
    refuse_declared_entities,
    seconds,
    warn,
)
from evidence.parsers.results import TestCaseResult, TestReport

# DESIGN §2: tests link to requirements by a `requirement` property or by the ID in the test's name.
# Not \b: pytest names such as `test_alarm[REQ-017]` or `test_REQ-017_x` put `_` (a word character) before it.
REQUIREMENT_IN_NAME = re.compile(r"(?<![A-Za-z0-9])REQ-\d+(?!\d)")
REQUIREMENT_PROPERTY_NAMES = frozenset({"requirement", "requirements"})
MESSAGE_LIMIT = 4000  # enough for the assertion and the top of a stack trace; the raw report is kept anyway
NAME_LIMIT = 1000
_TRIM_EVERY = 1024  # cleared test cases kept before their empty shells are dropped

# Outcome elements inside <testcase>; when several appear (pytest: a failing test whose teardown also
# errors), the strongest wins: a failed assertion outranks an error, which outranks a skip.
_OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}
_RANK = {"passed": 0, "skipped": 1, "error": 2, "failed": 3}
_INFINITY = float("inf")
# Outcomes some writers give as attributes, with no child element: CTest and the Jenkins xunit schema write
# status="disabled"/"notrun"/"failed", GoogleTest result="skipped"/"suppressed", others skipped="true".
_STATUS_ATTRIBUTE = {
    "disabled": "skipped",
    "notrun": "skipped",
    "not_run": "skipped",
    "skipped": "skipped",
    "skip": "skipped",
    "ignored": "skipped",
    "pending": "skipped",
    "failed": "failed",
    "fail": "failed",
    "failure": "failed",
    "error": "error",
    "errored": "error",
}
_RESULT_ATTRIBUTE = {"skipped": "skipped", "suppressed": "skipped", "failed": "failed", "error": "error"}
_TRUE = frozenset({"true", "1", "yes"})


def parse_junit(data: bytes) -> TestReport:
    """Read a JUnit XML report (root <testsuites> or <testsuite>, suites may nest) without holding it all."""
    if not data.strip():
        raise EvidenceParseError("the test report is empty; upload the JUnit XML file the test run wrote")
    cases: list[TestCaseResult] = []
    append = cases.append
    suites = 0
    earliest: datetime | None = None
    suite_element, suite_name = None, ""
    since_trim = 0
    # Only the two elements that matter raise events; lxml still builds their children, which we clear.
    events = iterparse_xml(data, events=("end",), tag=("{*}testcase", "{*}testsuite"))
    try:
        for _event, element in events:
            if element.tag == "testcase" or element.tag.endswith("}testcase"):
                parent = element.getparent()
                # lxml hands back the same proxy while we hold it: identity is a cheap cache key.
                if parent is not suite_element:
                    suite_element, suite_name = parent, _suite_name(parent)
                append(_read_case(element, suite_name))
                if len(element):  # free failure texts and output now; empty shells go in the next trim
                    element.clear(keep_tail=False)
                since_trim += 1
                if since_trim == _TRIM_EVERY:
                    # Drop the cleared cases in one slice rather than one by one.
                    since_trim = 0
                    if parent is not None:
                        del parent[: parent.index(element)]
                continue
            suites += 1
            started = parse_timestamp(element.get("timestamp"))
            if started is not None and (earliest is None or started < earliest):
                earliest = started
            element.clear(keep_tail=False)
            suite_element = None  # a cleared suite may be garbage-collected and its proxy reused
    except etree.XMLSyntaxError as exc:
        raise EvidenceParseError(
            f"the XML is not well-formed ({exc.msg}); the report may be truncated or not XML at all",
            location=f"line {exc.lineno}",
        ) from None
    root = events.root
    if root is None:
        raise EvidenceParseError("the document has no root element; it is not a JUnit XML report")
    refuse_declared_entities(root)
    _require_junit_root(root)
    if local_name(root) == "testsuites":
        started = parse_timestamp(root.get("timestamp"))
        if started is not None and (earliest is None or started < earliest):
            earliest = started
    return TestReport(cases=cases, suites=suites, started_at=earliest, tool=_guess_tool(data=data, root=root))


def _require_junit_root(root: etree._Element) -> None:
    name = local_name(root)
    if name not in ("testsuites", "testsuite"):
        raise EvidenceParseError(
            f"the root element is <{name}>, but a JUnit XML report starts with <testsuites> or <testsuite>; "
            "check that the right file was uploaded as type junit",
            location=f"line {root.sourceline}",
        )


def _read_case(case: etree._Element, suite: str) -> TestCaseResult:
    # Runs once per test case, so it is written for speed: a 100,000-case report must stay fast.
    get = case.get
    name = get("name")
    if name is None:
        raise EvidenceParseError(
            "a <testcase> has no name attribute; every test case needs a name", location=f"line {case.sourceline}"
        )
    if "\x00" in name or len(name) > NAME_LIMIT:
        name = clean_text(name, limit=NAME_LIMIT)
    classname = get("classname") or ""
    if "\x00" in classname or len(classname) > NAME_LIMIT:
        classname = clean_text(classname, limit=NAME_LIMIT)
    status, message = "passed", ""
    properties: tuple[tuple[str, str], ...] = ()
    if len(case):
        found: list[tuple[str, str]] = []
        for child in case:
            child_name = _bare_tag(child.tag)
            if child_name == "properties":
                found.extend(_read_properties(child))
                continue
            outcome = _OUTCOMES.get(child_name)
            if outcome is not None and _RANK[outcome] > _RANK[status]:
                status = outcome
                # Surefire puts a leading newline in the message attribute; jest-junit only has text.
                text = (child.get("message") or "").strip() or (child.text or "").strip()
                message = _text(text, limit=MESSAGE_LIMIT)
        properties = tuple(found)
    if get("status") or get("result") or get("skipped") or get("disabled"):
        status = _attribute_outcome(case, status)
    if properties or "REQ-" in name or "REQ-" in classname:
        requirement_ids = _requirement_ids(properties=properties, name=name, classname=classname)
    else:
        requirement_ids = ()
    duration: float | None = None
    time = get("time")
    if time:
        try:
            duration = float(time)
        except ValueError:
            duration = seconds(time)  # "1,234.5" and other spellings
        else:
            if not 0 <= duration < _INFINITY:  # negative, NaN or "inf" is no duration
                duration = None
    return TestCaseResult(suite, classname, name, status, duration, message, requirement_ids, properties)


def _attribute_outcome(case: etree._Element, status: str) -> str:
    """The outcome written as attributes (status, result, skipped, disabled) when it outranks the children's."""
    get = case.get
    stated = [
        ("status", _STATUS_ATTRIBUTE.get((get("status") or "").strip().lower())),
        ("result", _RESULT_ATTRIBUTE.get((get("result") or "").strip().lower())),
        ("skipped", "skipped" if (get("skipped") or "").strip().lower() in _TRUE else None),
        ("disabled", "skipped" if (get("disabled") or "").strip().lower() in _TRUE else None),
    ]
    for attribute, outcome in stated:
        if outcome is not None and _RANK[outcome] > _RANK[status]:
            warn(
                f"a test case with {attribute}={get(attribute)!r} and no <{_CHILD_OF[outcome]}> element was "
                f"counted as {outcome}",
                location=f"line {case.sourceline}",
            )
            status = outcome
    return status


_CHILD_OF = {"skipped": "skipped", "failed": "failure", "error": "error"}


def _read_properties(element: etree._Element) -> list[tuple[str, str]]:
    found = []
    for prop in element:
        if _bare_tag(prop.tag) != "property":
            continue
        # pytest writes value="..."; some tools put the value in the element text instead.
        value = prop.get("value")
        if value is None:
            value = prop.text or ""
        found.append((_text(prop.get("name") or "", limit=NAME_LIMIT), _text(value, limit=MESSAGE_LIMIT)))
    return found


def _requirement_ids(*, properties: tuple[tuple[str, str], ...], name: str, classname: str) -> tuple[str, ...]:
    """Requirement IDs from properties first (each may list several, comma-separated), then name, classname."""
    found: list[str] = []
    for key, value in properties:
        if key.strip().lower() in REQUIREMENT_PROPERTY_NAMES:
            found.extend(part.strip() for part in value.split(","))
    found.extend(REQUIREMENT_IN_NAME.findall(name))
    found.extend(REQUIREMENT_IN_NAME.findall(classname))
    return tuple(dict.fromkeys(item for item in found if item))


def _suite_name(parent: etree._Element | None) -> str:
    """The innermost enclosing <testsuite>'s name; its start tag, so its attributes, came before its cases."""
    while parent is not None:
        if _bare_tag(parent.tag) == "testsuite":
            return _text(parent.get("name") or "", limit=NAME_LIMIT)
        parent = parent.getparent()
    return ""


def _bare_tag(tag: object) -> str:
    """The tag without its namespace (a hot-path twin of base.local_name)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if "}" in tag else tag


def _text(value: str, *, limit: int) -> str:
    """clean_text's fast path: most strings in a large report have no NUL and fit the limit."""
    if "\x00" in value or len(value) > limit:
        return clean_text(value, limit=limit)
    return value


def _guess_tool(*, data: bytes, root: etree._Element) -> str:
    """The tool that wrote the report, from markers each one leaves (informative only)."""
    head = data[:4096]
    if b"org.testng" in head:
        return "testng"
    if b"surefire" in head:
        return "surefire"
    if b"go.version" in head:
        return "go-junit-report"
    if root.get("name") == "jest tests":
        return "jest-junit"
    if b'name="pytest"' in head:
        return "pytest"
    return "junit"
