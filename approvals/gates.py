"""Gate evaluation: one pure function per gate kind, over the release's facts (plain JSON data).

Pure on purpose: the facts are collected once (`selectors.release_facts`) and stored with every decision,
so a past answer can be replayed with its recorded policy version and give the same result.
Each gate returns `{id, kind, blocking, status: pass|fail|missing, detail, description}` where the detail is
a sentence a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from changecontrol.models import Role
from changecontrol.policy import SEVERITIES, CelError, GateRule, evaluate_cel
from common.licences import spdx_licensing
from common.times import parse_timestamp

PASS, FAIL, MISSING = "pass", "fail", "missing"
APPROVED_CR_STATES = ("approved", "implemented", "closed")


def _result(gate: GateRule, status: str, detail: str) -> dict[str, Any]:
    return {
        "id": gate.id,
        "kind": gate.kind,
        "blocking": gate.blocking,
        "status": status,
        "detail": detail,
        "description": gate.description,
    }


def _short(digest: str) -> str:
    return digest[:19] + "…"


def _name(artifact: Mapping) -> str:
    return f"{artifact['name']} ({_short(artifact['digest'])})"


def _missing_for(facts: Mapping, key: str) -> list[Mapping]:
    return [a for a in facts["artifacts"] if a.get(key) is None]


def gate_tests(gate: GateRule, facts: Mapping) -> dict:
    missing = _missing_for(facts, "tests")
    if missing:
        return _result(
            gate, MISSING, f"no test report counts for {', '.join(map(_name, missing))}: upload a parsed JUnit report"
        )
    total = sum(a["tests"]["total"] for a in facts["artifacts"])
    failed = sum(a["tests"]["failed"] + a["tests"]["error"] for a in facts["artifacts"])
    passed = sum(a["tests"]["passed"] for a in facts["artifacts"])
    accepted = sum(a["tests"].get("accepted", 0) for a in facts["artifacts"])
    max_failed, min_total = gate.params.get("max_failed", 0), gate.params.get("min_total", 0)
    note = ""
    if accepted:
        records = ", ".join(f"{a['id']} {a['test']}" for a in facts.get("accepted_failures") or [])
        if facts.get("accepting_failures_allowed", True):
            note = f"; {accepted} failing result(s) accepted by signed record, not passed ({records})"
        else:
            # The policy in force no longer lets this release's tier accept failures: they count as failed.
            failed += accepted
            note = f"; {accepted} accepted failing result(s) count as failed: the policy lets no failure be accepted "
            note += f"for this tier (tests.accept_failures.tiers) ({records})"
    if total < min_total:
        return _result(gate, FAIL, f"only {total} test(s) ran; the policy asks for at least {min_total}")
    if failed > max_failed:
        return _result(
            gate,
            FAIL,
            f"{failed} test(s) failed or errored (allowed: {max_failed}) of {total}; fix them and upload a new report"
            + note,
        )
    return _result(gate, PASS, f"{passed} of {total} test(s) passed, {failed} failed (allowed: {max_failed}){note}")


def gate_coverage(gate: GateRule, facts: Mapping) -> dict:
    missing = _missing_for(facts, "coverage")
    if missing:
        return _result(
            gate, MISSING, f"no coverage report counts for {', '.join(map(_name, missing))}: upload Cobertura or LCOV"
        )
    valid = sum(a["coverage"]["lines_valid"] for a in facts["artifacts"])
    covered = sum(a["coverage"]["lines_covered"] for a in facts["artifacts"])
    rate = covered / valid if valid else 0.0
    minimum = gate.params["min_line_rate"]
    problems = []
    if rate < minimum:
        problems.append(f"line coverage {rate:.1%} is below the required {minimum:.0%}")
    branch_min = gate.params.get("min_branch_rate")
    if branch_min is not None:
        b_valid = sum(a["coverage"].get("branches_valid") or 0 for a in facts["artifacts"])
        b_cov = sum(a["coverage"].get("branches_covered") or 0 for a in facts["artifacts"])
        b_rate = b_cov / b_valid if b_valid else 0.0
        if b_rate < branch_min:
            problems.append(f"branch coverage {b_rate:.1%} is below the required {branch_min:.0%}")
    if problems:
        return _result(gate, FAIL, "; ".join(problems))
    return _result(gate, PASS, f"line coverage {rate:.1%} ({covered} of {valid} lines), required {minimum:.0%}")


def _severity_limits(
    gate: GateRule, counts: Mapping[str, int], what: str, examples: Mapping[str, list] | None = None
) -> dict:
    over = []
    for severity in SEVERITIES:
        limit = gate.params["max"].get(severity)
        if limit is not None and counts.get(severity, 0) > limit:
            ids = (examples or {}).get(severity) or []
            named = f" ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''})" if ids else ""
            over.append(f"{counts[severity]} {severity}{named} (allowed: {limit})")
    if over:
        return _result(gate, FAIL, f"{what}: " + "; ".join(over))
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in gate.params["max"])
    return _result(gate, PASS, f"{what} within limits: {summary}")


def gate_static_analysis(gate: GateRule, facts: Mapping) -> dict:
    missing = _missing_for(facts, "static")
    if missing:
        return _result(gate, MISSING, f"no static-analysis (SARIF) report counts for {', '.join(map(_name, missing))}")
    counts: dict[str, int] = {}
    for artifact in facts["artifacts"]:
        for severity, count in artifact["static"].items():
            counts[severity] = counts.get(severity, 0) + count
    return _severity_limits(gate, counts, "unsuppressed static-analysis findings")


def gate_vulnerabilities(gate: GateRule, facts: Mapping) -> dict:
    missing = _missing_for(facts, "vulns")
    if missing:
        return _result(
            gate,
            MISSING,
            f"no vulnerability scan counts for {', '.join(map(_name, missing))}: upload a Grype, Trivy or OSV scan",
        )
    key = "fixable" if gate.params.get("ignore_unfixed") else "all"
    counts: dict[str, int] = {}
    examples: dict[str, list] = {}
    for artifact in facts["artifacts"]:
        for severity, count in artifact["vulns"][key].items():
            counts[severity] = counts.get(severity, 0) + count
        for severity, ids in artifact["vulns"]["examples"].items():
            examples.setdefault(severity, []).extend(ids)
    what = "open vulnerabilities (VEX-suppressed excluded" + (", unfixable ignored)" if key == "fixable" else ")")
    return _severity_limits(gate, counts, what, examples)


def license_choices(expression: str) -> list[set[str]] | None:
    """The alternative sets of licence ids an SPDX expression lets you pick (its disjunctive normal form)."""
    licensing = spdx_licensing()
    try:
        parsed = licensing.parse(expression, validate=False)
        if parsed is None:
            return None
        dnf = licensing.dnf(parsed)
    except Exception:  # noqa: BLE001 - any parse failure means "not an expression we can judge"
        return None
    terms = dnf.args if type(dnf).__name__ == "OR" else (dnf,)
    return [{getattr(symbol, "license_symbol", symbol).key for symbol in term.symbols} for term in terms]


def license_acceptable(expression: str, *, deny: tuple[str, ...], allow: tuple[str, ...] | None) -> bool | None:
    """True when some choice avoids every denied id (and uses only allowed ids); None when unparsable."""
    choices = license_choices(expression)
    if not choices:
        return None
    denied = set(deny)
    return any(not (choice & denied) and (allow is None or choice <= set(allow)) for choice in choices)


def gate_licenses(gate: GateRule, facts: Mapping) -> dict:
    missing = [a for a in facts["artifacts"] if not a.get("sbom")]
    if missing:
        return _result(
            gate, MISSING, f"no SBOM counts for {', '.join(map(_name, missing))}, so licences cannot be checked"
        )
    deny, allow = tuple(gate.params.get("deny") or ()), gate.params.get("allow")
    allow = tuple(allow) if allow is not None else None
    # What a licence that could not be normalised to SPDX does (policy `unknown`): fail (the default), review
    # (reported, not blocking), pass. A deny list is never passed by a licence written another way.
    unknown_does = gate.params.get("unknown") or "fail"
    refused, unknown, checked = [], [], 0
    for artifact in facts["artifacts"]:
        for entry in artifact["licenses"]:
            checked += entry["count"]
            if not entry["expression"]:
                if allow is not None:
                    unknown.append(f"{', '.join(entry['components'])} (no licence declared)")
                continue
            verdict = (
                None
                if entry["expression"] == "unknown"
                else license_acceptable(entry["expression"], deny=deny, allow=allow)
            )
            if verdict is None:
                declared = entry.get("declared") or entry["expression"]
                unknown.append(f"{', '.join(entry['components'])} ({declared!r} is not an SPDX licence)")
            elif not verdict:
                refused.append(f"{', '.join(entry['components'])} under {entry['expression']}")
    unknown_fails = unknown and unknown_does != "pass"
    if refused or unknown_fails:
        parts = []
        if refused:
            parts.append("no allowed licence choice for " + "; ".join(refused[:5]) + (" …" if len(refused) > 5 else ""))
        if unknown_fails:
            parts.append("licence unknown for " + "; ".join(unknown[:5]) + (" …" if len(unknown) > 5 else ""))
        result = _result(
            gate, FAIL, "; ".join(parts) + ": replace the component or get a licence exception into the policy"
        )
        if not refused and unknown_does == "review":
            result["blocking"] = False  # policy `unknown: review`: shown to the reviewer, does not block
            result["detail"] = "needs review: " + result["detail"]
        return result
    note = f"; {len(unknown)} component group(s) have an unknown licence (policy: unknown passes)" if unknown else ""
    return _result(gate, PASS, f"{checked} component(s) checked, each has a licence choice the policy allows{note}")


def gate_sbom(gate: GateRule, facts: Mapping) -> dict:
    missing = [a for a in facts["artifacts"] if not a.get("sbom")]
    if missing:
        return _result(
            gate, MISSING, f"no parsed SBOM (CycloneDX or SPDX) for {', '.join(map(_name, missing))}: upload one"
        )
    components = sum(a.get("sbom_components", 0) for a in facts["artifacts"])
    return _result(gate, PASS, f"an SBOM is on file for every artifact ({components} component(s))")


def gate_signature(gate: GateRule, facts: Mapping) -> dict:
    accepted = gate.params.get("evidence_types")
    unsigned = []
    for artifact in facts["artifacts"]:
        types = set(artifact.get("signed_types") or ())
        if accepted:
            types &= set(accepted)
        if not types:
            unsigned.append(artifact)
    if unsigned:
        wanted = f" of type {', '.join(accepted)}" if accepted else ""
        return _result(
            gate,
            MISSING,
            f"no evidence{wanted} verified against a registered key for {', '.join(map(_name, unsigned))}: "
            "sign the artifact (cosign or DSSE) and upload the signature",
        )
    return _result(gate, PASS, "every artifact carries evidence verified against a registered signer key")


def normalise_repository(url: str) -> str:
    """`git+https://github.com/acme/rsd.git@refs/heads/main` and `https://github.com/acme/rsd/` are one repository."""
    url = url.strip().removeprefix("git+")
    url = re.sub(r"@(refs/.*|[0-9a-f]{7,64})$", "", url)
    return url.rstrip("/").removesuffix(".git").lower()


def gate_provenance(gate: GateRule, facts: Mapping) -> dict:
    builder_ids = set(gate.params["builder_ids"])
    require_source = gate.params.get("require_source_repository", True)
    repository = normalise_repository(facts["product"].get("repository_url") or "")
    problems, missing = [], []
    for artifact in facts["artifacts"]:
        statements = artifact.get("provenance") or []
        if not statements:
            missing.append(artifact)
            continue
        ok = False
        reasons = []
        for statement in statements:
            source = normalise_repository(statement.get("source_repository") or "")
            if statement["builder_id"] not in builder_ids:
                reasons.append(f"builder {statement['builder_id']!r} is not on the policy's allow-list")
            elif require_source and repository and source != repository:
                reasons.append(
                    f"built from {statement.get('source_repository') or 'an unnamed source'}, not {repository}"
                )
            elif require_source and not repository:
                reasons.append("the product has no repository URL to compare the provenance source with")
            else:
                ok = True
        if not ok:
            problems.append(f"{_name(artifact)}: {'; '.join(dict.fromkeys(reasons))}")
    if missing:
        return _result(
            gate,
            MISSING,
            f"no verified SLSA provenance for {', '.join(map(_name, missing))}: upload the in-toto attestation",
        )
    if problems:
        return _result(gate, FAIL, "provenance does not match the policy: " + "; ".join(problems))
    return _result(gate, PASS, f"built by an allowed builder from {repository or 'the product repository'}")


def gate_traceability(gate: GateRule, facts: Mapping) -> dict:
    trace = facts.get("trace")
    if not trace or not trace.get("available"):
        why = (trace or {}).get("detail") or "the trace matrix is not available for this release yet"
        return _result(gate, MISSING, why)
    failing = []
    for requirement in gate.params["require"]:
        check = (trace.get("checks") or {}).get(requirement)
        if check is None:
            failing.append(f"{requirement}: not reported by the trace matrix")
        elif not check.get("ok"):
            failing.append(f"{requirement}: {check.get('detail') or 'not met'}")
    scope = f" — {trace['scope_note']}" if trace.get("scope_note") else ""
    if failing:
        return _result(gate, FAIL, "; ".join(failing) + scope)
    return _result(gate, PASS, (trace.get("summary") or f"{', '.join(gate.params['require'])}: all met") + scope)


def gate_change_requests(gate: GateRule, facts: Mapping) -> dict:
    change_requests = facts.get("change_requests") or []
    if not change_requests:
        return _result(gate, MISSING, "the release delivers no change request: add the CRs it implements")
    unapproved = [f"{cr['id']} is {cr['state']}" for cr in change_requests if cr["state"] not in APPROVED_CR_STATES]
    if unapproved:
        return _result(gate, FAIL, "not approved: " + "; ".join(unapproved))
    return _result(gate, PASS, f"all {len(change_requests)} change request(s) approved")


def gate_evidence(gate: GateRule, facts: Mapping) -> dict:
    absent = []
    for artifact in facts["artifacts"]:
        names = set(artifact.get("evidence_names") or ())
        lacking = [name for name in gate.params["names"] if name not in names]
        if lacking:
            absent.append(f"{_name(artifact)} lacks {', '.join(lacking)}")
    if absent:
        return _result(gate, MISSING, "required evidence not on file: " + "; ".join(absent))
    return _result(gate, PASS, f"present for every artifact: {', '.join(gate.params['names'])}")


def cel_context(facts: Mapping) -> dict[str, Any]:
    """The release's facts as CEL sees them: totals over all artifacts (documented in docs/approvals.md)."""
    artifacts = facts["artifacts"]
    tests = {
        k: sum((a.get("tests") or {}).get(k, 0) for a in artifacts)
        for k in ("total", "passed", "failed", "error", "skipped", "accepted")
    }
    valid = sum((a.get("coverage") or {}).get("lines_valid", 0) for a in artifacts)
    covered = sum((a.get("coverage") or {}).get("lines_covered", 0) for a in artifacts)
    vulns = {s: sum(((a.get("vulns") or {}).get("all") or {}).get(s, 0) for a in artifacts) for s in SEVERITIES}
    findings = {s: sum((a.get("static") or {}).get(s, 0) for a in artifacts) for s in SEVERITIES}
    return {
        "tests": tests,
        "coverage": {"line_rate": covered / valid if valid else 0.0, "lines_valid": valid, "lines_covered": covered},
        "vulnerabilities": vulns,
        "findings": findings,
        "sbom": {
            "present": all(a.get("sbom") for a in artifacts),
            "components": sum(a.get("sbom_components", 0) for a in artifacts),
        },
        "release": {
            "product": facts["product"]["key"],
            "version": facts["release"]["version"],
            "artifacts": len(artifacts),
        },
        "change_requests": [
            {"id": cr["id"], "tier": cr["tier"], "state": cr["state"]} for cr in facts.get("change_requests") or []
        ],
        "environment": facts.get("environment", ""),
    }


