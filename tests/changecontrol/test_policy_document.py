"""The policy-as-code document: validation with lines, risk scoring, questions, CEL."""

import hashlib
import json

import pytest

from changecontrol.policy import (
    DEFAULT_POLICY_YAML,
    MAX_POLICY_BYTES,
    ROLES,
    CelError,
    ChangeApprovalRule,
    PolicyError,
    PolicyInvalid,
    RiskAnswersInvalid,
    TierRule,
    UnknownPolicyName,
    evaluate_cel,
    parse_policy,
)

# A small valid policy; tests change one line of it and expect the error on that exact line.
MINIMAL = """\
policy: demo
risk:
  questions:
    safety: {none: 0, direct: 4}
    data: {none: 0, phi: 2}
  tiers:
    - {tier: high, min_score: 4}
    - {tier: medium, min_score: 2}
    - {tier: low, min_score: 0}
change_approval:
  low: {auto: true}
  medium: {roles: [quality]}
  high: {roles: [quality, security], count: 2}
environments:
  staging:
    gates:
      - {id: unit-tests, kind: tests}
  production:
    after: staging
    approval:
      roles_by_tier: {low: [], medium: [quality], high: [quality, security]}
      valid_for_hours: 48
    gates:
      - {id: vulns, kind: vulnerabilities, max: {critical: 0}}
      - {id: licences, kind: licenses, deny: [GPL-3.0-only]}
      - {id: coverage, kind: coverage, min_line_rate: 0.8}
"""

