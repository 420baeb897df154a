"""SARIF: every real sample, level and severity rules, wrong shapes, and a real ruff run."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from evidence.parsers.base import EvidenceParseError
from evidence.parsers.results import SARIF_LEVELS, SEVERITIES
from evidence.parsers.sarif import parse_sarif
from tests.samples import sample_bytes, sample_names

# file -> (tools, findings, Counter of (level, severity))
EXPECTED = {
    "sarif/codeql-2.19.0-ruby.sarif": (
        ["CodeQL"],
        4,
        Counter({("error", "critical"): 2, ("warning", "high"): 1, ("warning", "critical"): 1}),
    ),
    "sarif/semgrep-oss-1.69.0-gitlab-rules.sarif": (
        ["Semgrep OSS"],
        77,
        Counter({("warning", "medium"): 42, ("error", "critical"): 34, ("error", "high"): 1}),
    ),
    "sarif/trivy-alpine-310.sarif": (["Trivy"], 4, Counter({("warning", "medium"): 4})),
}


def test_every_sarif_sample_is_listed_here():
    assert sorted(EXPECTED) == sample_names("sarif") or not sample_names("sarif")


@pytest.mark.parametrize("name", sample_names("sarif"))
def test_sarif_sample_parses_with_levels_from_rules_and_severities(name):
    report = parse_sarif(sample_bytes(name))
    tools, count, levels = EXPECTED[name]
    assert report.tools == tools
    assert len(report.findings) == count
    assert Counter((f.level, f.severity) for f in report.findings) == levels
    assert all(f.level in SARIF_LEVELS and f.severity in SEVERITIES for f in report.findings)
    assert all(f.fingerprint and f.path and f.start_line for f in report.findings)
    assert not any(f.suppressed for f in report.findings)


def test_codeql_results_without_level_take_the_rule_default_and_numeric_security_severity():
    findings = parse_sarif(sample_bytes("sarif/codeql-2.19.0-ruby.sarif")).findings
    first = findings[0]
    assert (first.rule_id, first.level, first.severity) == ("rb/request-forgery", "error", "critical")  # 9.1
    assert (first.path, first.start_line, first.fingerprint) == ("script.rb", 6, "f756b044c287db7:1")
    assert first.message == "The URL of this request depends on a [user-provided value](1)."
    csrf = findings[1]
    assert (csrf.rule_id, csrf.level, csrf.severity) == ("rb/csrf-protection-not-enabled", "warning", "high")  # 8.8
    assert csrf.tool == "CodeQL"


def test_semgrep_word_severity_is_taken_as_written():
    findings = parse_sarif(sample_bytes("sarif/semgrep-oss-1.69.0-gitlab-rules.sarif")).findings
    first = findings[0]
    assert first.rule_id.endswith("javascript_pathtraversal_rule-non-literal-fs-filename")
    assert (first.level, first.severity, first.path, first.start_line) == ("warning", "medium", "Gruntfile.js", 75)
    assert first.fingerprint.startswith("e5aea7d033ad2f52b0c68a45048d8297e595979")


def test_trivy_results_without_fingerprints_get_a_stable_hash():
    first = parse_sarif(sample_bytes("sarif/trivy-alpine-310.sarif")).findings[0]
    again = parse_sarif(sample_bytes("sarif/trivy-alpine-310.sarif")).findings[0]
    assert (first.rule_id, first.level, first.severity) == ("CVE-2019-1549", "warning", "medium")  # 5.3
    assert first.path == "testdata/fixtures/images/alpine-310.tar.gz"
    assert first.fingerprint.startswith("sha256:") and len(first.fingerprint) == 71
    assert first.fingerprint == again.fingerprint
    assert first.message.startswith("Package: libcrypto1.1\nInstalled Version: 1.1.1c-r0")


def _log(results, *, rules=None, extensions=None, runs_extra=None):
    tool = {"driver": {"name": "scanner", "rules": rules or []}}
    if extensions is not None:
        tool["extensions"] = extensions
    run = {"tool": tool, "results": results, **(runs_extra or {})}
    return json.dumps(
        {"version": "2.1.0", "runs": [run, {"tool": {"driver": {"name": "second"}}, "results": []}]}
    ).encode()


def _result(**extra):
    return {"ruleId": "R1", "message": {"text": "m"}, **extra}


def test_level_falls_back_to_warning_and_severity_to_the_level():
    report = parse_sarif(_log([_result(), _result(level="note"), _result(level="error"), _result(kind="review")]))
    assert [(f.level, f.severity) for f in report.findings] == [
        ("warning", "medium"),
        ("note", "low"),
        ("error", "high"),
        ("none", "unknown"),
    ]
    assert report.tools == ["scanner", "second"]
    assert report.findings[0].path == "" and report.findings[0].start_line is None


def test_rules_are_found_by_index_by_id_and_in_extensions():
    rules = [
        {"id": "R0", "defaultConfiguration": {"level": "note"}, "properties": {"security-severity": "3.1"}},
        {"id": "R1", "defaultConfiguration": {"level": "error"}, "properties": {"security-severity": "0"}},
    ]
    extension_rules = [{"id": "EXT", "properties": {"security-severity": "Critical"}}]
    report = parse_sarif(
        _log(
            [
                {"ruleIndex": 0, "message": {"text": "by index"}},
                _result(),
                {"ruleId": "EXT", "message": {"text": "by id in an extension"}},
                {"rule": {"index": 0, "toolComponent": {"index": 0}}, "message": {"text": "by component"}},
                _result(properties={"security-severity": "9.0"}),
            ],
            rules=rules,
            extensions=[{"name": "pack", "rules": extension_rules}],
        )
    )
    assert [(f.rule_id, f.level, f.severity) for f in report.findings] == [
        ("R0", "note", "low"),
        ("R1", "error", "high"),  # a score of 0 says nothing: the level decides
        ("EXT", "warning", "critical"),
        ("EXT", "warning", "critical"),
        ("R1", "error", "critical"),  # the result's own rating wins over the rule's
    ]


def test_message_templates_fingerprints_suppressions_and_artifact_indexes():
    rules = [{"id": "R1", "messageStrings": {"default": {"text": "Variable {0} is unused in {1}."}}}]
    results = [
        _result(
            message={"id": "default", "arguments": ["x", "f"]},
            partialFingerprints={"primaryLocationLineHash": "abc:1"},
            fingerprints={"stable": "zzz"},
            suppressions=[{"kind": "inSource"}],
            locations=[{"physicalLocation": {"artifactLocation": {"index": 0}, "region": {"startLine": 4}}}],
        ),
        _result(fingerprints={"stable": "zzz"}, suppressions=[{"kind": "external", "status": "rejected"}]),
        _result(message={"text": "nul\u0000byte"}, locations=[{"logicalLocations": [{"fullyQualifiedName": "pkg.f"}]}]),
    ]
    report = parse_sarif(_log(results, rules=rules, runs_extra={"artifacts": [{"location": {"uri": "src/a.py"}}]}))
    first, second, third = report.findings
    assert first.message == "Variable x is unused in f."
    assert (first.fingerprint, first.suppressed, first.path, first.start_line) == ("abc:1", True, "src/a.py", 4)
    assert (second.fingerprint, second.suppressed) == ("zzz", False)
    assert (third.message, third.path) == ("nulbyte", "pkg.f")


def test_null_results_mean_no_findings_from_that_run():
    report = parse_sarif(json.dumps({"runs": [{"tool": {"driver": {"name": "t"}}, "results": None}]}).encode())
    assert (report.findings, report.tools) == ([], ["t"])


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"version": "2.1.0"}, "runs"),
        ([], "$"),
        ({"runs": [{"results": []}]}, r"runs\[0\]\.tool"),
        ({"runs": [{"tool": {"driver": {}}, "results": []}]}, r"runs\[0\]\.tool\.driver\.name"),
        ({"runs": [{"tool": {"driver": {"name": "t"}}, "results": {}}]}, r"runs\[0\]\.results"),
        ({"runs": [{"tool": {"driver": {"name": "t"}}, "results": [1]}]}, r"runs\[0\]\.results\[0\]"),
        (
            {"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"message": {"text": "m"}}, {"ruleId": 7}]}]},
            r"runs\[0\]\.results\[1\]\.ruleId",
        ),
        (
            {"runs": [{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "r", "message": "text"}]}]},
            r"results\[0\]\.message",
        ),
        (
            {"runs": [{"tool": {"driver": {"name": "t"}}, "results": [_result(level="fatal")]}]},
            r"results\[0\]\.level",
        ),
        (
            {
                "runs": [
                    {
                        "tool": {"driver": {"name": "t"}},
                        "results": [
                            _result(locations=[{"physicalLocation": {"region": {"startLine": "7"}}}]),
                        ],
                    }
                ]
            },
            r"results\[0\]\.locations\[0\]\.physicalLocation\.region\.startLine",
        ),
        (
            {"runs": [{"tool": {"driver": {"name": "t"}}, "results": [_result(suppressions={})]}]},
            r"results\[0\]\.suppressions",
        ),
    ],
)
def test_wrong_shapes_name_the_json_path(document, location):
    with pytest.raises(EvidenceParseError, match=location):
        parse_sarif(json.dumps(document).encode())


@pytest.mark.parametrize("data", [b"", b'{"runs": [', b"\xff\xfe not utf-8"])
def test_truncated_or_non_json_input_is_refused_clearly(data):
    with pytest.raises(EvidenceParseError):
        parse_sarif(data)


def test_a_real_ruff_sarif_log(tmp_path):
    (tmp_path / "bad.py").write_text("import os\nimport sys\n\nprint('hello')\n")
    ruff = Path(sys.executable).parent / "ruff"
    completed = subprocess.run(
        [str(ruff), "check", "--output-format", "sarif", "--no-cache", "--isolated", "--select", "F401", "bad.py"],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr  # ruff exits 1 when it finds something
    report = parse_sarif(completed.stdout)
    assert report.tools == ["ruff"]
    assert [(f.rule_id, f.level, f.severity, f.start_line) for f in report.findings] == [
        ("F401", "error", "high", 1),
        ("F401", "error", "high", 2),
    ]
    assert report.findings[0].path == str(tmp_path / "bad.py")  # ruff writes a file:// URI
    assert report.findings[0].message == "`os` imported but unused"
    assert report.findings[0].fingerprint != report.findings[1].fingerprint
