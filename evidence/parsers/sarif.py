"""SARIF 2.1.0 static-analysis logs (CodeQL, Semgrep, Trivy, ruff ...), every run and every result."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from common.safe_formats import json_type_name
from evidence.parsers.base import EvidenceParseError, clean_text, parse_json, warn
from evidence.parsers.results import SARIF_LEVELS, StaticAnalysisReport, StaticFinding
from evidence.parsers.severity import severity_from_score

MESSAGE_LIMIT = 4000
TEXT_LIMIT = 1000
_LEVEL_SEVERITY = {"error": "high", "warning": "medium", "note": "low", "none": "unknown"}
_SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "info": "low",
    "informational": "low",
}
# SARIF §3.27.9: "pass" and "notApplicable" results record that a rule held or did not apply.
_NOT_FINDINGS = frozenset({"pass", "notApplicable"})
_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def parse_sarif(data: bytes) -> StaticAnalysisReport:
    """Read every result of every run of a SARIF 2.1.0 log.

    level: the result's `level`, else its rule's `defaultConfiguration.level` (the rule found by
    `ruleIndex`/`rule.index`, or by `ruleId` in `tool.driver.rules` and `tool.extensions[].rules`), else
    "warning" as SARIF §3.27.10 prescribes ("none" for results whose `kind` is not "fail").

    severity: from `security-severity` in the result's or the rule's properties. A number is read as a
    CVSS score (≥9 critical, ≥7 high, ≥4 medium, >0 low); a word such as Semgrep's "MEDIUM" is taken
    as it says. Without either (or with a score of 0) the level decides: error→high, warning→medium,
    note→low, none→unknown. A security rating is the better signal where a tool gives one, so it wins
    over the level; the level fallback keeps plain linters (ruff, ESLint) comparable to scanners.

    fingerprint: the first value of `partialFingerprints`, else of `fingerprints`, else a sha256 of
    rule, path, line and message. Tools compute these per location, so two rules firing on one line can
    share a fingerprint: identify a finding by (tool, rule_id, fingerprint).
    """
    document = parse_json(data)
    log = _object(document, "$")
    runs = log.get("runs")
    if not isinstance(runs, list):
        raise EvidenceParseError(
            "a SARIF log needs a 'runs' array; check that the right file was uploaded as type sarif",
            location="runs",
        )
    findings: list[StaticFinding] = []
    tools: list[str] = []
    for run_index, run in enumerate(runs):
        run_path = f"runs[{run_index}]"
        run = _object(run, run_path)
        tool = _object(run.get("tool"), f"{run_path}.tool")
        driver = _object(tool.get("driver"), f"{run_path}.tool.driver")
        tool_name = _string(driver.get("name"), f"{run_path}.tool.driver.name", required=True)
        if tool_name not in tools:
            tools.append(tool_name)
        rules = _Rules(tool=tool, run_path=run_path)
        artifacts = run.get("artifacts") if isinstance(run.get("artifacts"), list) else []
        results = run.get("results")
        if results is None:
            continue  # SARIF: null results means the tool did not run to completion, not "no findings"
        if not isinstance(results, list):
            raise EvidenceParseError("'results' must be an array of result objects", location=f"{run_path}.results")
        for result_index, result in enumerate(results):
            if isinstance(result, dict) and result.get("kind") in _NOT_FINDINGS:
                warn(
                    f"results of kind {result['kind']!r} say a rule found nothing to report; they are not findings",
                    location=f"{run_path}.results[{result_index}]",
                )
                continue
            findings.append(
                _read_result(
                    result=result,
                    path=f"{run_path}.results[{result_index}]",
                    rules=rules,
                    artifacts=artifacts,
                    tool_name=tool_name,
                )
            )
    return StaticAnalysisReport(findings=findings, tools=tools)


class _Rules:
    """A run's rule metadata, from the driver and from extensions (CodeQL query packs)."""

    def __init__(self, *, tool: dict[str, Any], run_path: str):
        self.driver_rules = self._rules_of(tool["driver"], f"{run_path}.tool.driver.rules")
        self.extension_rules: list[list[dict[str, Any]]] = []
        extensions = tool.get("extensions") or []
        if not isinstance(extensions, list):
            raise EvidenceParseError("'extensions' must be an array", location=f"{run_path}.tool.extensions")
        for index, extension in enumerate(extensions):
            extension = _object(extension, f"{run_path}.tool.extensions[{index}]")
            self.extension_rules.append(self._rules_of(extension, f"{run_path}.tool.extensions[{index}].rules"))
        self.by_id: dict[str, dict[str, Any]] = {}
        for rule in [*self.driver_rules, *(r for rules in self.extension_rules for r in rules)]:
            if isinstance(rule.get("id"), str):
                self.by_id.setdefault(rule["id"], rule)

    @staticmethod
    def _rules_of(component: dict[str, Any], path: str) -> list[dict[str, Any]]:
        rules = component.get("rules") or []
        if not isinstance(rules, list):
            raise EvidenceParseError("'rules' must be an array of rule objects", location=path)
        return [_object(rule, f"{path}[{index}]") for index, rule in enumerate(rules)]

    def find(self, *, result: dict[str, Any], rule_id: str, path: str) -> dict[str, Any] | None:
        reference = result.get("rule") if isinstance(result.get("rule"), dict) else {}
        index = result.get("ruleIndex", reference.get("index"))
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            rules = self.driver_rules
            component = reference.get("toolComponent")
            if isinstance(component, dict) and isinstance(component.get("index"), int):
                if component["index"] >= len(self.extension_rules):
                    raise EvidenceParseError(
                        f"rule.toolComponent.index {component['index']} points past the run's extensions",
                        location=f"{path}.rule.toolComponent.index",
                    )
                rules = self.extension_rules[component["index"]]
            if index < len(rules):
                return rules[index]
        return self.by_id.get(rule_id)


