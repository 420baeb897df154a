"""Reading each section of a policy (risk, change approval, environments and their approvals, traceability,
break-glass) into the document's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from changecontrol.policy.checker import MAX_HOURS, Checker
from changecontrol.policy.document import (
    DEFAULT_GAP_SEVERITIES,
    GAP_SEVERITIES,
    TRACE_GAPS,
    TRACE_SCOPES,
    ApprovalRule,
    BreakGlassRule,
    ChangeApprovalRule,
    EnvironmentRule,
    GateRule,
    PolicyChangesRule,
    RiskModel,
    TestsRule,
    TierRule,
    TraceabilityRule,
    kind_of,
)
from changecontrol.policy.gate_rules import read_gates


def read_risk(checker: Checker, raw: Any) -> RiskModel | None:
    section = checker.mapping("risk", raw, required=("questions", "tiers"))
    if section is None:
        return None
    questions = _read_questions(checker, section.get("questions")) if "questions" in section else None
    tiers = _read_tiers(checker, section.get("tiers")) if "tiers" in section else None
    if questions is None or tiers is None:
        return None
    highest_possible = sum(max(weights.values()) for weights in questions.values())
    for index, tier_rule in enumerate(tiers):
        if tier_rule.min_score > highest_possible:
            checker.error(
                f"risk.tiers[{index}].min_score",
                f"tier {tier_rule.tier!r} needs a score of {tier_rule.min_score} but the highest possible score "
                f"is {highest_possible}, so no change could ever reach it",
            )
    ordered = tuple(sorted(tiers, key=lambda tier_rule: tier_rule.min_score, reverse=True))
    return RiskModel(questions=MappingProxyType(questions), tiers=ordered)


def _read_questions(checker: Checker, raw: Any) -> dict[str, Mapping[str, int]] | None:
    section = checker.mapping("risk.questions", raw)
    if section is None:
        return None
    if not section:
        checker.error("risk.questions", "must define at least one question")
        return None
    questions: dict[str, Mapping[str, int]] = {}
    ok = True
    for question, answers in section.items():
        path = f"risk.questions.{question}"
        if checker.name(path, question, what="question") is None:
            ok = False
            continue
        answer_map = checker.mapping(path, answers)
        if answer_map is None:
            ok = False
            continue
        if not answer_map:
            checker.error(path, "must offer at least one answer, e.g. {none: 0, direct: 4}")
            ok = False
            continue
        weights: dict[str, int] = {}
        for answer, weight in answer_map.items():
            answer_path = f"{path}.{answer}"
            checked_answer = checker.name(answer_path, answer, what="answer")
            checked_weight = checker.integer(answer_path, weight, minimum=0, maximum=1000)
            if checked_answer is None or checked_weight is None:
                ok = False
            else:
                weights[checked_answer] = checked_weight
        questions[question] = MappingProxyType(weights)
    return questions if ok else None


def _read_tiers(checker: Checker, raw: Any) -> list[TierRule] | None:
    entries = checker.items("risk.tiers", raw, non_empty=True)
    if entries is None:
        return None
    tiers: list[TierRule] = []
    ok = True
    names: dict[str, int] = {}
    scores: dict[int, str] = {}
    for index, entry in enumerate(entries):
        path = f"risk.tiers[{index}]"
        tier_map = checker.mapping(path, entry, required=("tier", "min_score"))
        if tier_map is None or "tier" not in tier_map or "min_score" not in tier_map:
            ok = False
            continue
        tier = checker.name(f"{path}.tier", tier_map["tier"], what="tier")
        min_score = checker.integer(f"{path}.min_score", tier_map["min_score"], minimum=0)
        if tier is None or min_score is None:
            ok = False
            continue
        if tier in names:
            checker.error(f"{path}.tier", f"tier {tier!r} is defined twice (also risk.tiers[{names[tier]}])")
            ok = False
            continue
        if min_score in scores:
            checker.error(
                f"{path}.min_score",
                f"min_score {min_score} is already the threshold of tier {scores[min_score]!r}; "
                "each tier needs its own threshold",
            )
            ok = False
            continue
        names[tier] = index
        scores[min_score] = tier
        tiers.append(TierRule(tier=tier, min_score=min_score))
    if ok and 0 not in scores:
        lowest = min(scores)
        checker.error("risk.tiers", f"no tier has min_score 0, so a score below {lowest} would have no tier")
        ok = False
    return tiers if ok else None


def read_change_approval(checker: Checker, raw: Any, *, tiers: tuple[str, ...] | None) -> dict | None:
    section = checker.mapping("change_approval", raw)
    if section is None:
        return None
    rules: dict[str, ChangeApprovalRule] = {}
    ok = True
    for tier, rule in section.items():
        path = f"change_approval.{tier}"
        if tiers is not None and tier not in tiers:
            checker.error(path, f"tier {tier!r} is not defined in risk.tiers (tiers: {', '.join(tiers)})", key=True)
            ok = False
            continue
        rule_map = checker.mapping(path, rule, optional=("auto", "roles", "count"))
        if rule_map is None:
            ok = False
            continue
        auto = checker.boolean(f"{path}.auto", rule_map["auto"]) if "auto" in rule_map else False
        if auto is None:
            ok = False
            continue
        if auto:
            for key in ("roles", "count"):
                if key in rule_map:
                    checker.error(
                        f"{path}.{key}", "auto: true approves without signers; remove roles and count", key=True
                    )
                    ok = False
            rules[tier] = ChangeApprovalRule(auto=True, roles=(), count=0)
            continue
        if "roles" not in rule_map:
            checker.error(path, "missing required key 'roles' (or write auto: true to approve automatically)", key=True)
            ok = False
            continue
        roles = checker.roles(f"{path}.roles", rule_map["roles"])
        # count is the number of distinct signers; it may exceed len(roles) (two quality reviewers).
        count = checker.integer(f"{path}.count", rule_map["count"], minimum=1) if "count" in rule_map else 1
        if roles is None or count is None:
            ok = False
            continue
        rules[tier] = ChangeApprovalRule(auto=False, roles=roles, count=count)
    if tiers is not None:
        for tier in tiers:
            if tier not in section:
                checker.error("change_approval", f"tier {tier!r} has no rule; every tier needs one", key=True)
                ok = False
    if not ok:
        return None
    ordered = {tier: rules[tier] for tier in tiers} if tiers is not None else rules
    return ordered


def read_environments(checker: Checker, raw: Any, *, tiers: tuple[str, ...] | None) -> dict | None:
    section = checker.mapping("environments", raw)
    if section is None:
        return None
    if not section:
        checker.error("environments", "must define at least one environment")
        return None
    environments: dict[str, EnvironmentRule] = {}
    ok = True
    earlier: list[str] = []
    for key, body in section.items():
        path = f"environments.{key}"
        environment = _read_environment(
            checker, path, key, body, earlier=tuple(earlier), all_keys=tuple(section), tiers=tiers
        )
        earlier.append(key)
        if environment is None:
            ok = False
        else:
            environments[key] = environment
    return environments if ok else None


def _read_environment(
    checker: Checker,
    path: str,
    key: str,
    raw: Any,
    *,
    earlier: tuple[str, ...],
    all_keys: tuple[str, ...],
    tiers: tuple[str, ...] | None,
) -> EnvironmentRule | None:
    ok = checker.name(path, key, what="environment") is not None
    body = checker.mapping(path, raw if raw is not None else {}, optional=("after", "approval", "gates"))
    if body is None:
        return None
    after = None
    if body.get("after") is not None:
        after = checker.name(f"{path}.after", body["after"], what="environment")
        if after is None:
            ok = False
        elif after not in earlier:
            if after == key:
                message = f"environment {key!r} cannot come after itself"
            elif after in all_keys:
                message = f"{after!r} is defined later in the file; list environments in promotion order"
            else:
                where = f"earlier environments: {', '.join(earlier)}" if earlier else "it is the first environment"
                message = f"{after!r} must name an environment defined earlier in the file ({where})"
            checker.error(f"{path}.after", message)
            ok = False
    approval = None
    if body.get("approval") is not None:
        approval = _read_approval(checker, f"{path}.approval", body["approval"], tiers=tiers)
        ok = ok and approval is not None
    gates: tuple[GateRule, ...] = ()
    if body.get("gates") is not None:
        read = read_gates(checker, f"{path}.gates", body["gates"])
        if read is None:
            ok = False
        else:
            gates = read
    if not ok:
        return None
    return EnvironmentRule(key=key, after=after, approval=approval, gates=gates)


def _read_approval(checker: Checker, path: str, raw: Any, *, tiers: tuple[str, ...] | None) -> ApprovalRule | None:
    body = checker.mapping(path, raw, required=("roles_by_tier", "valid_for_hours"))
    if body is None:
        return None
    ok = "roles_by_tier" in body and "valid_for_hours" in body
    hours = None
    if "valid_for_hours" in body:
        hours = checker.integer(f"{path}.valid_for_hours", body["valid_for_hours"], minimum=1, maximum=MAX_HOURS)
        ok = ok and hours is not None
    roles_by_tier: dict[str, tuple[str, ...]] = {}
    if "roles_by_tier" in body:
        by_tier_path = f"{path}.roles_by_tier"
        by_tier = checker.mapping(by_tier_path, body["roles_by_tier"])
        if by_tier is None:
            return None
        for tier, roles in by_tier.items():
            tier_path = f"{by_tier_path}.{tier}"
            if tiers is not None and tier not in tiers:
                checker.error(
                    tier_path, f"tier {tier!r} is not defined in risk.tiers (tiers: {', '.join(tiers)})", key=True
                )
                ok = False
                continue
            # An empty list is allowed and explicit: this tier needs no signature here.
            checked = checker.roles(tier_path, roles, non_empty=False)
            if checked is None:
                ok = False
            else:
                roles_by_tier[tier] = checked
        if tiers is not None:
            for tier in tiers:
                if tier not in by_tier:
                    checker.error(
                        by_tier_path,
                        f"tier {tier!r} is not listed; list it (use [] when it needs no signature)",
                        key=True,
                    )
                    ok = False
    if not ok or hours is None:
        return None
    ordered = {tier: roles_by_tier[tier] for tier in tiers} if tiers is not None else roles_by_tier
    return ApprovalRule(roles_by_tier=MappingProxyType(ordered), valid_for_hours=hours)


def read_traceability(checker: Checker, raw: Any) -> TraceabilityRule | None:
    body = checker.mapping("traceability", raw, optional=("severities", "scope"))
    if body is None:
        return None
    scope = body.get("scope", "release")
    if scope not in TRACE_SCOPES:
        checker.error("traceability.scope", f"{kind_of(scope)} is not one of {', '.join(TRACE_SCOPES)}")
        return None
    severities = dict(DEFAULT_GAP_SEVERITIES)
    if body.get("severities") is None:
        return TraceabilityRule(severities=MappingProxyType(severities), scope=scope)
    path = "traceability.severities"
    given = checker.mapping(path, body["severities"], optional=TRACE_GAPS)
    if given is None:
        return None
    ok = all(gap in TRACE_GAPS for gap in given)
    for gap in TRACE_GAPS:
        if gap in given:
            value = given[gap]
            if value not in GAP_SEVERITIES:
                checker.error(f"{path}.{gap}", f"{kind_of(value)} is not one of {', '.join(GAP_SEVERITIES)}")
                ok = False
            else:
                severities[gap] = value
    return TraceabilityRule(severities=MappingProxyType(severities), scope=scope) if ok else None


def read_break_glass(checker: Checker, raw: Any) -> BreakGlassRule | None:
    body = checker.mapping("break_glass", raw, optional=("roles", "retrospective_review_hours"))
    if body is None:
        return None
    roles = checker.roles("break_glass.roles", body["roles"]) if "roles" in body else ("sre",)
    hours = 24
    if "retrospective_review_hours" in body:
        hours = checker.integer(
            "break_glass.retrospective_review_hours", body["retrospective_review_hours"], minimum=1, maximum=MAX_HOURS
        )
    if roles is None or hours is None:
        return None
    return BreakGlassRule(roles=roles, retrospective_review_hours=hours)


PROBLEM_REPORT_RULES = ("optional", "required")


def read_tests(checker: Checker, raw: Any, *, tiers: tuple[str, ...] | None) -> TestsRule | None:
    """`tests: {accept_failures: {tiers, roles, problem_report}}`: who may accept a failing test, for which tiers."""
    body = checker.mapping("tests", raw, optional=("accept_failures",))
    if body is None:
        return None
    if body.get("accept_failures") is None:
        return TestsRule()
    path = "tests.accept_failures"
    accept = checker.mapping(path, body["accept_failures"], required=("tiers",), optional=("roles", "problem_report"))
    if accept is None or "tiers" not in accept:
        return None
    chosen = (
        checker.choices(f"{path}.tiers", accept["tiers"], allowed=tiers, what="tier", non_empty=False)
        if tiers is not None
        else None
    )
    roles = checker.roles(f"{path}.roles", accept["roles"]) if "roles" in accept else ("quality",)
    report = accept.get("problem_report", "optional")
    if report not in PROBLEM_REPORT_RULES:
        checker.error(f"{path}.problem_report", f"{kind_of(report)} is not one of {', '.join(PROBLEM_REPORT_RULES)}")
        return None
    if chosen is None or roles is None:
        return None
    return TestsRule(
        accept_failure_tiers=chosen, accept_failure_roles=roles, problem_report_required=report == "required"
    )


def read_policy_changes(checker: Checker, raw: Any) -> PolicyChangesRule | None:
    """`policy_changes: {propose_roles: [...]}`: who may propose this policy's next version."""
    body = checker.mapping("policy_changes", raw, required=("propose_roles",))
    if body is None or "propose_roles" not in body:
        return None
    roles = checker.roles("policy_changes.propose_roles", body["propose_roles"])
    if roles is None:
        return None
    if "auditor" in roles:
        checker.error("policy_changes.propose_roles", "auditors read and change nothing: an auditor cannot propose")
        return None
    return PolicyChangesRule(propose_roles=roles)