def gate_cel(gate: GateRule, facts: Mapping) -> dict:
    try:
        ok = evaluate_cel(gate.params["expression"], cel_context(facts))
    except CelError as error:
        return _result(gate, FAIL, f"the condition could not be evaluated: {error}")
    if ok:
        return _result(gate, PASS, f"condition holds: {gate.description or gate.params['expression']}")
    return _result(
        gate,
        FAIL,
        f"condition does not hold: {gate.description or gate.params['expression']} ({gate.params['expression']})",
    )


GATES: dict[str, Callable[[GateRule, Mapping], dict]] = {
    "tests": gate_tests,
    "coverage": gate_coverage,
    "static_analysis": gate_static_analysis,
    "vulnerabilities": gate_vulnerabilities,
    "licenses": gate_licenses,
    "sbom": gate_sbom,
    "signature": gate_signature,
    "provenance": gate_provenance,
    "traceability": gate_traceability,
    "change_requests": gate_change_requests,
    "evidence": gate_evidence,
    "cel": gate_cel,
}


def promotion_order_gate(*, after: str | None, facts: Mapping) -> dict | None:
    """DESIGN §4: promote, never rebuild — every digest must have passed the previous environment."""
    if not after:
        return None
    passed = set((facts.get("previous_environment") or {}).get("passed_digests") or ())
    missing = [a for a in facts["artifacts"] if a["digest"] not in passed]
    base = {
        "id": f"after-{after}",
        "kind": "promotion_order",
        "blocking": True,
        "description": f"The same digests were approved in {after} first",
    }
    if missing:
        return {
            **base,
            "status": FAIL,
            "detail": (
                f"{', '.join(map(_name, missing))} was never approved in {after}: promote "
                f"these exact digests through {after} first (a rebuilt artifact starts again)"
            ),
        }
    return {**base, "status": PASS, "detail": f"every digest was approved in {after}"}