RSD_ANSWERS_LOW = {
    "patient_safety_impact": "none",
    "data_sensitivity": "none",
    "user_impact": "none",
    "rollback_complexity": "trivial",
}


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line containing `needle` (so the expectation is read off the text)."""
    matches = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(matches) == 1, f"{needle!r} is on lines {matches}"
    return matches[0]


def errors_of(text) -> list[PolicyError]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(text)
    return caught.value.errors


def only_error(text) -> PolicyError:
    errors = errors_of(text)
    assert len(errors) == 1, "\n".join(str(error) for error in errors)
    return errors[0]


def changed(old: str, new: str, *, base: str = MINIMAL) -> str:
    assert base.count(old) == 1, f"{old!r} is not unique in the base policy"
    return base.replace(old, new)


# --- the default policy -----------------------------------------------------------------------------------


def test_default_policy_reads_as_the_rsd_policy():
    policy = parse_policy(DEFAULT_POLICY_YAML)

    assert policy.name == "rsd"
    assert list(policy.environments) == ["integration", "staging", "production"]
    assert policy.environments["staging"].after == "integration"
    assert policy.environments["production"].after == "staging"
    assert policy.environments["integration"].approval is None
    assert policy.risk.tiers == (
        TierRule(tier="critical", min_score=7),
        TierRule(tier="high", min_score=4),
        TierRule(tier="medium", min_score=2),
        TierRule(tier="low", min_score=0),
    )
    assert dict(policy.risk.questions["patient_safety_impact"]) == {"none": 0, "indirect": 2, "direct": 4}
    assert policy.change_approval["low"] == ChangeApprovalRule(auto=True, roles=(), count=0)
    assert policy.change_approval["critical"] == ChangeApprovalRule(
        auto=False, roles=("quality", "security", "product"), count=3
    )
    assert policy.environment("production").approval.valid_for_hours == 72
    assert policy.break_glass.roles == ("sre",)
    assert policy.break_glass.retrospective_review_hours == 24
    assert policy.traceability.severities["missing_test"] == "error"
    assert policy.traceability.severities["suspect"] == "warning"
    assert policy.sha256 == hashlib.sha256(DEFAULT_POLICY_YAML.encode("utf-8")).hexdigest()
    assert policy.source_text == DEFAULT_POLICY_YAML


def test_default_policy_production_gates_carry_their_parameters():
    gates = {gate.id: gate for gate in parse_policy(DEFAULT_POLICY_YAML).environment("production").gates}

    assert list(gates) == [
        "signed",
        "provenance",
        "tests",
        "critical-vulns",
        "medium-vulns",
        "licences",
        "coverage",
        "trace",
        "sbom",
        "change-requests",
        "few-skipped-tests",
    ]
    assert gates["provenance"].params == {
        "builder_ids": (
            "https://github.com/acme/rsd/.github/workflows/release.yml@refs/heads/main",
            "https://ci.example/acme/rsd/release.yml@refs/heads/main",
        ),
        "require_source_repository": True,
    }
    assert gates["critical-vulns"].params == {"max": {"critical": 0, "high": 0}, "ignore_unfixed": False}
    assert gates["medium-vulns"].blocking is False
    assert gates["licences"].params == {"deny": ("AGPL-3.0-only", "GPL-3.0-only"), "allow": None}
    assert gates["coverage"].params == {"min_line_rate": 0.8, "min_branch_rate": None}
    assert gates["trace"].params == {"require": ("requirements_tested", "risk_controls_verified")}
    assert gates["signed"].params == {"evidence_types": None}
    assert gates["sbom"].params == {}
    assert gates["few-skipped-tests"].kind == "cel"
    assert gates["few-skipped-tests"].params == {"expression": "tests.skipped * 10 <= tests.total"}
    assert gates["few-skipped-tests"].description == "No more than 10% of the tests were skipped"
    assert gates["tests"].params == {"max_failed": 0, "min_total": 1}


def test_as_json_is_plain_canonical_data():
    policy = parse_policy(DEFAULT_POLICY_YAML)
    data = policy.as_json()

    assert json.loads(json.dumps(data, sort_keys=True)) == data
    assert [environment["key"] for environment in data["environments"]] == ["integration", "staging", "production"]
    assert data["change_approval"]["medium"] == {"auto": False, "roles": ["quality"], "count": 1}
    assert data["environments"][2]["approval"]["roles_by_tier"]["critical"] == ["quality", "security", "product"]
    assert data["environments"][2]["gates"][0] == {
        "id": "signed",
        "kind": "signature",
        "blocking": True,
        "description": "The artifact carries a verified signature from a registered key",
        "params": {"evidence_types": None},
    }
    # Comments and layout do not change the meaning, so they do not change as_json.
    reformatted = DEFAULT_POLICY_YAML.replace("# Could the change affect", "# Might the change affect")
    assert parse_policy(reformatted).as_json() == data
    assert parse_policy(reformatted).sha256 != policy.sha256


def test_defaults_fill_in_what_the_author_left_out():
    policy = parse_policy(MINIMAL)

    assert policy.break_glass.roles == ("sre",)
    assert policy.break_glass.retrospective_review_hours == 24
    assert dict(policy.traceability.severities) == {
        "missing_test": "error",
        "not_executed": "warning",
        "failed": "error",
        "risk_control_unverified": "error",
        "orphan_test": "warning",
        "suspect": "warning",
    }
    unit_tests = policy.environment("staging").gates[0]
    assert unit_tests.blocking is True  # a forgotten `blocking` still blocks
    assert unit_tests.params == {"max_failed": 0, "min_total": 0}
    assert unit_tests.description == ""
    assert policy.change_approval["medium"] == ChangeApprovalRule(auto=False, roles=("quality",), count=1)
    assert policy.environment("staging").approval is None


def test_document_cannot_be_changed_after_parsing():
    policy = parse_policy(MINIMAL)

    with pytest.raises(TypeError):
        policy.risk.questions["safety"] = {}
    with pytest.raises(TypeError):
        policy.environments["production"].gates[0].params["max"]["critical"] = 5


def test_roles_vocabulary_is_the_shared_one():
    assert ROLES == ("engineer", "release_manager", "quality", "security", "product", "sre", "auditor", "admin")


def test_traceability_and_break_glass_can_be_set():
    text = MINIMAL + (
        "traceability:\n  severities: {orphan_test: ignored, not_executed: error}\n"
        "break_glass: {roles: [sre, release_manager], retrospective_review_hours: 48}\n"
    )
    policy = parse_policy(text)

    assert policy.traceability.severities["orphan_test"] == "ignored"
    assert policy.traceability.severities["not_executed"] == "error"
    assert policy.traceability.severities["failed"] == "error"
    assert policy.break_glass.roles == ("sre", "release_manager")
    assert policy.break_glass.retrospective_review_hours == 48


def test_licence_ids_are_normalised_and_license_refs_accepted():
    text = changed("deny: [GPL-3.0-only]", "deny: [GPL-3.0, agpl-3.0-only], allow: [MIT, LicenseRef-acme-eula]")
    gate = parse_policy(text).environment("production").gates[1]

    assert gate.params == {"deny": ("GPL-3.0-only", "AGPL-3.0-only"), "allow": ("MIT", "LicenseRef-acme-eula")}


def test_a_licences_gate_says_what_an_unknown_licence_does():
    text = changed("deny: [GPL-3.0-only]", "deny: [GPL-3.0-only], unknown: review")
    gate = parse_policy(text).environment("production").gates[1]

    assert gate.params == {"deny": ("GPL-3.0-only",), "allow": None, "unknown": "review"}


def test_policy_bytes_with_a_byte_order_mark_are_read():
    policy = parse_policy(b"\xef\xbb\xbf" + MINIMAL.encode("utf-8"))

    assert policy.name == "demo"
    assert policy.source_text == MINIMAL


# --- validation, one rule at a time, at the exact line -------------------------------------------------------


def test_missing_top_level_sections_are_named():
    text = "policy: demo\nrisk:\n  questions: {a: {x: 0}}\n  tiers: [{tier: low, min_score: 0}]\n"
    errors = errors_of(text)

    assert [(error.line, error.path, error.message) for error in errors] == [
        (1, "", "missing required key 'change_approval'"),
        (1, "", "missing required key 'environments'"),
    ]


def test_unknown_top_level_key_is_reported_at_its_line():
    text = MINIMAL + "approvers: [quality]\n"
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "approvers"), "approvers")
    assert "unknown key 'approvers'" in error.message


def test_duplicate_key_is_an_error():
    text = changed(
        "  high: {roles: [quality, security], count: 2}\n",
        "  high: {roles: [quality, security], count: 2}\n  high: {auto: true}\n",
    )
    error = only_error(text)

    assert error.line == line_of(text, "high: {auto: true}")
    assert error.message == f"duplicate key 'high' (first at line {line_of(text, 'high: {roles')})"


def test_tiers_need_one_starting_at_zero():
    text = changed("{tier: low, min_score: 0}", "{tier: low, min_score: 1}")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "tiers:"), "risk.tiers")
    assert error.message == "no tier has min_score 0, so a score below 1 would have no tier"


def test_tier_names_and_thresholds_must_be_distinct():
    text = changed("{tier: medium, min_score: 2}", "{tier: high, min_score: 4}")
    errors = errors_of(text)

    assert errors[0].path == "risk.tiers[1].tier"
    assert errors[0].line == line_of(MINIMAL, "tier: medium")
    assert errors[0].message == "tier 'high' is defined twice (also risk.tiers[0])"

    text = changed("{tier: medium, min_score: 2}", "{tier: medium, min_score: 4}")
    error = errors_of(text)[0]
    assert (error.line, error.path) == (line_of(text, "tier: medium"), "risk.tiers[1].min_score")
    assert "already the threshold of tier 'high'" in error.message


def test_a_tier_no_score_can_reach_is_an_error():
    text = changed("{tier: high, min_score: 4}", "{tier: high, min_score: 7}")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "tier: high"), "risk.tiers[0].min_score")
    assert "highest possible score is 6" in error.message


def test_every_tier_needs_a_change_approval_rule():
    text = changed("  medium: {roles: [quality]}\n", "")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "change_approval:"), "change_approval")
    assert error.message == "tier 'medium' has no rule; every tier needs one"


def test_change_approval_for_an_undefined_tier():
    text = changed("  low: {auto: true}\n", "  low: {auto: true}\n  trivial: {auto: true}\n")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "trivial"), "change_approval.trivial")
    assert error.message == "tier 'trivial' is not defined in risk.tiers (tiers: low, medium, high)"


def test_count_must_be_at_least_one_unless_auto():
    text = changed("count: 2", "count: 0")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "count: 0"), "change_approval.high.count")
    assert error.message == "must be 1 or more, got 0"


def test_count_may_exceed_the_roles_listed():
    policy = parse_policy(changed("count: 2", "count: 3"))

    assert policy.change_approval_for("high").count == 3


def test_auto_approval_takes_no_signers():
    text = changed("low: {auto: true}", "low: {auto: true, roles: [quality]}")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "low: {auto"), "change_approval.low.roles")


def test_unknown_role_is_named_with_the_vocabulary():
    text = changed("medium: {roles: [quality]}", "medium: {roles: [qa]}")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "roles: [qa]"), "change_approval.medium.roles[0]")
    assert error.message.startswith("text ('qa') is not a known role (roles: engineer, release_manager, quality")


def test_roles_by_tier_must_list_every_tier_and_only_defined_ones():
    text = changed(
        "{low: [], medium: [quality], high: [quality, security]}",
        "{lo: [], medium: [quality], high: [quality, security]}",
    )
    errors = errors_of(text)
    line = line_of(text, "roles_by_tier")

    assert [(error.line, error.path) for error in errors] == [
        (line, "environments.production.approval.roles_by_tier"),
        (line, "environments.production.approval.roles_by_tier.lo"),
    ]
    assert errors[0].message == "tier 'low' is not listed; list it (use [] when it needs no signature)"
    assert errors[1].message.startswith("tier 'lo' is not defined in risk.tiers")


def test_approval_validity_must_be_positive_hours():
    text = changed("valid_for_hours: 48", "valid_for_hours: 0")
    error = only_error(text)

    assert (error.line, error.path) == (
        line_of(text, "valid_for_hours"),
        "environments.production.approval.valid_for_hours",
    )


def test_after_must_name_an_earlier_environment():
    text = changed("after: staging", "after: qa")
    error = only_error(text)
    assert (error.line, error.path) == (line_of(text, "after: qa"), "environments.production.after")
    assert error.message == "'qa' must name an environment defined earlier in the file (earlier environments: staging)"

    text = changed("  staging:\n    gates:", "  staging:\n    after: production\n    gates:")
    error = only_error(text)
    assert (error.line, error.path) == (line_of(text, "after: production"), "environments.staging.after")
    assert "defined later in the file" in error.message


def test_gate_ids_are_unique_within_an_environment():
    text = changed("{id: coverage, kind: coverage", "{id: vulns, kind: coverage")
    error = only_error(text)

    assert (error.line, error.path) == (
        line_of(text, "id: vulns, kind: coverage"),
        "environments.production.gates[2].id",
    )
    assert error.message == "gate id 'vulns' is already used by environments.production.gates[0]"


def test_unknown_gate_kind_lists_the_kinds():
    text = changed("kind: tests", "kind: unit_tests")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "unit_tests"), "environments.staging.gates[0].kind")
    assert "is not a gate kind (kinds: tests, coverage" in error.message


def test_unknown_gate_parameter_is_an_error():
    text = changed("{id: unit-tests, kind: tests}", "{id: unit-tests, kind: tests, max_failures: 0}")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "max_failures"), "environments.staging.gates[0].max_failures")
    assert error.message.startswith("unknown parameter 'max_failures' for a tests gate (it takes max_failed, min_total")


def test_severity_limit_is_checked_per_severity():
    text = changed("max: {critical: 0}", "max: {critical: -1, severe: 0}")
    errors = errors_of(text)
    line = line_of(text, "severe")

    assert [(error.line, error.path) for error in errors] == [
        (line, "environments.production.gates[0].max.critical"),
        (line, "environments.production.gates[0].max.severe"),
    ]
    assert errors[0].message == "must be 0 or more, got -1"


def test_coverage_rate_is_a_fraction():
    text = changed("min_line_rate: 0.8", "min_line_rate: 80")
    error = only_error(text)

    assert (error.line, error.path) == (
        line_of(text, "min_line_rate"),
        "environments.production.gates[2].min_line_rate",
    )
    assert error.message == "must be from 0 to 1, got 80 (write rates as fractions: 0.8 for 80%)"


def test_unknown_licence_id_is_named():
    text = changed("deny: [GPL-3.0-only]", "deny: [GPL-3.0-only, Acme-Proprietary]")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "Acme"), "environments.production.gates[1].deny[1]")
    assert error.message.startswith("'Acme-Proprietary' is not an SPDX licence id")


def test_licence_expression_is_not_an_id():
    text = changed("deny: [GPL-3.0-only]", "deny: [GPL-3.0-only OR MIT]")
    error = only_error(text)

    assert error.path == "environments.production.gates[1].deny[0]"
    assert "one SPDX licence id per entry" in error.message


@pytest.mark.parametrize(
    ("gate", "path", "message_start"),
    [
        ("{id: p, kind: provenance, builder_ids: []}", "gates[2].builder_ids", "must list at least one entry"),
        ("{id: p, kind: provenance}", "gates[2]", "missing required key 'builder_ids'"),
        ("{id: t, kind: traceability, require: [all_green]}", "gates[2].require[0]", "text ('all_green') is not a"),
        ("{id: e, kind: evidence, names: []}", "gates[2].names", "must list at least one entry"),
        ("{id: s, kind: sbom, format: cyclonedx}", "gates[2].format", "unknown parameter 'format' for a sbom gate"),
        ("{id: s, kind: signature, evidence_types: [pgp]}", "gates[2].evidence_types[0]", "text ('pgp') is not a"),
        ("{id: c, kind: change_requests, blocking: 'yes'}", "gates[2].blocking", "expected true or false"),
        ("{id: v, kind: vulnerabilities, max: {}}", "gates[2].max", "must limit at least one severity"),
        ("{id: a, kind: static_analysis, max: {high: 1.5}}", "gates[2].max.high", "expected a whole number"),
        ("{id: c, kind: coverage, min_line_rate: 0.8, min_branch_rate: 2}", "gates[2].min_branch_rate", "must be"),
        ("{id: l, kind: licenses}", "gates[2]", "a licenses gate needs a non-empty deny list"),
        ("{id: l, kind: licenses, deny: [MIT], unknown: ignore}", "gates[2].unknown", "'ignore' is not one of fail"),
        ("{id: x, kind: cel, expression: 'true'}", "gates[2]", "a cel gate needs a description"),
        ("{id: 'two words', kind: sbom}", "gates[2].id", "gate name 'two words' must be"),
    ],
)
def test_each_gate_kind_validates_its_parameters(gate, path, message_start):
    text = changed("      - {id: coverage", f"      - {gate}\n      - {{id: coverage").replace(
        "{id: coverage, kind: coverage, min_line_rate: 0.8}", "{id: cov, kind: coverage, min_line_rate: 0.8}"
    )
    error = only_error(text)

    assert error.line == line_of(text, gate)
    assert error.path == f"environments.production.{path}"
    assert error.message.startswith(message_start), error.message


def test_cel_syntax_error_is_a_policy_error_at_its_line():
    gate = "{id: rule, kind: cel, expression: 'tests.failed ==', description: 'no failures'}"
    text = changed("      - {id: coverage", f"      - {gate}\n      - {{id: coverage")
    error = only_error(text)

    assert (error.line, error.path) == (line_of(text, "id: rule"), "environments.production.gates[2].expression")
    assert error.message.startswith("CEL syntax error at column")


def test_cel_syntax_error_in_a_block_scalar_names_the_line_inside_it():
    gate = (
        "      - id: rule\n        kind: cel\n        description: few skipped\n        expression: |\n"
        "          tests.skipped * 10 <=\n            tests.total &&\n"
    )
    text = changed("      - {id: coverage", f"{gate}      - {{id: coverage")
    error = only_error(text)

    assert error.line == line_of(text, "tests.total &&")
    assert error.message.startswith("CEL syntax error at line 2 column 15")


def test_traceability_severity_must_be_known():
    text = MINIMAL + "traceability:\n  severities: {missing_test: fatal, flaky: warning}\n"
    errors = errors_of(text)
    line = line_of(text, "fatal")

    assert [(error.line, error.path) for error in errors] == [
        (line, "traceability.severities.flaky"),
        (line, "traceability.severities.missing_test"),
    ]
    assert errors[1].message == "text ('fatal') is not one of error, warning, ignored"


def test_break_glass_needs_known_roles_and_a_window():
    text = MINIMAL + "break_glass:\n  roles: [oncall]\n  retrospective_review_hours: 0\n"
    errors = errors_of(text)

    assert [(error.line, error.path) for error in errors] == [
        (line_of(text, "oncall"), "break_glass.roles[0]"),
        (line_of(text, "retrospective_review_hours"), "break_glass.retrospective_review_hours"),
    ]


def test_wrong_shapes_are_errors_not_crashes():
    text = "policy: [demo]\nrisk: 5\nchange_approval: []\nenvironments: {prod: [1, 2]}\nbreak_glass: sre\n"
    errors = errors_of(text)

    assert [(error.line, error.path) for error in errors] == [
        (1, "policy"),
        (2, "risk"),
        (3, "change_approval"),
        (4, "environments.prod"),
        (5, "break_glass"),
    ]
    assert errors[1].message == "expected a mapping, got a number (5)"


def test_several_errors_are_reported_at_once_in_line_order():
    text = (
        DEFAULT_POLICY_YAML.replace("min_line_rate: 0.80", "min_line_rate: 80")
        .replace("max: {critical: 0}, blocking: true,", "max: {critcal: 0}, blocking: true,")
        .replace("deny: [AGPL-3.0-only, GPL-3.0-only]", "deny: [AGPL-3, GPL-3.0-only]")
        .replace('"tests.skipped * 10 <= tests.total"', '"tests.skipped * 10 <="')
    )
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(text)
    lines = str(caught.value).splitlines()

    assert len(lines) == 4
    assert lines[0] == (
        f"line {line_of(text, 'critcal')}: environments.staging.gates[1].max.critcal: "
        "unknown key 'critcal' (allowed: critical, high, medium, low, unknown)"
    )
    assert lines[1].startswith(f"line {line_of(text, 'AGPL-3,')}: environments.production.gates[5].deny[0]: 'AGPL-3'")
    assert lines[2] == (
        f"line {line_of(text, 'min_line_rate')}: environments.production.gates[6].min_line_rate: "
        "must be from 0 to 1, got 80 (write rates as fractions: 0.8 for 80%)"
    )
    assert lines[3].startswith(f"line {line_of(text, 'tests.skipped')}: environments.production.gates[10].expression:")


# --- hostile and broken documents ---------------------------------------------------------------------------


def test_yaml_syntax_error_is_one_error_with_its_line():
    text = changed("      - {id: unit-tests, kind: tests}", "      - {id: unit-tests, kind: tests")
    error = only_error(text)

    assert error.line == line_of(text, "  production:")
    assert error.message.startswith("YAML syntax error:")


def test_alias_bomb_is_refused_before_expansion():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for index in range(1, 9):
        bomb += f"{chr(97 + index)}: &{chr(97 + index)} [{','.join(['*' + chr(96 + index)] * 9)}]\n"
    errors = errors_of(bomb)

    assert errors[0] == PolicyError(line=1, path="", message="YAML anchors are not allowed (&a)")
    assert PolicyError(line=2, path="", message="YAML aliases are not allowed (*a)") in errors


def test_custom_yaml_tags_are_refused():
    error = only_error(MINIMAL + "extra: !!python/object/apply:os.system ['id']\n")

    assert error.line == MINIMAL.count("\n") + 1
    assert error.message.startswith("YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed")


def test_oversize_policy_is_refused():
    text = MINIMAL + "#" + "x" * MAX_POLICY_BYTES + "\n"
    error = only_error(text)

    assert error.line == 1
    assert error.message.startswith(f"the policy is {len(text)} bytes; the limit is {MAX_POLICY_BYTES} bytes")


def test_deep_nesting_is_refused():
    error = only_error("policy: " + "[" * 500 + "]" * 500 + "\n")

    assert error.message == "the document nests deeper than 32 levels"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the policy document is empty"),
        ("# only a comment\n", "the policy document is empty"),
        ("- policy: demo\n", "expected a mapping, got a list"),
        (
            "policy: demo\n---\npolicy: other\n",
            "YAML syntax error: expected a single document in the stream, but found another document",
        ),
    ],
)
def test_documents_that_are_not_one_mapping(text, message):
    assert only_error(text).message == message


def test_nul_characters_never_reach_names_or_messages():
    text = changed("policy: demo", 'policy: "de\\0mo"')
    assert parse_policy(text).name == "demo"

    error = only_error(changed("medium: {roles: [quality]}", 'medium: {roles: ["q\\0a"]}'))
    assert "\x00" not in error.message
    assert "'qa'" in error.message


def test_text_that_is_not_utf8_is_refused_with_its_line():
    error = only_error(b"policy: demo\nrisk: \xff\n")

    assert error.line == 2
    assert error.message == "the policy is not UTF-8 text (byte 0xff at offset 19)"


# --- risk scoring ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsd():
    return parse_policy(DEFAULT_POLICY_YAML)


@pytest.mark.parametrize(
    ("answers", "score", "tier"),
    [
        ({}, 0, "low"),
        ({"user_impact": "minor"}, 1, "low"),
        ({"user_impact": "major"}, 2, "medium"),
        ({"user_impact": "major", "rollback_complexity": "moderate"}, 3, "medium"),
        ({"patient_safety_impact": "direct"}, 4, "high"),
        ({"patient_safety_impact": "direct", "data_sensitivity": "phi"}, 6, "high"),
        ({"patient_safety_impact": "direct", "data_sensitivity": "phi", "user_impact": "minor"}, 7, "critical"),
        (
            {
                "patient_safety_impact": "direct",
                "data_sensitivity": "phi",
                "user_impact": "major",
                "rollback_complexity": "hard",
            },
            10,
            "critical",
        ),
    ],
)
def test_score_falls_in_the_riskiest_tier_it_reaches(rsd, answers, score, tier):
    result = rsd.score_risk({**RSD_ANSWERS_LOW, **answers})

    assert (result.score, result.tier) == (score, tier)


def test_score_breakdown_follows_the_questionnaire(rsd):
    result = rsd.score_risk({**RSD_ANSWERS_LOW, "patient_safety_impact": "indirect", "data_sensitivity": "internal"})

    assert result.breakdown == (
        ("patient_safety_impact", "indirect", 2),
        ("data_sensitivity", "internal", 1),
        ("user_impact", "none", 0),
        ("rollback_complexity", "trivial", 0),
    )


def test_invalid_answers_are_all_listed_with_the_allowed_answers(rsd):
    answers = {"patient_safety_impact": "severe", "data_sensitivity": "phi", "user_impact": 2, "colour": "red"}
    with pytest.raises(RiskAnswersInvalid) as caught:
        rsd.score_risk(answers)

    assert caught.value.errors == [
        "patient_safety_impact: 'severe' is not an answer (answers: none, indirect, direct)",
        "user_impact: 2 is not an answer (answers: none, minor, major)",
        "rollback_complexity: not answered (answers: trivial, moderate, hard)",
        "'colour' is not a question of this policy (questions: patient_safety_impact, data_sensitivity, "
        "user_impact, rollback_complexity)",
    ]


def test_answers_must_be_a_mapping(rsd):
    with pytest.raises(RiskAnswersInvalid, match="answers must be a mapping"):
        rsd.score_risk(["direct"])


# --- questions the document answers ------------------------------------------------------------------------


def test_tier_rank_and_highest_tier(rsd):
    assert [rsd.tier_rank(tier) for tier in ("low", "medium", "high", "critical")] == [0, 1, 2, 3]
    assert rsd.highest_tier(["medium", "low", "high"]) == "high"
    assert rsd.highest_tier(["low"]) == "low"
    with pytest.raises(ValueError, match="at least one tier"):
        rsd.highest_tier([])


def test_unknown_tier_or_environment_is_a_clear_lookup_error(rsd):
    with pytest.raises(UnknownPolicyName) as caught:
        rsd.tier_rank("severe")
    assert str(caught.value) == "tier 'severe' is not defined by policy 'rsd' (tiers: low, medium, high, critical)"

    with pytest.raises(
        UnknownPolicyName, match=r"environment 'prod' .*\(environments: integration, staging, production\)"
    ):
        rsd.environment("prod")
    with pytest.raises(UnknownPolicyName):
        rsd.change_approval_for("severe")


def test_required_roles_by_environment_and_tier(rsd):
    assert rsd.required_roles("production", "critical") == ("quality", "security", "product")
    assert rsd.required_roles("production", "low") == ("quality",)
    assert rsd.required_roles("staging", "critical") == ()
    assert parse_policy(MINIMAL).required_roles("production", "low") == ()


def test_change_approval_for_a_tier(rsd):
    assert rsd.change_approval_for("high") == ChangeApprovalRule(auto=False, roles=("quality", "security"), count=2)
    assert rsd.change_approval_for("low").auto is True


# --- CEL ---------------------------------------------------------------------------------------------------

CONTEXT = {
    "release": {"version": "7.2.4", "change_requests": ["CR-42", "CR-43"]},
    "tests": {"total": 120, "failed": 0, "skipped": 12, "pass_rate": 1.0},
    "vulnerabilities": {"critical": 0, "high": 1},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("tests.failed == 0 && release.version.startsWith('7.')", True),
        ("tests.skipped * 10 <= tests.total", True),
        ("vulnerabilities.high == 0", False),
        ("size(release.change_requests) == 2 && 'CR-42' in release.change_requests", True),
        ("tests.pass_rate >= 0.95", True),
        ("release.change_requests.all(cr, cr.startsWith('CR-'))", True),
    ],
)
def test_cel_true_and_false(expression, expected):
    assert evaluate_cel(expression, CONTEXT) is expected


def test_cel_non_boolean_result_is_an_error():
    with pytest.raises(CelError, match=r"must produce true or false, but produced int \(IntType\(120\)\)"):
        evaluate_cel("tests.total", CONTEXT)


def test_cel_syntax_error():
    with pytest.raises(CelError, match=r"CEL syntax error at column \d+ of the expression: 'tests.failed =='"):
        evaluate_cel("tests.failed ==", CONTEXT)


@pytest.mark.parametrize(
    ("expression", "detail"),
    [
        ("tests.flaky == 0", "no such member in mapping: 'flaky'"),
        ("tests.total / 0 == 1", "modulus or divide by zero"),
        ("deployment.approved", "undeclared reference to 'deployment'"),
    ],
)
def test_cel_runtime_error_says_what_failed(expression, detail):
    with pytest.raises(CelError) as caught:
        evaluate_cel(expression, CONTEXT)

    assert str(caught.value) == f"CEL evaluation failed: {detail} (expression: {expression!r})"


@pytest.mark.parametrize(
    "expression",
    ["open('/etc/passwd') == ''", "env('HOME') == ''", "os.getenv('HOME') == ''", "http.get('https://example.com')"],
)
def test_cel_cannot_reach_files_environment_or_network(expression):
    with pytest.raises(CelError, match="CEL evaluation failed: undeclared reference"):
        evaluate_cel(expression, CONTEXT)


def test_cel_context_must_be_json_like():
    with pytest.raises(CelError, match=r"context value at release.built is object"):
        evaluate_cel("true", {"release": {"built": object()}})
    with pytest.raises(CelError, match="is not a CEL identifier"):
        evaluate_cel("true", {"not valid": 1})
    with pytest.raises(CelError, match="must be text"):
        evaluate_cel(42, {})


def test_cel_overlong_expression_is_refused():
    with pytest.raises(CelError, match="the limit is 4096"):
        evaluate_cel("true && " * 600 + "true", {})


def test_licence_id_the_spdx_library_cannot_read_is_a_policy_error():
    # license-expression raises AttributeError on a lone backslash; it must surface as a policy error.
    text = changed("deny: [GPL-3.0-only]", "deny: ['\\0']")
    error = only_error(text)

    assert error.path == "environments.production.gates[1].deny[0]"
    assert error.message.startswith("'\\\\0' is not an SPDX licence id")
