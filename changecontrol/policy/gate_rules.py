"""Reading an environment's gates: one reader per gate kind, each checking the parameters that kind takes."""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from changecontrol.policy.cel import CelError, _CelSyntaxError, _compile_cel
from changecontrol.policy.checker import LICENSE_REF, SPDX_ID, Checker, join_path
from changecontrol.policy.document import (
    EVIDENCE_TYPES,
    GATE_KINDS,
    SEVERITIES,
    TRACEABILITY_REQUIREMENTS,
    GateRule,
    PolicyError,
    kind_of,
    strip_nul,
)
from common.licences import spdx_licensing

_COMMON_GATE_KEYS = ("id", "kind", "blocking", "description")


def read_gates(checker: Checker, path: str, raw: Any) -> tuple[GateRule, ...] | None:
    entries = checker.items(path, raw, non_empty=False)
    if entries is None:
        return None
    gates: list[GateRule] = []
    ok = True
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        gate_path = f"{path}[{index}]"
        gate = _read_gate(checker, gate_path, entry)
        if gate is None:
            ok = False
            continue
        if gate.id in seen:
            checker.error(f"{gate_path}.id", f"gate id {gate.id!r} is already used by {path}[{seen[gate.id]}]")
            ok = False
            continue
        seen[gate.id] = index
        gates.append(gate)
    return tuple(gates) if ok else None


def _read_gate(checker: Checker, path: str, raw: Any) -> GateRule | None:
    if not isinstance(raw, dict):
        checker.error(path, f"expected a gate mapping like {{id: tests, kind: tests}}, got {kind_of(raw)}")
        return None
    ok = True
    for key in ("id", "kind"):
        if key not in raw:
            checker.error(path, f"missing required key {key!r}", key=True)
            ok = False
    gate_id = checker.name(f"{path}.id", raw["id"], what="gate") if "id" in raw else None
    kind = raw.get("kind")
    if "kind" in raw and kind not in GATE_KINDS:
        checker.error(f"{path}.kind", f"{kind_of(kind)} is not a gate kind (kinds: {', '.join(GATE_KINDS)})")
        kind = None
    blocking = checker.boolean(f"{path}.blocking", raw["blocking"]) if "blocking" in raw else True
    description = ""
    if "description" in raw:
        description = checker.text(f"{path}.description", raw["description"], allow_empty=True)
    if kind is None or gate_id is None or blocking is None or description is None or not ok:
        return None
    parameters = {key: value for key, value in raw.items() if key not in _COMMON_GATE_KEYS}
    params = _GATE_READERS[kind](checker, path, parameters, raw)
    if params is None:
        return None
    return GateRule(id=gate_id, kind=kind, blocking=blocking, params=MappingProxyType(params), description=description)


def _unknown_parameters(checker: Checker, path: str, parameters: dict, *, allowed: tuple[str, ...], kind: str) -> bool:
    """Report parameters the gate kind does not take; True when there were none."""
    clean = True
    for key in parameters:
        if key not in allowed:
            takes = f"takes {', '.join(allowed)}" if allowed else "takes no parameters"
            checker.error(
                join_path(path, key),
                f"unknown parameter {key!r} for a {kind} gate (it {takes}; "
                f"every gate also takes {', '.join(_COMMON_GATE_KEYS)})",
                key=True,
            )
            clean = False
    return clean


def _gate_tests(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("max_failed", "min_total"), kind="tests")
    params = {"max_failed": 0, "min_total": 0}
    for key in params:
        if key in parameters:
            value = checker.integer(f"{path}.{key}", parameters[key], minimum=0)
            ok = ok and value is not None
            params[key] = value
    return params if ok else None


def _gate_coverage(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("min_line_rate", "min_branch_rate")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="coverage")
    if "min_line_rate" not in parameters:
        checker.error(path, "missing required key 'min_line_rate' (a fraction, e.g. 0.8)", key=True)
        return None
    params: dict[str, float | None] = {
        "min_line_rate": checker.rate(f"{path}.min_line_rate", parameters["min_line_rate"])
    }
    params["min_branch_rate"] = None
    if parameters.get("min_branch_rate") is not None:
        params["min_branch_rate"] = checker.rate(f"{path}.min_branch_rate", parameters["min_branch_rate"])
        ok = ok and params["min_branch_rate"] is not None
    return params if ok and params["min_line_rate"] is not None else None