def evaluate_gates(*, rules, after: str | None, facts: Mapping) -> list[dict]:
    """All gates of an environment, blocking ones first (the order a reviewer reads them in)."""
    results = []
    order = promotion_order_gate(after=after, facts=facts)
    if order is not None:
        results.append(order)
    results.extend(GATES[rule.kind](rule, facts) for rule in rules)
    return sorted(results, key=lambda gate: (not gate["blocking"], gate["status"] == PASS))


# ---------------------------------------------------------------- the decision


def approvals_state(
    *,
    required: tuple[str, ...] | list[str],
    signatures: list[Mapping],
    policy_version: int,
    at,
    evidence_sha256: str | None = None,
) -> dict:
    """Which required roles hold a standing signature: valid, unexpired, made under this policy version, over
    the evidence that counts now (DESIGN §4.5: an approval is bound to the evidence snapshot its signer saw, so
    a report that arrives later — even one no gate blocks on — needs the reviewer's judgement again)."""
    signed_roles: list[str] = []
    signers: list[dict] = []
    notes: list[str] = []
    counted_people: set[str] = set()
    for signature in signatures:
        if signature["meaning"] != "approved" or signature.get("invalidated"):
            continue
        expires_at = parse_timestamp(signature.get("expires_at"))
        who = f"{signature['printed_name']}'s approval as {signature['role']}"
        if expires_at is not None and at >= expires_at:
            notes.append(f"{who} expired at {expires_at:%Y-%m-%d %H:%M} UTC: it must be signed again")
            continue
        if signature.get("policy_version") != policy_version:
            notes.append(
                f"{who} was made under policy v{signature.get('policy_version')}, "
                f"not the active v{policy_version}: sign again"
            )
            continue
        seen = signature.get("evidence_sha256")
        if evidence_sha256 and seen and seen != evidence_sha256:
            notes.append(
                f"{who} was given before the release's evidence changed: review the new evidence and sign again"
            )
            continue
        # One person counts once, whatever roles they hold.
        if signature["signer"] in counted_people:
            continue
        counted_people.add(signature["signer"])
        if signature["role"] in required and signature["role"] not in signed_roles:
            signed_roles.append(signature["role"])
            signers.append(
                {
                    "role": signature["role"],
                    "signer": signature["signer"],
                    "printed_name": signature["printed_name"],
                    "signed_at": signature["signed_at"],
                    "expires_at": signature.get("expires_at"),
                }
            )
    missing = [role for role in required if role not in signed_roles]
    return {"required": list(required), "signed": signed_roles, "missing": missing, "signers": signers, "notes": notes}