def _read_result(*, result: Any, path: str, rules: _Rules, artifacts: list[Any], tool_name: str) -> StaticFinding:
    result = _object(result, path)
    reference = result.get("rule") if isinstance(result.get("rule"), dict) else {}
    rule_id = _string(result.get("ruleId"), f"{path}.ruleId") or _string(reference.get("id"), f"{path}.rule.id")
    rule = rules.find(result=result, rule_id=rule_id, path=path)
    if not rule_id and rule is not None:
        rule_id = _string(rule.get("id"), f"{path}.rule")
    level = _level(result=result, rule=rule, path=path)
    message = _message(result=result, rule=rule, path=path)
    file_path, start_line = _location(result=result, artifacts=artifacts, path=path)
    fingerprint = _fingerprint(result=result, path=path) or _fallback_fingerprint(
        rule_id=rule_id, file_path=file_path, start_line=start_line, message=message
    )
    return StaticFinding(
        rule_id=clean_text(rule_id, limit=TEXT_LIMIT),
        level=level,
        severity=_severity(result=result, rule=rule, level=level),
        message=clean_text(message, limit=MESSAGE_LIMIT),
        path=clean_text(file_path, limit=TEXT_LIMIT),
        start_line=start_line,
        fingerprint=clean_text(fingerprint, limit=TEXT_LIMIT),
        suppressed=_suppressed(result=result, path=path),
        tool=clean_text(tool_name, limit=TEXT_LIMIT),
    )


def _level(*, result: dict[str, Any], rule: dict[str, Any] | None, path: str) -> str:
    level = result.get("level")
    level_path = f"{path}.level"
    if level is None and rule is not None:
        configuration = rule.get("defaultConfiguration")
        if isinstance(configuration, dict):
            level = configuration.get("level")
            level_path = f"{path} (its rule's defaultConfiguration.level)"
    if level is None:
        kind = result.get("kind", "fail")
        return "warning" if kind == "fail" else "none"
    if level not in SARIF_LEVELS:
        raise EvidenceParseError(f"level {level!r} is not one of {', '.join(SARIF_LEVELS)}", location=level_path)
    return level


def _severity(*, result: dict[str, Any], rule: dict[str, Any] | None, level: str) -> str:
    for holder in (result, rule or {}):
        properties = holder.get("properties")
        if not isinstance(properties, dict):
            continue
        rating = properties.get("security-severity")
        if rating is None or isinstance(rating, bool):
            continue
        text = str(rating).strip().lower()
        if text in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[text]
        try:
            score = float(text)
        except ValueError:
            continue  # an unknown word: let the level decide
        if severity_from_score(score) != "unknown":  # 0 means "not scored": the level decides
            return severity_from_score(score)
    return _LEVEL_SEVERITY[level]


def _message(*, result: dict[str, Any], rule: dict[str, Any] | None, path: str) -> str:
    if result.get("message") is None:
        # SARIF requires a message, but tools write null for results that are not findings (kind "pass",
        # "notApplicable") and some for findings too: the rule's description says what it is about.
        described = _rule_description(rule)
        kind = result.get("kind", "fail")
        warn(
            f"a result of kind {kind!r} has no message; "
            + ("its rule's description was used" if described else "it is recorded without one"),
            location=f"{path}.message",
        )
        return described
    message = _object(result.get("message"), f"{path}.message")
    text = message.get("text") or message.get("markdown")
    if text is None and isinstance(message.get("id"), str) and rule is not None:
        # A message may be a template in the rule's messageStrings, filled from its arguments.
        strings = rule.get("messageStrings")
        template = strings.get(message["id"]) if isinstance(strings, dict) else None
        if isinstance(template, dict):
            text = template.get("text") or template.get("markdown")
    if text is None:
        raise EvidenceParseError("the result's message has no text", location=f"{path}.message.text")
    if not isinstance(text, str):
        raise EvidenceParseError("the message text must be a string", location=f"{path}.message.text")
    arguments = message.get("arguments")
    if isinstance(arguments, list) and arguments:
        text = _PLACEHOLDER.sub(
            lambda m: str(arguments[int(m.group(1))]) if int(m.group(1)) < len(arguments) else m.group(0), text
        )
    return text