def _severity_limits(checker: Checker, path: str, parameters: dict) -> dict[str, int] | None:
    if "max" not in parameters:
        checker.error(path, "missing required key 'max' (e.g. max: {critical: 0, high: 0})", key=True)
        return None
    limits_path = f"{path}.max"
    limits = checker.mapping(limits_path, parameters["max"], optional=SEVERITIES)
    if limits is None:
        return None
    if not limits:
        checker.error(limits_path, f"must limit at least one severity ({', '.join(SEVERITIES)})")
        return None
    result = {}
    ok = True
    for severity in SEVERITIES:
        if severity in limits:
            value = checker.integer(f"{limits_path}.{severity}", limits[severity], minimum=0)
            ok = ok and value is not None
            result[severity] = value
    ok = ok and all(key in SEVERITIES for key in limits)
    return result if ok else None


def _gate_static_analysis(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("max",), kind="static_analysis")
    limits = _severity_limits(checker, path, parameters)
    return {"max": MappingProxyType(limits)} if ok and limits is not None else None


def _gate_vulnerabilities(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("max", "ignore_unfixed")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="vulnerabilities")
    limits = _severity_limits(checker, path, parameters)
    ignore_unfixed = False
    if "ignore_unfixed" in parameters:
        ignore_unfixed = checker.boolean(f"{path}.ignore_unfixed", parameters["ignore_unfixed"])
    if not ok or limits is None or ignore_unfixed is None:
        return None
    return {"max": MappingProxyType(limits), "ignore_unfixed": ignore_unfixed}


def _spdx_ids(checker: Checker, path: str, value: Any) -> tuple[str, ...] | None:
    """Distinct SPDX licence identifiers, normalised to the SPDX list's spelling (`GPL-3.0` → `GPL-3.0-only`)."""
    entries = checker.items(path, value, non_empty=False)
    if entries is None:
        return None
    result: list[str] = []
    ok = True
    for index, entry in enumerate(entries):
        entry_path = f"{path}[{index}]"
        if checker.text(entry_path, entry) is None:
            ok = False
            continue
        identifier = entry.strip()
        if re.search(r"[\s()]", identifier):
            checker.error(entry_path, f"{identifier!r} is an expression; list one SPDX licence id per entry")
            ok = False
            continue
        if LICENSE_REF.match(identifier):
            normalised = identifier
        else:
            try:
                info = spdx_licensing().validate(identifier) if SPDX_ID.match(identifier) else None
            except Exception:
                # license-expression can trip over odd input (seen: AttributeError on a backslash); an id it
                # cannot read is simply not an SPDX id.
                info = None
            if info is None or info.errors or not info.normalized_expression:
                checker.error(
                    entry_path,
                    f"{identifier!r} is not an SPDX licence id (see https://spdx.org/licenses/; "
                    "custom licences are written LicenseRef-<name>)",
                )
                ok = False
                continue
            normalised = info.normalized_expression
        if normalised in result:
            checker.error(entry_path, f"{normalised!r} is listed twice")
            ok = False
            continue
        result.append(normalised)
    return tuple(result) if ok else None


# What a licence that could not be normalised to SPDX does in a licences gate; fail is the default.
LICENCE_UNKNOWN = ("fail", "review", "pass")


def _gate_licenses(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("deny", "allow", "unknown"), kind="licenses")
    unknown = parameters.get("unknown", "fail")
    if unknown not in LICENCE_UNKNOWN:
        checker.error(
            f"{path}.unknown", f"{unknown!r} is not one of {', '.join(LICENCE_UNKNOWN)} (what an unknown licence does)"
        )
        ok = False
    deny = _spdx_ids(checker, f"{path}.deny", parameters["deny"]) if "deny" in parameters else ()
    allow = None
    if parameters.get("allow") is not None:
        allow = _spdx_ids(checker, f"{path}.allow", parameters["allow"])
        if allow is None:
            return None
    if not ok or deny is None:
        return None
    if not deny and not allow:
        checker.error(path, "a licenses gate needs a non-empty deny list, allow list, or both", key=True)
        return None
    for both in sorted(set(deny) & set(allow or ())):
        checker.error(f"{path}.allow", f"{both!r} is both denied and allowed")
        ok = False
    if not ok:
        return None
    # `unknown` is kept only when written: policies without it read exactly as before (the default is fail).
    return {"deny": deny, "allow": allow} | ({"unknown": unknown} if "unknown" in parameters else {})