def decide(*, document, environment_key: str, inputs: Mapping, at) -> dict:
    """The whole answer from the policy document and recorded inputs: pure, so a decision can be replayed."""
    promotion = inputs.get("promotion")
    environment = document.environment(environment_key)
    if promotion is None:
        return {
            "decision": "blocked",
            "gates": [],
            "approvals": {"required": [], "signed": [], "missing": []},
            "reasons": [
                f"no promotion of a release containing this artifact into {environment_key} "
                "has been requested: create a release and request the promotion"
            ],
        }
    facts = inputs["facts"]
    if facts.get("accepted_failures"):
        # Accepted failures count as accepted only while the policy in force lets this tier accept any.
        allowed = promotion["tier"] in document.tests.accept_failure_tiers
        facts = {**facts, "accepting_failures_allowed": allowed}
    gates = evaluate_gates(rules=environment.gates, after=environment.after, facts=facts)
    required = document.required_roles(environment_key, promotion["tier"])
    approvals = approvals_state(
        required=required,
        signatures=inputs.get("signatures") or [],
        policy_version=inputs["policy_version"],
        at=at,
        evidence_sha256=inputs.get("evidence_sha256"),
    )
    reasons = []
    state = promotion["state"]
    if state in ("rejected", "expired", "superseded"):
        reasons.append(
            {
                "rejected": (
                    f"{promotion['id']} was rejected: {promotion.get('rejection_reason') or 'see its signatures'}"
                ),
                "expired": f"{promotion['id']} expired before it was deployed: request a new promotion",
                "superseded": f"{promotion['id']} was superseded by a later promotion",
            }[state]
        )
    if state == "reopened":
        reasons.append(
            f"{promotion['id']} was approved, then reopened: {promotion.get('reopen_reason') or 'its inputs changed'}; "
            "the approvals given before are invalidated and it must be approved again"
        )
    for gate in gates:
        if gate["blocking"] and gate["status"] != PASS:
            reasons.append(f"gate {gate['id']} {gate['status']}: {gate['detail']}")
    for role in approvals["missing"]:
        reasons.append(
            f"needs an approval signature from a {Role.in_sentence(role)} who "
            "is not the requester, a commit author, the builder, a change author or a deployer of it"
        )
    reasons.extend(approvals["notes"])
    if document.traceability.scope == "current" and any(rule.kind == "traceability" for rule in environment.gates):
        reasons.append(
            "the policy asks every release to cover each requirement current now (traceability.scope: current), "
            "not only the scope the release froze with"
        )
    if state in ("rejected", "expired", "superseded") or any(g["blocking"] and g["status"] != PASS for g in gates):
        decision = "blocked"
    elif approvals["missing"]:
        decision = "pending"
    else:
        decision = "allowed"
    return {"decision": decision, "gates": gates, "approvals": approvals, "reasons": reasons}