def _rule_description(rule: dict[str, Any] | None) -> str:
    for key in ("shortDescription", "fullDescription"):
        description = (rule or {}).get(key)
        if isinstance(description, dict) and isinstance(description.get("text"), str):
            return description["text"]
    return ""


def _location(*, result: dict[str, Any], artifacts: list[Any], path: str) -> tuple[str, int | None]:
    locations = result.get("locations") or []
    if not isinstance(locations, list):
        raise EvidenceParseError("'locations' must be an array", location=f"{path}.locations")
    if not locations:
        return "", None
    location = _object(locations[0], f"{path}.locations[0]")
    physical = location.get("physicalLocation")
    if not isinstance(physical, dict):
        # Some results point only at a logical location (a function or class name).
        logical = location.get("logicalLocations")
        if isinstance(logical, list) and logical and isinstance(logical[0], dict):
            return str(logical[0].get("fullyQualifiedName") or logical[0].get("name") or ""), None
        return "", None
    physical_path = f"{path}.locations[0].physicalLocation"
    artifact = physical.get("artifactLocation") or {}
    if not isinstance(artifact, dict):
        raise EvidenceParseError("'artifactLocation' must be an object", location=f"{physical_path}.artifactLocation")
    uri = artifact.get("uri")
    index = artifact.get("index")
    if uri is None and isinstance(index, int) and 0 <= index < len(artifacts):
        listed = artifacts[index]
        if isinstance(listed, dict) and isinstance(listed.get("location"), dict):
            uri = listed["location"].get("uri")
    file_path = _file_path(_string(uri, f"{physical_path}.artifactLocation.uri"))
    region = physical.get("region") or {}
    if not isinstance(region, dict):
        raise EvidenceParseError("'region' must be an object", location=f"{physical_path}.region")
    start_line = region.get("startLine")
    if start_line is None:
        return file_path, None
    if isinstance(start_line, bool) or not isinstance(start_line, int) or start_line < 1:
        raise EvidenceParseError(
            f"startLine must be a positive whole number, not {start_line!r}",
            location=f"{physical_path}.region.startLine",
        )
    return file_path, start_line


def _file_path(uri: str) -> str:
    """A file:// URI (ruff writes absolute ones) as a plain path; relative URIs stay as written."""
    if uri.startswith("file://"):
        return unquote(urlsplit(uri).path)
    return uri


def _fingerprint(*, result: dict[str, Any], path: str) -> str:
    for key in ("partialFingerprints", "fingerprints"):
        prints = result.get(key)
        if prints is None:
            continue
        if not isinstance(prints, dict):
            raise EvidenceParseError(f"'{key}' must be an object of strings", location=f"{path}.{key}")
        for name, value in prints.items():
            if isinstance(value, str) and value:
                return value
            raise EvidenceParseError("a fingerprint must be a non-empty string", location=f"{path}.{key}.{name}")
    return ""


def _fallback_fingerprint(*, rule_id: str, file_path: str, start_line: int | None, message: str) -> str:
    """A stable identity for tools that write no fingerprint (ruff, many linters)."""
    material = "\x1f".join([rule_id, file_path, str(start_line or ""), message])
    return "sha256:" + hashlib.sha256(material.encode("utf-8", errors="replace")).hexdigest()


def _suppressed(*, result: dict[str, Any], path: str) -> bool:
    suppressions = result.get("suppressions")
    if suppressions is None:
        return False
    if not isinstance(suppressions, list):
        raise EvidenceParseError("'suppressions' must be an array", location=f"{path}.suppressions")
    # SARIF §3.34.4: a suppression without status is accepted; "underReview" still hides the result.
    for index, suppression in enumerate(suppressions):
        suppression = _object(suppression, f"{path}.suppressions[{index}]")
        if suppression.get("status") != "rejected":
            return True
    return False


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EvidenceParseError(f"expected a JSON object, found {json_type_name(value)}", location=path)
    return value


def _string(value: Any, path: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise EvidenceParseError("this required string is missing", location=path)
        return ""
    if not isinstance(value, str):
        raise EvidenceParseError(f"expected a string, found {json_type_name(value)}", location=path)
    return value