def _gate_without_parameters(kind: str):
    def read(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
        return {} if _unknown_parameters(checker, path, parameters, allowed=(), kind=kind) else None

    return read


def _gate_signature(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("evidence_types",), kind="signature")
    evidence_types = None
    if parameters.get("evidence_types") is not None:
        evidence_types = checker.choices(
            f"{path}.evidence_types",
            parameters["evidence_types"],
            allowed=EVIDENCE_TYPES,
            what="evidence type",
            non_empty=True,
        )
        ok = ok and evidence_types is not None
    return {"evidence_types": evidence_types} if ok else None


def _gate_provenance(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    allowed = ("builder_ids", "require_source_repository")
    ok = _unknown_parameters(checker, path, parameters, allowed=allowed, kind="provenance")
    if "builder_ids" not in parameters:
        checker.error(path, "missing required key 'builder_ids' (the trusted SLSA builder.id values)", key=True)
        return None
    builder_ids = checker.texts(f"{path}.builder_ids", parameters["builder_ids"])
    require_source = True
    if "require_source_repository" in parameters:
        require_source = checker.boolean(f"{path}.require_source_repository", parameters["require_source_repository"])
    if not ok or builder_ids is None or require_source is None:
        return None
    return {"builder_ids": builder_ids, "require_source_repository": require_source}


def _gate_traceability(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("require",), kind="traceability")
    if "require" not in parameters:
        checker.error(path, f"missing required key 'require' (any of {', '.join(TRACEABILITY_REQUIREMENTS)})", key=True)
        return None
    require = checker.choices(
        f"{path}.require",
        parameters["require"],
        allowed=TRACEABILITY_REQUIREMENTS,
        what="requirement",
        non_empty=True,
    )
    return {"require": require} if ok and require is not None else None


def _gate_evidence(checker: Checker, path: str, parameters: dict, _raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("names",), kind="evidence")
    if "names" not in parameters:
        checker.error(path, "missing required key 'names' (the evidence names that must be present)", key=True)
        return None
    names = checker.texts(f"{path}.names", parameters["names"])
    return {"names": names} if ok and names is not None else None


def _gate_cel(checker: Checker, path: str, parameters: dict, raw: dict) -> dict | None:
    ok = _unknown_parameters(checker, path, parameters, allowed=("expression",), kind="cel")
    if not str(raw.get("description") or "").strip():
        # A reviewer reads the description, not the expression; a cel gate must say what it checks.
        checker.error(path, "a cel gate needs a description saying what it checks", key=True)
        ok = False
    if "expression" not in parameters:
        checker.error(path, "missing required key 'expression'", key=True)
        return None
    expression_path = f"{path}.expression"
    expression = checker.text(expression_path, parameters["expression"])
    if expression is None:
        return None
    try:
        _compile_cel(expression)
    except _CelSyntaxError as error:
        node = checker.located.value_nodes[expression_path]
        line = node.start_mark.line + 1
        if getattr(node, "style", None) in ("|", ">"):
            # Block scalars start on the line after the indicator; `|` keeps the expression's own lines.
            line += 1 + ((error.line or 1) - 1 if node.style == "|" else 0)
        checker.errors.append(PolicyError(line=line, path=expression_path, message=strip_nul(str(error))))
        return None
    except CelError as error:
        checker.error(expression_path, str(error))
        return None
    return {"expression": expression} if ok else None


_GATE_READERS = {
    "tests": _gate_tests,
    "coverage": _gate_coverage,
    "static_analysis": _gate_static_analysis,
    "vulnerabilities": _gate_vulnerabilities,
    "licenses": _gate_licenses,
    "sbom": _gate_without_parameters("sbom"),
    "signature": _gate_signature,
    "provenance": _gate_provenance,
    "traceability": _gate_traceability,
    "change_requests": _gate_without_parameters("change_requests"),
    "evidence": _gate_evidence,
    "cel": _gate_cel,
}
